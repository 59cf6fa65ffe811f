"""Findings on container workload specs, shared by the Kubernetes and docker parsers.

A parser turns a spec into a `Workload` (platform-neutral: containers with their security settings, host namespaces,
host paths, devices); `findings()` rates it. Paths are normalised and compared on whole path components; images are
normalised to their full repository reference before they are compared with the allowlist.
"""
import fnmatch
import posixpath
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from .ground import SEVERITIES

# Capabilities (without CAP_, upper case) that break isolation, by severity.
DANGEROUS_CAPABILITIES: Dict[str, str] = {
    "ALL": "critical", "SYS_ADMIN": "critical", "SYS_MODULE": "critical", "DAC_READ_SEARCH": "critical",
    "SYS_PTRACE": "high", "BPF": "high", "SYS_RAWIO": "high", "SYS_BOOT": "high", "PERFMON": "high",
    "NET_ADMIN": "medium", "SYSLOG": "medium", "DAC_OVERRIDE": "medium",
}

# Host paths rated critical: the host's root, kernel interfaces, credentials, devices, runtime sockets and the
# kubelet / runtime state. A host path is critical when it is one of these, lies below one of the directories, or
# contains one of them (mounting /var exposes /var/lib/kubelet and /var/run/docker.sock).
CRITICAL_HOST_PATHS = (
    "/", "/proc", "/sys", "/etc", "/root", "/dev", "/boot",
    "/run/docker.sock", "/run/containerd/containerd.sock", "/run/crio/crio.sock", "/run/cri-dockerd.sock",
    "/run/docker", "/run/containerd", "/run/crio", "/run/podman/podman.sock",
    "/var/lib/kubelet", "/var/lib/docker", "/var/lib/containerd", "/var/lib/containers", "/etc/kubernetes",
    "/run/podman", "/run/k3s", "/run/buildkit", "/run/dockershim.sock", "/var/lib/rancher",
    "/var/lib/etcd",    # etcd's data: every Secret of the cluster, critical even read-only
)
# A runtime's API socket wherever it lies (rootless podman and docker under /run/user/<uid>, snap, k3s): by name.
RUNTIME_SOCKETS = ("docker.sock", "containerd.sock", "crio.sock", "podman.sock", "cri-dockerd.sock", "dockershim.sock",
                   "buildkitd.sock", "balena-engine.sock", "kubelet.sock")
# Directories whose whole subtree is critical ("/" is critical only itself: its subtree is everything).
_CRITICAL_SUBTREES = tuple(p for p in CRITICAL_HOST_PATHS if p != "/" and not p.endswith(".sock"))

_BLOCK_DEVICE_PREFIXES = ("/dev/sd", "/dev/vd", "/dev/xvd", "/dev/nvme", "/dev/hd", "/dev/loop", "/dev/dm-",
                          "/dev/mapper", "/dev/mem", "/dev/kmem", "/dev/port", "/dev/disk")


def max_severity(severities: Iterable[str]) -> str:
    best = 0
    for severity in severities:
        best = max(best, SEVERITIES.index(severity))
    return SEVERITIES[best]


def normalise_path(path: str) -> str:
    """`.`, `..`, repeated and trailing slashes resolved; a relative path is taken from the root."""
    text = path.strip()
    normalised = posixpath.normpath("/" + text.lstrip("/")) if text else "/"
    return "/" + normalised.lstrip("/")


def canonical_path(path: str) -> str:
    """The normalised path with /var/run read as /run (a symbolic link on every current distribution)."""
    normalised = normalise_path(path)
    if normalised == "/var/run" or normalised.startswith("/var/run/"):
        return "/run" + normalised[len("/var/run"):]
    return normalised


def path_within(path: str, directory: str) -> bool:
    """Whole-component containment of canonical paths: /var/log contains /var/log/x but not /var/logs."""
    return path == directory or directory == "/" or path.startswith(directory + "/")


def parse_allowed_paths(value: str) -> List[str]:
    """The comma-separated `escape_allowed_host_paths` value; each item must be absolute."""
    paths = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        if not item.startswith("/"):
            raise ValueError("allowed host path {!r} is not absolute: each item must start with /".format(item))
        paths.append(canonical_path(item))
    return paths


def host_path_severity(path: str, allowed: Sequence[str]) -> Optional[str]:
    """None when `path` is inside an allowed directory, else critical or high."""
    canonical = canonical_path(path)
    if any(path_within(canonical, a) for a in allowed):
        return None
    if posixpath.basename(canonical) in RUNTIME_SOCKETS:
        return "critical"
    for critical in CRITICAL_HOST_PATHS:
        if path_within(critical, canonical):   # the mount is, or contains, a critical path
            return "critical"
    for subtree in _CRITICAL_SUBTREES:
        if path_within(canonical, subtree):
            return "critical"
    return "high"


def normalise_capability(name: str) -> str:
    upper = name.strip().upper()
    return upper.removeprefix("CAP_")


