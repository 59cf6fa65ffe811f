"""The per-host process table: process images with the container each was attributed to (by
escape_engine.lineage.attribution), the container registry and the host's devices.

A process image is one execve (pid, ppid, start time, comm, exe, the executable's device, argv). The table is persisted
between searches (KV store in Splunk, JSON offline) with a TTL; a pid's newest image wins, and a new image with another
parent replaces the old one (pid reuse).
"""
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ..scalars import finite_float

DEFAULT_RUNTIME = ("runc", "crun", "conmon", "containerd", "containerd-shim", "containerd-shim-runc-v2",
                   "containerd-shim-runc-v1", "dockerd", "docker-proxy", "runc:[0:PARENT]", "runc:[1:CHILD]",
                   "runc:[2:INIT]")
HISTORY_PER_PID = 4
OWNERS_PER_DEVICE = 4  # the newest containers seen starting on one anonymous device (the kernel reuses the numbers)


def basename(path: str) -> str:
    return path.rstrip("/").rpartition("/")[2] if path not in ("", "/") else path


def anonymous_device(dev: str) -> bool:
    """Overlay, tmpfs and other anonymous filesystems have major number 0 (`00:27`)."""
    return dev.startswith(("00:", "0:"))


class Proc:
    """One process image (an execve) and its attribution."""

    __slots__ = ("argv", "cds", "comm", "container", "dev", "evidence", "exe", "helper", "identity", "last",
                 "persisted", "pid", "ppid", "runtime", "serves", "start", "uid")

    def __init__(self, pid: str, ppid: str, start: float, comm: str = "", exe: str = "", dev: str = "",
                 argv: Optional[List[str]] = None, uid: str = "", container: str = "", evidence: str = "",
                 runtime: bool = False, helper: bool = False, identity: str = "", serves: str = "") -> None:
        self.pid = pid
        self.ppid = ppid
        self.start = start
        self.comm = comm
        self.exe = exe
        self.dev = dev
        self.argv = argv or []
        self.uid = uid
        self.container = container
        self.evidence = evidence
        self.runtime = runtime
        self.helper = helper
        self.identity = identity  # how its container was known (ground.CONTAINER_IDENTITIES)
        self.serves = serves      # a runtime process: the container id its runtime call names (it starts a process there)
        self.last = start
        self.persisted = False  # loaded from the state of an earlier search
        self.cds: List[str] = []  # the _cd of its execve event in this search (not persisted)

    def to_json(self) -> Dict[str, Any]:
        return {"pid": self.pid, "ppid": self.ppid, "start": self.start, "comm": self.comm, "exe": self.exe,
                "dev": self.dev, "argv": self.argv[:12], "uid": self.uid, "container": self.container,
                "evidence": self.evidence, "runtime": self.runtime, "helper": self.helper, "last": self.last,
                "identity": self.identity, "serves": self.serves}

    @classmethod
    def from_json(cls, data: Any) -> Optional["Proc"]:
        """The process persisted by to_json; None when the entry is unusable (no pid, no finite start time)."""
        if not isinstance(data, dict):
            return None
        pid = _key_text(data.get("pid"))
        start = finite_float(data.get("start"))
        if not pid or start is None:
            return None
        argv = data.get("argv")
        proc = cls(pid, _key_text(data.get("ppid")), start, _str(data.get("comm")), _str(data.get("exe")),
                   _str(data.get("dev")), [a for a in argv if isinstance(a, str)] if isinstance(argv, list) else [],
                   _key_text(data.get("uid")), _str(data.get("container")), _str(data.get("evidence")),
                   data.get("runtime") is True, data.get("helper") is True, _str(data.get("identity")),
                   _str(data.get("serves")))
        last = finite_float(data.get("last"))
        proc.last = max(last, start) if last is not None else start
        proc.persisted = True
        return proc


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _key_text(value: Any) -> str:
    """A pid, ppid or uid as persisted: a string, or an int from an older or hand-edited state."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _str(value)


def key_of_newest(claims: List[Tuple[float, str]]) -> str:
    return claims[-1][1] if claims else ""


def _claims(value: Any) -> List[Tuple[float, str]]:
    """A persisted device's [[when, key], ...], the unusable pairs left out."""
    claims = []
    for pair in value if isinstance(value, list) else []:
        if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], str) and pair[1]:
            when = finite_float(pair[0])
            if when is not None:
                claims.append((when, pair[1]))
    return sorted(claims)[-OWNERS_PER_DEVICE:]


