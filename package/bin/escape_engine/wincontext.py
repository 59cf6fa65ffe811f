"""Container context of a Windows process (no Windows event carries a container id): the markers of a
process-isolated container or of a Kubernetes HostProcess container, and the Sysmon ProcessGuid lineage that carries
the context to descendants across the chunks of one search."""
import collections
import functools
import re
from typing import Deque, Dict, List, Optional, Tuple

from escape_engine import winpath
from escape_engine.ground import Record
from escape_engine.winevent import WinEvent

CONTAINER_ACCOUNTS = ("containeradministrator", "containeruser")
_HOSTPROCESS_PARENTS = ("containerd-shim-runhcs-v1.exe",)
_PATH_SEPARATOR = re.compile(r"[\\/]")
_SANDBOX_MOUNT = re.compile(r"container_sandbox_mount_point", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def _basename(path: str) -> str:
    return _PATH_SEPARATOR.split(path.strip().strip("\"'"))[-1].lower()


def _is_container_account(account: str) -> bool:
    domain, _, name = account.rpartition("\\")
    return name.lower() in CONTAINER_ACCOUNTS and domain.lower() in ("", "user manager")


def container_context(event: WinEvent) -> Tuple[str, List[str]]:
    """('container' | 'hostprocess' | '', reasons). Markers of a process-isolated container win over HostProcess."""
    context, reasons = _container_context(event)
    return context, list(reasons)


@functools.lru_cache(maxsize=4096)
def _container_context(event: WinEvent) -> Tuple[str, Tuple[str, ...]]:
    """container_context with immutable reasons, remembered: a chunk repeats the same processes, and run() asks
    again for every Sysmon process start on each round of lineage propagation."""
    reasons: List[str] = []
    if _basename(event.parent_image) == "cexecsvc.exe":
        reasons.append("parent CExecSvc.exe")
    if _basename(event.image) == "cexecsvc.exe":
        reasons.append("process CExecSvc.exe")
    if _is_container_account(event.user):
        reasons.append("account " + event.user)
    elif event.kind == "sysmon_1" and _is_container_account(event.parent_user):
        reasons.append("parent account " + event.parent_user)
    if event.image and winpath.is_container_volume(event.image):
        reasons.append("image on a container volume")
    if event.parent_image and winpath.is_container_volume(event.parent_image):
        reasons.append("parent image on a container volume")
    if reasons:
        return "container", tuple(reasons)
    hostprocess: List[str] = []
    if _basename(event.parent_image) in _HOSTPROCESS_PARENTS:
        hostprocess.append("parent " + _basename(event.parent_image))
    for path in (event.image, event.parent_image):
        normal = winpath.normalise(path)
        if normal.volume_kind == "drive" and normal.parts[:1] == ("hpc",):
            hostprocess.append("image under C:/hpc")
            break
    if _SANDBOX_MOUNT.search(event.command_line + " " + event.parent_command_line):
        hostprocess.append("CONTAINER_SANDBOX_MOUNT_POINT in the command line")
    return ("hostprocess", tuple(hostprocess)) if hostprocess else ("", ())


def _is_guid(guid: str) -> bool:
    """A ProcessGuid that names a process: not empty and not the all-zero GUID Sysmon writes when it has none."""
    return guid.strip("{}0-") != ""


Waiting = Tuple[Optional[Record], WinEvent, List[Dict[str, str]]]


class _Bucket:
    """The events waiting for one ancestor GUID: `needed` ones (with findings, or process starts whose own GUID other
    waiting events need) and `leaves` (process starts nothing waits for), each oldest first."""

    __slots__ = ("leaves", "needed")

    def __init__(self) -> None:
        self.needed: Deque[Waiting] = collections.deque()
        self.leaves: Deque[Waiting] = collections.deque()

    def __len__(self) -> int:
        return len(self.needed) + len(self.leaves)


class Lineage:
    """Sysmon ProcessGuids of processes known to be in a container's context, per computer, across the chunks of one
    search (bounded: the oldest entries go first, counted in `forgotten`). A Sysmon 1 whose ParentProcessGuid is known
    inherits the context, which carries CExecSvc.exe lineage past the first generation; a Sysmon 11 inherits it
    through its ProcessGuid.

    Splunk hands events newest first, so a child often comes a chunk before its container ancestor. Sysmon events
    without a context wait, keyed by the GUID they would inherit through; when that GUID becomes known in a later
    chunk they are resolved and their findings emitted then. The wait is bounded per ancestor (`per_ancestor`: a
    flood of siblings evicts siblings, not another ancestor's descendants) and in all (`wait_limit`); process starts
    that nothing waits for go first, then the oldest. Every evicted event is counted (`evicted`, `evicted_findings`)
    for the search's messages."""

    def __init__(self, limit: int = 200000, wait_limit: int = 20000, per_ancestor: int = 1000) -> None:
        self.limit = limit
        self.known: Dict[Tuple[str, str], str] = {}
        self.wait_limit = wait_limit
        self.per_ancestor = per_ancestor
        self.waiting: Dict[Tuple[str, str], _Bucket] = {}
        self.waiting_count = 0
        self.evicted = 0  # waiting events given up to stay within the bounds
        self.evicted_findings = 0  # of those, events with findings (alerts that can no longer be raised)
        self.forgotten = 0  # known container GUIDs dropped over `limit`
        self.fresh: List[Tuple[str, str]] = []  # GUIDs added since the waiting events were last looked at
        self._leaf_keys: Deque[Tuple[str, str]] = collections.deque()  # one entry per leaf that waited, oldest first

    def add(self, computer: str, guid: str, context: str) -> bool:
        if not _is_guid(guid) or (computer.lower(), guid) in self.known:
            return False
        self.known[(computer.lower(), guid)] = context
        self.fresh.append((computer.lower(), guid))
        if len(self.known) > self.limit:
            del self.known[next(iter(self.known))]
            self.forgotten += 1
        return True

    def get(self, computer: str, guid: str) -> str:
        return self.known.get((computer.lower(), guid), "") if guid else ""

    def wait(self, record: Record, event: WinEvent, rows: List[Dict[str, str]]) -> None:
        """Keep a Sysmon event that has no context yet: its findings (`rows`, with the record), or for a process start
        without findings only the event, which later generations may inherit through."""
        guid = event.parent_process_guid if event.kind == "sysmon_1" else event.process_guid
        if not _is_guid(guid) or (event.kind == "sysmon_11" and not rows):
            return
        key = (event.computer.lower(), guid)
        bucket = self.waiting.get(key)
        if bucket is None:
            bucket = self.waiting[key] = _Bucket()
        if len(bucket) >= self.per_ancestor:
            self._evict_from(key, bucket)
            if key not in self.waiting:
                bucket = self.waiting[key] = _Bucket()
        entry: Waiting = (record if rows else None, event, rows)
        if rows or (event.kind == "sysmon_1" and (event.computer.lower(), event.process_guid) in self.waiting):
            bucket.needed.append(entry)
        else:
            bucket.leaves.append(entry)
            self._leaf_keys.append(key)
        self.waiting_count += 1
        while self.waiting_count > self.wait_limit:
            self._evict_one()

    def _evict_from(self, key: Tuple[str, str], bucket: _Bucket) -> None:
        _record, _event, rows = bucket.leaves.popleft() if bucket.leaves else bucket.needed.popleft()
        self.waiting_count -= 1
        self.evicted += 1
        if rows:
            self.evicted_findings += 1
        if not bucket:
            del self.waiting[key]

    def _evict_one(self) -> None:
        while self._leaf_keys:  # a process start nothing waits for, oldest first
            key = self._leaf_keys.popleft()
            bucket = self.waiting.get(key)
            if bucket is not None and bucket.leaves:
                self._evict_from(key, bucket)
                return
        key = next(iter(self.waiting))
        self._evict_from(key, self.waiting[key])

    def resolve(self) -> List[Tuple[Record, WinEvent, List[Dict[str, str]], str, List[str]]]:
        """The waiting events whose GUID has become known, each with its findings, context and reasons; a resolved
        process start makes its own GUID known in turn, so deeper generations follow."""
        resolved: List[Tuple[Record, WinEvent, List[Dict[str, str]], str, List[str]]] = []
        while self.fresh:
            fresh, self.fresh = self.fresh, []
            for key in fresh:
                bucket = self.waiting.pop(key, None)
                if bucket is None:
                    continue
                for record, event, rows in list(bucket.needed) + list(bucket.leaves):
                    self.waiting_count -= 1
                    context, reasons = context_with_lineage(event, self)
                    if event.kind == "sysmon_1" and context:
                        self.add(event.computer, event.process_guid, context)
                    if record is not None and context:
                        resolved.append((record, event, rows, context, reasons))
        return resolved

    def messages(self) -> List[str]:
        """What the bounds cost this search, for its messages (empty when nothing was given up)."""
        said = []
        if self.evicted:
            said.append("{} Sysmon events waiting for a container ancestor were given up ({} of them with findings): "
                        "at most {} wait per ancestor GUID and {} in all; narrow the search range or the hosts so "
                        "that ancestors and descendants come in fewer events".format(
                            self.evicted, self.evicted_findings, self.per_ancestor, self.wait_limit))
        if self.forgotten:
            said.append("{} container process GUIDs were forgotten over the limit of {}".format(
                self.forgotten, self.limit))
        return said


def context_with_lineage(event: WinEvent, lineage: Lineage) -> Tuple[str, List[str]]:
    context, reasons = _container_context(event)
    if context == "container":
        return context, list(reasons)
    inherited = ""
    if event.kind == "sysmon_1":
        inherited = lineage.get(event.computer, event.parent_process_guid)
    elif event.kind == "sysmon_11":
        inherited = lineage.get(event.computer, event.process_guid)
    if inherited == "container" or inherited and not context:
        if event.kind == "sysmon_1":
            return inherited, ["descendant of a container process (ParentProcessGuid {})".format(
                event.parent_process_guid)]
        return inherited, ["written by a container process (ProcessGuid {})".format(event.process_guid)]
    return context, list(reasons)
