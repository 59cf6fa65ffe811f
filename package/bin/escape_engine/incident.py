"""One incident per container: the `escape_incident` key every analytic puts on its alerts, and how a summary names
a container.

Every alert about one container (the spec finding of its create, its share of a privileged-launch threshold, the
Linux chain or attempt of its processes) carries the same `escape_incident`, so Enterprise Security groups them and
the overview dashboard lists them together. The key is built here only; the commands import it.

- Kubernetes: the pod names the workload before any container exists and keeps naming it, so a container known to
  belong to a pod takes the pod's key, `pod:<namespace>/<name>` (the runtimes' labels name no cluster, so neither
  does the key: same-named pods of two clusters share it).
- Any other container with a known id: `container:<host>/<id>`, the id in lower case as the runtime prints it (the
  full 64 hex digits where the data holds them; a shorter prefix keys a different incident, so callers hand the
  longest id they have).
- Neither (a docker create whose container id was never logged near it, a workload template): the workload's own
  label, `workload:<label>`.
"""
from typing import Optional

FIELD = "escape_incident"  # the alert-row field; Enterprise Security's risk and finding settings name it (tools/es.py)
_HEX = frozenset("0123456789abcdef")
ID_LENGTH = 64          # docker, containerd, CRI-O and podman container ids: 32 random bytes in hex


def container_id(text: str) -> str:
    """The container id in `text` (lower case) when it is one: 12 to 64 hex digits, else ""."""
    value = text.strip().lower()
    return value if 12 <= len(value) <= ID_LENGTH and set(value) <= _HEX else ""


def pod_identity(namespace: str, name: str) -> str:
    """A pod's identity as the incident key reads it."""
    return "{}/{}".format(namespace or "default", name) if name else ""


def incident_key(host: str, container: str = "", pod: str = "", workload: str = "") -> str:
    """`escape_incident` of an alert: see the module docstring. `container` is a container id (anything else is
    ignored), `pod` a pod_identity(), `workload` the alert's workload label; "" when nothing identifies it."""
    if pod:
        return "pod:" + pod
    cid = container_id(container)
    if cid:
        return "container:{}/{}".format(host.strip().lower() or "-", cid)
    return "workload:" + workload if workload else ""


def plural(count: int, noun: str, many: Optional[str] = None) -> str:
    """'1 container', '2 containers' ('1 process', '3 processes' with many='processes')."""
    return "{} {}".format(count, noun if count == 1 else (many or noun + "s"))
