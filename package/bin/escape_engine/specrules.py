"""Findings on container workload specs, shared by the Kubernetes and docker parsers.

A parser turns a spec into a `Workload` (platform-neutral: containers with their security settings, host namespaces,
host paths, devices); `findings()` rates it. Paths are normalised and compared on whole path components; images are
normalised to their full repository reference before they are compared with the allowlist.
"""
import fnmatch
import posixpath
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

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
)
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
        self.host_process = False


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
        self.seccomp_unconfined = False     # pod level
        self.apparmor_unconfined = False
        # (path, where: volume name or bind target, read-only everywhere it is mounted)
        self.host_paths: List[Tuple[str, str, bool]] = []
        self.devices: List[str] = []


class Finding:
    def __init__(self, finding: str, severity: str, detail: str) -> None:
        self.finding = finding
        self.severity = severity
        self.detail = detail

    def __repr__(self) -> str:
        return "Finding({!r}, {!r}, {!r})".format(self.finding, self.severity, self.detail)


def _container_label(container: Container) -> str:
    return "{} {}".format(container.role, container.name or "(unnamed)")


def findings(workload: Workload, allowed_paths: Sequence[str]) -> List[Finding]:
    """Every isolation-breaking setting of `workload`, one finding per violation."""
    result: List[Finding] = []
    for container in workload.containers:
        label = _container_label(container)
        if container.privileged:
            result.append(Finding("privileged", "critical", "{} is privileged".format(label)))
        if container.host_process:
            result.append(Finding("host_process", "critical", "{} is a Windows HostProcess container".format(label)))
        dangerous = [c for c in dict.fromkeys(container.capabilities) if c in DANGEROUS_CAPABILITIES]
        for capability in dangerous:
            result.append(Finding("capability", DANGEROUS_CAPABILITIES[capability],
                                  "{} adds capability {}".format(label, capability)))
        if dangerous and container.allow_privilege_escalation:
            result.append(Finding(
                "privilege_escalation", max_severity(["high"] + [DANGEROUS_CAPABILITIES[c] for c in dangerous]),
                "{} allows privilege escalation with {}".format(label, ", ".join(dangerous))))
        if container.seccomp_unconfined:
            result.append(Finding("seccomp_unconfined", "low", "{} runs without a seccomp profile".format(label)))
        if container.apparmor_unconfined:
            result.append(Finding("apparmor_unconfined", "low", "{} runs without an AppArmor profile".format(label)))
        if container.proc_mount_unmasked:
            result.append(Finding("proc_unmasked", "medium", "{} has an unmasked /proc".format(label)))
    if workload.host_pid:
        result.append(Finding("host_pid", "high", "shares the host's PID namespace"))
    if workload.host_ipc:
        result.append(Finding("host_ipc", "high", "shares the host's IPC namespace"))
    if workload.host_network:
        result.append(Finding("host_network", "medium", "shares the host's network namespace"))
    if workload.seccomp_unconfined:
        result.append(Finding("seccomp_unconfined", "low", "pod runs without a seccomp profile"))
    if workload.apparmor_unconfined:
        result.append(Finding("apparmor_unconfined", "low", "pod runs without an AppArmor profile"))
    for path, where, read_only in workload.host_paths:
        severity = host_path_severity(path, allowed_paths)
        # A read-only mount of an ordinary host directory cannot change the host; a critical one still leaks it.
        if severity is not None and not (read_only and severity != "critical"):
            result.append(Finding("host_path", severity, "host path {} ({})".format(normalise_path(path), where)))
    for device in workload.devices:
        normalised = normalise_path(device)
        severity = "critical" if normalised.startswith(_BLOCK_DEVICE_PREFIXES) else "high"
        result.append(Finding("device", severity, "host device {}".format(normalised)))
    return result


class AllowRule:
    """A known-good workload: an image pattern, and for Kubernetes its namespace and service account."""

    def __init__(self, platform: str, image: str, namespace: str = "", service_account: str = "",
                 origin: str = "") -> None:
        if platform not in ("kubernetes", "docker"):
            raise ValueError("allowlist platform {!r} must be kubernetes or docker".format(platform))
        if not image.strip():
            raise ValueError("allowlist entry without an image")
        if platform == "kubernetes" and (not namespace.strip() or not service_account.strip()):
            raise ValueError("Kubernetes allowlist entry for {} needs a namespace and a service account".format(image))
        self.platform = platform
        self.image = image.strip()
        self.namespace = namespace.strip()
        self.service_account = service_account.strip()
        self.origin = origin

    def matches(self, workload: Workload, container: Container) -> bool:
        if self.platform != workload.platform:
            return False
        if self.platform == "kubernetes" and \
                (workload.namespace, workload.service_account or "default") != (self.namespace, self.service_account):
            return False
        return bool(container.image) and image_matches(container.image, self.image)


def allow_rules(rows: Iterable[Mapping[str, str]], origin: str) -> List[AllowRule]:
    """Rules from the rows of a shipped lookup (columns platform, image, namespace, service_account)."""
    rules = []
    for number, row in enumerate(rows, start=2):
        try:
            rules.append(AllowRule(row.get("platform") or "", row.get("image") or "", row.get("namespace") or "",
                                   row.get("service_account") or "", origin=origin))
        except ValueError as err:
            raise ValueError("{} line {}: {}".format(origin, number, err)) from None
    return rules


def parse_allow_option(value: str) -> List[AllowRule]:
    """The user's additions: `namespace/serviceaccount=image` (Kubernetes) or `docker=image`, comma-separated."""
    rules = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ValueError("allowlist item {!r} must be namespace/serviceaccount=image or docker=image".format(item))
        scope, image = (part.strip() for part in item.split("=", 1))
        if scope == "docker":
            rules.append(AllowRule("docker", image, origin="option"))
            continue
        if scope.count("/") != 1:
            raise ValueError("allowlist item {!r} must be namespace/serviceaccount=image or docker=image".format(item))
        namespace, service_account = scope.split("/")
        rules.append(AllowRule("kubernetes", image, namespace, service_account, origin="option"))
    return rules


def allowlisted(workload: Workload, rules: Sequence[AllowRule]) -> Optional[str]:
    """The origin of the rules that cover every container of `workload`, or None when one container is not covered."""
    if not workload.containers or not rules:
        return None
    origins = []
    for container in workload.containers:
        rule = next((r for r in rules if r.matches(workload, container)), None)
        if rule is None:
            return None
        origins.append(rule.origin)
    return ",".join(dict.fromkeys(origins))
