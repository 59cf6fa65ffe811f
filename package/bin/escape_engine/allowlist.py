"""Allowlist entries that bind a workload's identity to what it is known to need.

An entry names the identity (Kubernetes: namespace + service account + image repository; docker: image repository,
with a digest where the data has one) and the findings the workload needs (`needs`: privileged, host_network,
capability:NET_ADMIN, host_path:/proc:ro, ...). A workload is allowlisted only when every container matches an entry
and every finding is one its entries need (container findings, and a host path for each container that mounts it:
the entry of that container; other pod-level findings: any entry of the pod). A finding beyond those leaves the
workload a full-severity alert that names its entry.

Commands: an entry also names what its containers run (`commands`: executables, `;`-separated; in the
`escape_allowed_workloads` option `command:<exe>` among the needs). Each thing the spec makes a container run
(specrules.Container.runs: its command, or the first word of args that is not a flag, exec probes and hooks; docker:
Entrypoint, or Cmd when no Entrypoint is given; docker inspect: Path) must be one of them: a path compares as a
normalised path, a bare name only with the same bare name (the vendor image's PATH finds it). No commands (an
empty or missing column, an option without `command:`) means the image's own entrypoint only, with flags. A
container that runs anything else (a shell, an interpreter, another binary) leaves the workload a full alert.

Images: registry, repository and digest must agree. A docker image named without a registry (`amazon/amazon-ecs-agent`)
may be any local tag (`docker tag alpine amazon/amazon-ecs-agent`), so it never matches an entry that names a
registry; an entry with a digest matches only that digest (or, in docker inspect data, that image ID).
"""
from typing import Iterable, List, Mapping, NamedTuple, Optional, Sequence

from .specrules import (
    Container,
    Finding,
    Workload,
    canonical_path,
    image_matches,
    normalise_capability,
    normalise_path,
    path_within,
)

# Finding types an entry may name as a need by their type alone.
PLAIN_NEEDS = ("privileged", "host_process", "privilege_escalation", "seccomp_unconfined", "apparmor_unconfined",
               "selinux_unconfined", "proc_unmasked", "host_pid", "host_ipc", "host_network", "host_uts",
               "host_userns", "host_cgroupns")
# Needs with a subject: capability:<NAME>, host_path:<dir>[:ro], device:<path>.
SUBJECT_NEEDS = ("capability", "host_path", "device")


def canonical_command(word: str) -> str:
    """A path normalised (`//bin/./sh` is /bin/sh), a bare name as it is."""
    text = word.strip()
    return normalise_path(text) if "/" in text else text


class Need(NamedTuple):
    finding: str
    subject: str = ""
    read_only: bool = False     # host_path:<dir>:ro covers only read-only mounts

    def covers(self, found: Finding, read_only: Optional[bool] = None) -> bool:
        """Whether this need covers `found`; `read_only` says how one container mounts a host path (default: as
        every container does)."""
        if found.finding != self.finding:
            return False
        if self.finding == "capability":
            return found.subject == self.subject
        if self.finding == "host_path":
            mounted_read_only = found.read_only if read_only is None else read_only
            return path_within(found.subject, self.subject) and (mounted_read_only or not self.read_only)
        if self.finding == "device":
            return found.subject == self.subject
        return True


def parse_need(token: str) -> Need:
    text = token.strip()
    kind, _, subject = text.partition(":")
    kind = kind.strip().lower()
    if kind in PLAIN_NEEDS and not subject:
        return Need(kind)
    if kind == "capability" and subject.strip():
        return Need(kind, normalise_capability(subject))
    if kind == "host_path" and subject.strip().startswith("/"):
        path, read_only = subject.strip(), False
        if path.endswith(":ro"):
            path, read_only = path[:-3], True
        return Need(kind, canonical_path(path), read_only)
    if kind == "device" and subject.strip().startswith("/"):
        return Need(kind, normalise_path(subject))
    raise ValueError("need {!r} is unknown: use one of {}, or capability:<NAME>, host_path:<dir>[:ro], "
                     "device:<path>".format(text, ", ".join(PLAIN_NEEDS)))


def parse_needs(text: str) -> List[Need]:
    return [parse_need(t) for t in text.split(";") if t.strip() and not _is_command(t)]


def _is_command(token: str) -> bool:
    return token.strip().lower().startswith("command:")