def normalise_image(image: str) -> str:
    """Full repository reference without tag or digest: `nginx:1` -> `docker.io/library/nginx`.

    Only the default registry is filled in (`calico/node` -> `docker.io/calico/node`); any other registry stays, so
    `evil.io/calico/node` never equals `calico/node`.
    """
    text = image.strip().lower()
    if "@" in text:
        text = text.split("@", 1)[0]
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text = text[:colon]
    parts = text.split("/")
    first = parts[0]
    has_registry = len(parts) > 1 and ("." in first or ":" in first or first == "localhost")
    if not has_registry:
        if len(parts) == 1:
            parts = ["library"] + parts
        parts = ["docker.io"] + parts
    if parts[0] == "index.docker.io":
        parts[0] = "docker.io"
    return "/".join(parts)


def image_matches(image: str, pattern: str) -> bool:
    """`pattern` is a normalised image; `*` matches within one path component only (an ECR region, say)."""
    if "*" not in pattern:
        return normalise_image(image) == normalise_image(pattern)
    normalised = normalise_image(image)
    pattern_parts = pattern.strip().lower().split("/")
    image_parts = normalised.split("/")
    if len(pattern_parts) != len(image_parts):
        return False
    return all(fnmatch.fnmatchcase(i, p) for i, p in zip(image_parts, pattern_parts))


class Container:
    """One container of a workload, with the settings that matter for isolation."""

    def __init__(self, name: str, image: str, role: str) -> None:
        self.name = name
        self.image = image
        self.role = role                    # container | initContainer | ephemeralContainer | exec
        self.privileged = False
        self.capabilities: List[str] = []
        self.allow_privilege_escalation: Optional[bool] = None
        self.seccomp_unconfined = False
        self.apparmor_unconfined = False
        self.proc_mount_unmasked = False
        self.proc_sys_writable = False
        self.selinux_unconfined = False
        self.host_process = False
        self.image_id = ""                  # docker inspect: the local image ID (sha256:...)
        # What the spec itself makes the container run: (executable, where: command, args, livenessProbe, ...);
        # empty when it runs only the image's own entrypoint (allowlist.AllowRule.commands)
        self.runs: List[Tuple[str, str]] = []


def command_word(command: Sequence[Any], args: Sequence[Any], cleared: bool = False) -> Tuple[str, str]:
    """The executable a command/args pair names, with where it came from: command[0]; with no command (the
    image's entrypoint runs), args[0] unless it is a flag (an entrypoint that execs its arguments runs it, one that
    takes a subcommand reads it as one); ("", "") when the image's own entrypoint runs with flags only. `cleared`:
    the command was set to nothing (docker `--entrypoint ""`), so args[0] is the executable whatever it looks like."""
    words = [w for w in command if isinstance(w, str)]
    if words and words[0].strip():
        return words[0].strip(), "command"
    cleared = cleared or bool(words)
    rest = words[1:] + [w for w in args if isinstance(w, str)]
    if rest and rest[0].strip() and (cleared or not rest[0].strip().startswith("-")):
        return rest[0].strip(), "args"
    return "", ""


class Workload:
    """A pod, a workload template or a docker container, reduced to what the rules read."""

    def __init__(self, platform: str) -> None:
        self.platform = platform            # kubernetes | docker
        self.kind = ""
        self.namespace = ""
        self.name = ""
        self.service_account = ""
        self.containers: List[Container] = []
        self.host_pid = False
        self.host_ipc = False
        self.host_network = False
        self.host_uts = False
        self.host_userns = False
        self.host_cgroupns = False
        self.seccomp_unconfined = False     # pod level
        self.apparmor_unconfined = False
        # (path, where: volume name or bind target, read-only everywhere it is mounted)
        self.host_paths: List[Tuple[str, str, bool]] = []
        # Kubernetes: where (as in host_paths) -> (container, read-only) of each container that mounts it, so an
        # allowlist entry covers a host path only for its own containers (a volume no container mounts stays the pod's)
        self.mounted_by: Dict[str, Tuple[Tuple[str, bool], ...]] = {}
        self.devices: List[str] = []
        self.device_rules: List[str] = []   # docker DeviceCgroupRules ("b *:* rwm")
        # docker named volumes mounted: (name, target, read-only); their definition is a volume create elsewhere
        self.volumes: List[Tuple[str, str, bool]] = []
        self.container_id = ""              # docker inspect: the container's ID
        self.actor = ""                     # Kubernetes: the user who wrote it
        self.pod_write = False              # Kubernetes: a write of a pod itself (not of a workload template)
        self.duplicates: List[str] = []     # fields given twice in the body (Go merges them; no client sends that)