def _container_entry(value: Any) -> Optional[Dict[str, Any]]:
    """A persisted container entry with finite first/last times, else None."""
    if not isinstance(value, dict):
        return None
    first, last = finite_float(value.get("first")), finite_float(value.get("last"))
    if first is None or last is None:
        return None
    return {"first": min(first, last), "last": max(first, last), "evidence": _str(value.get("evidence")),
            "id": _str(value.get("id")), "identity": _str(value.get("identity"))}


class HostLineage:
    """The process table and container registry of one host."""

    def __init__(self, host: str, runtime_names: Iterable[str] = DEFAULT_RUNTIME) -> None:
        self.host = host
        self.runtime_names = frozenset(runtime_names)
        self.procs: Dict[str, List[Proc]] = {}
        self.containers: Dict[str, Dict[str, Any]] = {}
        self.host_devs: Dict[str, float] = {}
        # overlay layer -> (the anonymous device its merged directory was mounted as, when last seen): lineage.helper
        self.layers: Dict[str, Tuple[str, float]] = {}
        # anonymous device -> (when, container key) of the containers seen starting on it, oldest first: a device
        # belongs to a container from its start to the next container start on the same (reused) device number
        self.devices: Dict[str, List[Tuple[float, str]]] = {}
        self.max_time = 0.0
        self.max_pid_seen: List[Tuple[float, int]] = []
        self.dropped = 0  # unusable entries of the persisted state, skipped by from_json

    # ---- persistence -------------------------------------------------------------------------------------------
    def to_json(self, ttl: float) -> Dict[str, Any]:
        """Everything active within `ttl` of the newest time, every process by its newest image."""
        horizon = self.max_time - ttl
        state = self.frame_json(ttl)
        state["procs"] = [images[-1].to_json() for images in self.procs.values() if images[-1].last >= horizon]
        return state

    def frame_json(self, ttl: float) -> Dict[str, Any]:
        """to_json without its processes ("procs" empty): escape_engine.lineage.persist chooses those itself."""
        horizon = self.max_time - ttl
        containers = {k: v for k, v in self.containers.items() if float(v.get("last", 0.0)) >= horizon}
        devs = {d: t for d, t in self.host_devs.items() if t >= horizon}
        layers = {layer: {"dev": dev, "last": when} for layer, (dev, when) in self.layers.items() if when >= horizon}
        owners = {d: [[when, key] for when, key in claims] for d, claims in self.devices.items()
                  if key_of_newest(claims) in containers}
        return {"host": self.host, "max_time": self.max_time, "procs": [], "containers": containers,
                "host_devs": devs, "layers": layers, "devices": owners}

    @classmethod
    def from_json(cls, data: Any, runtime_names: Iterable[str] = DEFAULT_RUNTIME, host: str = "") -> "HostLineage":
        """The table persisted by to_json. `host`, when given, is the name the state was stored under and wins over
        the state's own (possibly missing) host field. A corrupted state (hand edits, a cut file, wrong types) never
        raises: each unusable entry is skipped and counted in `dropped`; what is intact is kept."""
        if not isinstance(data, dict):
            table = cls(host, runtime_names)
            table.dropped = 1
            return table
        table = cls(host or _str(data.get("host")), runtime_names)
        procs = data.get("procs", [])
        for item in procs if isinstance(procs, list) else [procs]:
            proc = Proc.from_json(item)
            if proc is None:
                table.dropped += 1
                continue
            table.procs[proc.pid] = [proc]
        containers = data.get("containers", {})
        for key, value in (containers.items() if isinstance(containers, dict) else [("", containers)]):
            entry = _container_entry(value)
            if entry is None or not key:
                table.dropped += 1
                continue
            table.containers[key] = entry
        devs = data.get("host_devs", {})
        for dev, value in (devs.items() if isinstance(devs, dict) else [("", devs)]):
            when = finite_float(value)
            if when is None or not dev:
                table.dropped += 1
                continue
            table.host_devs[dev] = when
        layers = data.get("layers", {})
        for layer, value in (layers.items() if isinstance(layers, dict) else [("", layers)]):
            when = finite_float(value.get("last")) if isinstance(value, dict) else None
            dev = value.get("dev") if isinstance(value, dict) else None
            if when is None or not layer or not isinstance(dev, str) or not anonymous_device(dev):
                table.dropped += 1
                continue
            table.layers[layer] = (dev, when)
        owners = data.get("devices", {})
        for dev, value in (owners.items() if isinstance(owners, dict) else [("", owners)]):
            claims = _claims(value)
            if not claims or not anonymous_device(dev):
                table.dropped += 1
                continue
            table.devices[dev] = claims
        max_time = finite_float(data.get("max_time", 0.0))
        if max_time is None:
            table.dropped += 1
            max_time = 0.0
        table.max_time = max([max_time] + [p[-1].last for p in table.procs.values()])
        return table

    # ---- lookups -----------------------------------------------------------------------------------------------
    def lookup(self, pid: str, when: float, skew: float = 0.0) -> Optional[Proc]:
        """The image of `pid` running at `when`: the newest one that started no later than `when` (+ skew)."""
        images = self.procs.get(pid)
        if not images:
            return None
        for proc in reversed(images):
            if proc.start <= when + skew:
                return proc
        return None

    def known(self, pid: str) -> bool:
        return pid in self.procs

    # ---- updates -----------------------------------------------------------------------------------------------
    def note_host_dev(self, dev: str, when: float) -> None:
        if dev and not anonymous_device(dev):
            self.host_devs[dev] = max(when, self.host_devs.get(dev, 0.0))

    def is_host_dev(self, dev: str) -> bool:
        if not dev or anonymous_device(dev):
            return False
        return dev in self.host_devs if self.host_devs else True

    def add(self, proc: Proc) -> None:
        images = self.procs.setdefault(proc.pid, [])
        if images and images[-1].ppid != proc.ppid and not proc.helper:
            images.clear()  # pid reused by another process: the old lineage no longer applies
        images.append(proc)
        if len(images) > HISTORY_PER_PID:
            del images[0]
        self.max_time = max(self.max_time, proc.start)

    def touch(self, pid: str, when: float) -> None:
        images = self.procs.get(pid)
        if images:
            images[-1].last = max(images[-1].last, when)
        self.max_time = max(self.max_time, when)

    def container_seen(self, key: str, when: float, evidence: str, container_id: str = "",
                       identity: str = "") -> None:
        entry = self.containers.setdefault(key, {"first": when, "last": when, "evidence": evidence, "id": container_id,
                                                 "identity": identity})
        entry["last"] = max(float(entry["last"]), when)
        entry["first"] = min(float(entry["first"]), when)
        if container_id and not entry.get("id"):
            entry["id"] = container_id

    def claim_device(self, dev: str, when: float, key: str) -> None:
        """A container known exactly ran a process from the anonymous device `dev` at `when`: from its first such
        process on, the device is its own, until another container starts on it."""
        claims = self.devices.setdefault(dev, [])
        if claims and claims[-1][1] == key:
            return
        claims.append((when, key))
        claims.sort()
        del claims[:-OWNERS_PER_DEVICE]

    def device_owner(self, dev: str, when: float, skew: float = 0.0) -> str:
        """The container the anonymous device `dev` belonged to at `when`: the last one seen starting on it no later
        than that, else "" (no container known to have started on it)."""
        owner = ""
        for start, key in self.devices.get(dev, []):
            if start <= when + skew:
                owner = key
        return owner