def parse_commands(text: str) -> List[str]:
    """`;`-separated executables (the CSV column), or the `command:<exe>` tokens of an option's needs list."""
    result = []
    for token in text.split(";"):
        word = token.strip()
        if _is_command(word):
            word = word.partition(":")[2].strip()
        if word:
            result.append(canonical_command(word))
    return result


def has_registry(image: str) -> bool:
    """Whether the reference names its registry (`docker.io/x/y`, `quay.io/...`, `localhost:5000/...`)."""
    parts = image.strip().lower().split("/")
    return len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost")


def image_digest(image: str) -> str:
    """The `sha256:...` digest of a reference pinned by digest, else ""."""
    return image.strip().lower().split("@", 1)[1] if "@" in image else ""


# Who writes a controller's pods: the controller manager, with per-controller service-account credentials (the
# default) or its own.
CONTROLLER_USERS = ("system:kube-controller-manager",)
CONTROLLER_ACCOUNT_PREFIX = "system:serviceaccount:kube-system:"
CONTROLLER_ACCOUNTS = {"DaemonSet": "daemon-set-controller", "Deployment": "replicaset-controller",
                       "ReplicaSet": "replicaset-controller", "StatefulSet": "statefulset-controller",
                       "Job": "job-controller"}


def written_by_controller(workload: Workload, kind: str) -> bool:
    """A pod write by the controller of `kind` (its ownerReferences alone prove nothing: any client can set them)."""
    account = CONTROLLER_ACCOUNTS.get(kind)
    return workload.actor in CONTROLLER_USERS or (
        account is not None and workload.actor == CONTROLLER_ACCOUNT_PREFIX + account)


class AllowRule:
    """A known-good workload: its identity and the findings it needs."""

    def __init__(self, platform: str, image: str, namespace: str = "", service_account: str = "",
                 origin: str = "", needs: Sequence[Need] = (), digest: str = "", kind: str = "",
                 commands: Sequence[str] = ()) -> None:
        if platform not in ("kubernetes", "docker"):
            raise ValueError("allowlist platform {!r} must be kubernetes or docker".format(platform))
        if not image.strip():
            raise ValueError("allowlist entry without an image")
        if platform == "kubernetes" and (not namespace.strip() or not service_account.strip()):
            raise ValueError("Kubernetes allowlist entry for {} needs a namespace and a service account".format(image))
        self.platform = platform
        self.image = image.strip().split("@", 1)[0]
        self.digest = (digest.strip() or image_digest(image)).lower()
        if self.digest and not self.digest.startswith("sha256:"):
            raise ValueError("allowlist digest {!r} must be sha256:<hex>".format(digest))
        self.namespace = namespace.strip()
        self.service_account = service_account.strip()
        self.origin = origin
        self.needs = list(needs)
        self.commands = [canonical_command(c) for c in commands if c.strip()]
        # Kubernetes: the controller kind that runs it (DaemonSet); a pod matches only when it is that
        # controller's pod, written by that controller (a bare pod reusing the identity does not)
        self.kind = kind.strip()
        if self.kind and self.kind not in CONTROLLER_ACCOUNTS:
            raise ValueError("allowlist kind {!r} must be one of {}".format(kind, ", ".join(CONTROLLER_ACCOUNTS)))

    def matches(self, workload: Workload, container: Container) -> bool:
        if self.platform != workload.platform or not container.image:
            return False
        if self.platform == "kubernetes" and \
                (workload.namespace, workload.service_account or "default") != (self.namespace, self.service_account):
            return False
        if self.kind and (workload.kind != self.kind or (workload.pod_write
                                                         and not written_by_controller(workload, self.kind))):
            return False
        if self.platform == "docker" and has_registry(self.image) and not has_registry(container.image):
            return False     # a local tag can carry any name
        if self.digest and self.digest not in (image_digest(container.image), container.image_id.lower()):
            return False
        return image_matches(container.image, self.image)

    def covers(self, found: Finding, read_only: Optional[bool] = None) -> bool:
        return any(need.covers(found, read_only) for need in self.needs)

    def foreign_runs(self, container: Container) -> List[Finding]:
        """What `container` runs beyond this entry's commands, one finding each (never a need: no entry names
        it, so it is not in FINDING_TYPES)."""
        result = []
        for word, where in dict.fromkeys(container.runs):
            if canonical_command(word) not in self.commands:
                result.append(Finding("command", "critical", "{} {} runs {} ({}), not the agent's own command".format(
                    container.role, container.name or "(unnamed)", word, where), subject=word,
                    container=container.name))
        return result