class Finding:
    """One isolation-breaking setting. `subject` (capability, path, device, rule) and `read_only` say what exactly, so
    an allowlist entry can name it; `container` is the container it belongs to ("" for pod-level settings), and
    `mounted_by` the containers that mount a pod's host path."""

    def __init__(self, finding: str, severity: str, detail: str, subject: str = "", read_only: bool = False,
                 container: str = "", mounted_by: Tuple[Tuple[str, bool], ...] = ()) -> None:
        self.finding = finding
        self.severity = severity
        self.detail = detail
        self.subject = subject
        self.read_only = read_only
        self.container = container
        self.mounted_by = mounted_by        # a pod's host path: (container, read-only) of each that mounts it

    def __repr__(self) -> str:
        return "Finding({!r}, {!r}, {!r})".format(self.finding, self.severity, self.detail)


def _container_label(container: Container) -> str:
    return "{} {}".format(container.role, container.name or "(unnamed)")


def device_rule_severity(rule: str) -> str:
    """A DeviceCgroupRules entry (`<a|b|c> <major|*>:<minor|*> <rwm>`): every device, any block device, every
    character device or the memory devices (major 1) are critical; another character device is high."""
    parts = rule.split()
    kind = parts[0].lower() if parts else "a"
    major = parts[1].split(":", 1)[0] if len(parts) > 1 else "*"
    if kind in ("a", "b") or major in ("*", "1") or kind not in ("c",):
        return "critical"
    return "high"


def _container_findings(container: Container) -> List[Finding]:
    label, key = _container_label(container), container.name
    result: List[Finding] = []
    if container.privileged:
        result.append(Finding("privileged", "critical", "{} is privileged".format(label), container=key))
    if container.host_process:
        result.append(Finding("host_process", "critical", "{} is a Windows HostProcess container".format(label),
                              container=key))
    dangerous = [c for c in dict.fromkeys(container.capabilities) if c in DANGEROUS_CAPABILITIES]
    for capability in dangerous:
        result.append(Finding("capability", DANGEROUS_CAPABILITIES[capability],
                              "{} adds capability {}".format(label, capability), subject=capability, container=key))
    if dangerous and container.allow_privilege_escalation:
        result.append(Finding(
            "privilege_escalation", max_severity(["high"] + [DANGEROUS_CAPABILITIES[c] for c in dangerous]),
            "{} allows privilege escalation with {}".format(label, ", ".join(dangerous)), container=key))
    for flag, finding, text in ((container.seccomp_unconfined, "seccomp_unconfined", "without a seccomp profile"),
                                (container.apparmor_unconfined, "apparmor_unconfined", "without an AppArmor profile"),
                                (container.selinux_unconfined, "selinux_unconfined", "without SELinux separation")):
        if flag:
            result.append(Finding(finding, "low", "{} runs {}".format(label, text), container=key))
    if container.proc_mount_unmasked:
        result.append(Finding("proc_unmasked", "medium", "{} has an unmasked /proc".format(label), container=key))
    if container.proc_sys_writable:
        result.append(Finding("proc_unmasked", "high", "{} has a writable /proc/sys".format(label),
                              subject="/proc/sys", container=key))
    return result


def findings(workload: Workload, allowed_paths: Sequence[str]) -> List[Finding]:
    """Every isolation-breaking setting of `workload`, one finding per violation."""
    result: List[Finding] = []
    for container in workload.containers:
        result.extend(_container_findings(container))
    for flag, finding, severity, text in (
            (workload.host_pid, "host_pid", "high", "shares the host's PID namespace"),
            (workload.host_ipc, "host_ipc", "high", "shares the host's IPC namespace"),
            (workload.host_network, "host_network", "medium", "shares the host's network namespace"),
            (workload.host_userns, "host_userns", "medium", "runs in the host's user namespace (no remapping)"),
            (workload.host_uts, "host_uts", "low", "shares the host's UTS namespace"),
            (workload.host_cgroupns, "host_cgroupns", "low", "shares the host's cgroup namespace"),
            (workload.seccomp_unconfined, "seccomp_unconfined", "low", "pod runs without a seccomp profile"),
            (workload.apparmor_unconfined, "apparmor_unconfined", "low", "pod runs without an AppArmor profile")):
        if flag:
            result.append(Finding(finding, severity, text))
    for path, where, read_only in workload.host_paths:
        rated = host_path_severity(path, allowed_paths)
        # A read-only mount of an ordinary host directory cannot change the host; a critical one still leaks it.
        if rated is not None and not (read_only and rated != "critical"):
            result.append(Finding("host_path", rated, "host path {} ({}{})".format(
                normalise_path(path), where, ", read-only" if read_only else ""),
                subject=canonical_path(path), read_only=read_only, mounted_by=workload.mounted_by.get(where, ())))
    for device in workload.devices:
        normalised = normalise_path(device)
        severity = "critical" if normalised.startswith(_BLOCK_DEVICE_PREFIXES) else "high"
        result.append(Finding("device", severity, "host device {}".format(normalised), subject=normalised))
    for rule in workload.device_rules:
        text = " ".join(rule.split())
        result.append(Finding("device", device_rule_severity(text), "device cgroup rule {!r}".format(text),
                              subject=text))
    for field in dict.fromkeys(workload.duplicates):
        result.append(Finding("duplicate_key", "high", "body gives {} more than once (dockerd merges them)".format(
            field)))
    return result
