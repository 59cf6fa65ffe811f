"""What the runtimes' own APIs say about a container: its full id, name, image, create call and, on Kubernetes, pod,
namespace and node. The Linux chain reads these to name the container it found by process lineage; the spec
inspection reads them to give a docker create call (which carries only the name asked for) its container id.

Sources, each read the way the runtime writes it (never a name picked out of free text):
- `docker events --format '{{json .}}'`: Type container, Actor.ID (the full id), Actor.Attributes name and image
  (and the io.kubernetes.* labels dockershim set), timeNano.
- `podman events --format json`: Type container, ID, Name, Image, Status, Time (RFC 3339, nanoseconds), Attributes
  (the container's labels; io.kubernetes.* for `podman kube play` pods).
- `docker inspect`: Id, Name, Config.Image, Created, Config.Labels.
- The create call of the spec inspection (dockerd's create body, a Kubernetes pod create): what it asked for
  (`host_access`, e.g. "privileged + host PID"), by whom and when.

A docker create call names no id; the container's `create` event (docker or podman) names both: `CreateJoin` pairs
them by host, name and time (the event follows its call within JOIN_SECONDS).
"""
import json
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .incident import container_id, pod_identity

JOIN_SECONDS = 60.0          # a create event follows its API call within this (dockerd answers before it logs)
MAX_PENDING = 10000          # create events held per search for the join (a bound, not a window)
POD_LABELS = ("io.kubernetes.pod.name", "io.kubernetes.pod.namespace")
RUNTIME_EVENT_SOURCETYPES = ("docker:events", "podman:events")


class ContainerFacts:
    """One container as its runtime's API described it; "" (or 0.0) where the data held nothing."""

    __slots__ = ("container_id", "create_actor", "create_time", "created", "host", "host_access", "image", "name",
                 "namespace", "node", "pod", "runtime")
    FIELDS = ("host", "container_id", "name", "image", "runtime", "created", "pod", "namespace", "node",
              "create_actor", "create_time", "host_access")

    def __init__(self, host: str, cid: str, *, name: str = "", image: str = "", runtime: str = "",
                 created: float = 0.0, pod: str = "", namespace: str = "", node: str = "", create_actor: str = "",
                 create_time: float = 0.0, host_access: str = "") -> None:
        self.host = host
        self.container_id = cid
        self.name = name
        self.image = image
        self.runtime = runtime
        self.created = created
        self.pod = pod
        self.namespace = namespace
        self.node = node
        self.create_actor = create_actor
        self.create_time = create_time
        self.host_access = host_access

    def key(self) -> Tuple[str, str]:
        return registry_key(self.host, self.container_id)

    def pod_id(self) -> str:
        """The pod identity (incident.pod_identity) when the container belongs to a Kubernetes pod."""
        return pod_identity(self.namespace, self.pod)

    def merge(self, other: "ContainerFacts") -> None:
        """Fill what this one lacks from another description of the same container."""
        for field in self.FIELDS:
            if not getattr(self, field) and getattr(other, field):
                setattr(self, field, getattr(other, field))

    def document(self) -> Dict[str, Any]:
        """The registry row (KV store document / lookup row), `_key` = host/id."""
        row: Dict[str, Any] = {field: getattr(self, field) for field in self.FIELDS}
        row["_key"] = "{}/{}".format(*self.key())
        return row

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Optional["ContainerFacts"]:
        """A registry row back; None when it names no host or no container id (a hand edit, a cut row)."""
        def text(field: str) -> str:
            value = document.get(field)
            return value if isinstance(value, str) else ""

        def number(field: str) -> float:
            value = document.get(field)
            try:
                result = float(value) if isinstance(value, (int, float, str)) else 0.0
            except ValueError:
                return 0.0
            return result if 0.0 <= result < 4102444800.0 else 0.0  # NaN and inf fail both comparisons

        cid = container_id(text("container_id"))
        if not cid or not text("host"):
            return None
        return cls(text("host"), cid, name=text("name"), image=text("image"), runtime=text("runtime"),
                   created=number("created"), pod=text("pod"), namespace=text("namespace"), node=text("node"),
                   create_actor=text("create_actor"), create_time=number("create_time"),
                   host_access=text("host_access"))


def registry_key(host: str, cid: str) -> Tuple[str, str]:
    return host.strip().lower(), container_id(cid)