class Verdict(NamedTuple):
    origin: str                     # the origins of the matching entries
    exceeded: List[Finding]         # findings no matching entry needs: the workload is then a full alert


def judge(workload: Workload, found: Sequence[Finding], rules: Sequence[AllowRule]) -> Optional[Verdict]:
    """None when some container matches no entry; else the entries' origin and the findings beyond their needs."""
    if not workload.containers or not rules:
        return None
    matched = {}
    for container in workload.containers:
        rule = next((r for r in rules if r.matches(workload, container)), None)
        if rule is None:
            return None
        matched[container.name] = rule
    pooled = list(matched.values())
    exceeded = [f for container in workload.containers for f in matched[container.name].foreign_runs(container)]
    for finding in found:
        if finding.container:
            rule = matched.get(finding.container)
            covered = rule is not None and rule.covers(finding)
        elif finding.mounted_by:
            # a host path counts for every container that mounts it: a sidecar may not borrow the agent's mount
            covered = all(matched.get(name) is not None and matched[name].covers(finding, read_only)
                          for name, read_only in finding.mounted_by)
        else:
            covered = any(r.covers(finding) for r in pooled)
        if not covered:
            exceeded.append(finding)
    return Verdict(",".join(dict.fromkeys(r.origin for r in pooled)), exceeded)


def allow_rules(rows: Iterable[Mapping[str, str]], origin: str) -> List[AllowRule]:
    """Rules from the rows of a shipped lookup (platform, image, namespace, service_account, kind, digest, needs,
    commands; a row without the commands column allows the image's own entrypoint only)."""
    rules = []
    for number, row in enumerate(rows, start=2):
        try:
            rules.append(AllowRule(row.get("platform") or "", row.get("image") or "", row.get("namespace") or "",
                                   row.get("service_account") or "", origin=origin,
                                   needs=parse_needs(row.get("needs") or ""), digest=row.get("digest") or "",
                                   kind=row.get("kind") or "",
                                   commands=parse_commands(row.get("commands") or "")))
        except ValueError as err:
            raise ValueError("{} line {}: {}".format(origin, number, err)) from None
    return rules


_SHAPE = "namespace/serviceaccount=image[need;need...] or docker=image[need;...]"


def parse_allow_option(value: str) -> List[AllowRule]:
    """The user's additions, comma-separated: `namespace/serviceaccount=image[needs]` (Kubernetes) or
    `docker=image[needs]`; needs are `;`-separated (`[privileged;host_network;host_path:/proc:ro]`), with
    `command:<exe>` for each executable the containers run beyond the image's entrypoint; an image may
    carry its digest (`registry.example.com/agent@sha256:...`)."""
    rules = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ValueError("allowlist item {!r} must be {}".format(item, _SHAPE))
        scope, image = (part.strip() for part in item.split("=", 1))
        needs: List[Need] = []
        commands: List[str] = []
        if image.endswith("]") and "[" in image:
            image, _, listed = image[:-1].partition("[")
            needs = parse_needs(listed)
            commands = parse_commands(";".join(t for t in listed.split(";") if _is_command(t)))
        elif "[" in image or "]" in image:
            raise ValueError("allowlist item {!r} must be {}".format(item, _SHAPE))
        if scope == "docker":
            rules.append(AllowRule("docker", image, origin="option", needs=needs, commands=commands))
            continue
        if scope.count("/") != 1:
            raise ValueError("allowlist item {!r} must be {}".format(item, _SHAPE))
        namespace, service_account = scope.split("/")
        rules.append(AllowRule("kubernetes", image, namespace, service_account, origin="option", needs=needs,
                               commands=commands))
    return rules


def need_token(found: Finding) -> str:
    """The need an allowlist entry would name to cover `found` ("" for a finding no entry can cover)."""
    if found.finding == "duplicate_key":
        return ""
    if found.finding in ("capability", "device"):
        return "{}:{}".format(found.finding, found.subject)
    if found.finding == "host_path":
        return "host_path:{}{}".format(found.subject, ":ro" if found.read_only else "")
    return found.finding