def rfc3339(text: str) -> Optional[float]:
    """Epoch seconds of a Go RFC 3339 time (any number of fraction digits, Z or an offset); None when unreadable."""
    text = text.strip()
    if len(text) < 20 or text[10] != "T":
        return None
    zone_at = max(text.rfind("Z"), text.rfind("+"), text.rfind("-", 19))
    if zone_at < 19:
        return None
    base, zone = text[:19], text[zone_at:]
    fraction = text[19:zone_at]
    try:
        stamp = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
        offset = 0 if zone == "Z" else (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    except ValueError:
        return None
    if fraction and not (fraction[0] == "." and fraction[1:].isascii() and fraction[1:].isdigit()):
        return None
    return stamp.timestamp() - offset + (float("0" + fraction) if fraction else 0.0)


def _dict(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _labels(facts: ContainerFacts, labels: Mapping[str, Any]) -> ContainerFacts:
    facts.pod = _text(labels.get(POD_LABELS[0]))
    facts.namespace = _text(labels.get(POD_LABELS[1]))
    if facts.pod:   # a pod's container runs where its runtime reported it: that host is the pod's node
        facts.node = facts.host
    return facts


def runtime_event(data: Any, host: str, sourcetype: str) -> Optional[Tuple[str, ContainerFacts]]:
    """(action, facts) of a docker:events or podman:events container event; None for any other event. The
    sourcetype says which runtime wrote it (the two formats differ in every key)."""
    if not isinstance(data, dict) or data.get("Type") != "container":
        return None
    if sourcetype == "docker:events":
        actor = _dict(data.get("Actor"))
        attributes = _dict(actor.get("Attributes"))
        cid = container_id(_text(actor.get("ID")))
        nano = data.get("timeNano")
        when = nano / 1e9 if isinstance(nano, int) and not isinstance(nano, bool) else 0.0
        action = _text(data.get("Action")).split(":", 1)[0]
        facts = ContainerFacts(host, cid, name=_text(attributes.get("name")), image=_text(attributes.get("image")),
                               runtime="docker")
        _labels(facts, attributes)
    elif sourcetype == "podman:events":
        cid = container_id(_text(data.get("ID")))
        when = rfc3339(_text(data.get("Time"))) or 0.0
        action = _text(data.get("Status"))
        facts = _labels(ContainerFacts(host, cid, name=_text(data.get("Name")), image=_text(data.get("Image")),
                                       runtime="podman"), _dict(data.get("Attributes")))
    else:
        return None
    if not cid or not when:
        return None
    if action == "create":
        facts.created = when
    return action, facts


def parse_runtime_event(text: str, host: str, sourcetype: str) -> Optional[Tuple[str, ContainerFacts]]:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return runtime_event(data, host, sourcetype)


def inspect_facts(item: Mapping[str, Any], host: str) -> Optional[ContainerFacts]:
    """Facts of one docker inspect object; None without a container id."""
    cid = container_id(_text(item.get("Id")))
    if not cid:
        return None
    config = _dict(item.get("Config"))
    facts = ContainerFacts(host, cid, name=_text(item.get("Name")).lstrip("/"), image=_text(config.get("Image")),
                           runtime="docker", created=rfc3339(_text(item.get("Created"))) or 0.0)
    return _labels(facts, _dict(config.get("Labels")))


# What a finding type gave the container, in the words of the chain summary ("privileged + host PID").
ACCESS_WORDS = {"privileged": "privileged", "host_process": "host process", "host_pid": "host PID",
                "host_ipc": "host IPC", "host_network": "host network", "host_uts": "host UTS",
                "host_userns": "host user namespace", "host_cgroupns": "host cgroup namespace",
                "seccomp_unconfined": "seccomp unconfined", "apparmor_unconfined": "AppArmor unconfined",
                "selinux_unconfined": "SELinux disabled", "proc_unmasked": "unmasked /proc", "device": "host device"}


def host_access(findings: Sequence[Tuple[str, str]]) -> str:
    """(finding type, subject) pairs of a create call in the summary's words, most telling first, once each."""
    words: List[str] = []
    for kind, subject in findings:
        if kind == "host_path":
            word = "host path " + subject if subject else "host path"
        elif kind == "capability":
            word = "cap " + subject if subject else "added capability"
        else:
            word = ACCESS_WORDS.get(kind, "")
        if word and word not in words:
            words.append(word)
    return " + ".join(words)


class CreateJoin:
    """Container create events by host and name, so a create call that names only the container gets its id."""

    def __init__(self) -> None:
        self._events: Dict[Tuple[str, str], List[ContainerFacts]] = {}
        self._held = 0

    def add(self, facts: ContainerFacts) -> None:
        if not facts.name or not facts.created or self._held >= MAX_PENDING:
            return
        self._events.setdefault((facts.host.lower(), facts.name), []).append(facts)
        self._held += 1

    def find(self, host: str, name: str, when: float) -> Optional[ContainerFacts]:
        """The create event of `name` on `host` that follows a call at `when` most closely (within JOIN_SECONDS)."""
        best: Optional[ContainerFacts] = None
        for facts in self._events.get((host.lower(), name), []):
            if 0.0 <= facts.created - when + 1.0 <= JOIN_SECONDS + 1.0 and (
                    best is None or abs(facts.created - when) < abs(best.created - when)):
                best = facts    # one second early allowed: docker events stamp the daemon's clock, the call too
        return best
