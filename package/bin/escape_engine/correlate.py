"""Namespace-aware correlation of Linux audit (and Sysmon for Linux) events into container-escape chains.

Records arrive newest first, chunk by chunk. `Correlator.encode` turns them into compact lines (what the correlation
reads) whose string order is the replay order; the command spools each chunk's lines sorted to a file and, on the
last chunk, feeds the merged runs to `Correlator.replay` (`feed` + `finish` do the same in memory, for tests and
one-shot use). Replay joins the records of one audit event (adjacent in that order) and processes events in time order through a per-host
process table (`lineage.HostLineage`) that was loaded from the persisted state. Per container it collects:

- triggers: the suspicious syscalls (unshare, setns, mount, umount2, keyctl, add_key, request_key, pivot_root, chroot,
  open_by_handle_at, init_module, finit_module; minus the allowlist) of non-runtime container processes, the execve of
  escape tools, a container-side runtime client (`docker run --privileged ...` through a mounted socket) and writes to
  `release_agent` / `core_pattern` (file watches);
- results: host binaries (the host root device) executed by the container's lineage, children of the kernel usermode
  helper (a parent pid never seen, born after the container's mount or agent write, within HELPER_WINDOW seconds) and a
  new container started after a container-side runtime client.

Items of one container closer than `window` seconds form one chain: a trigger plus a result is an escape (critical);
successful suspicious syscalls alone are a suspicious-syscall finding (medium or high); failed calls and tool execs alone
(seccomp-blocked attempts leave only the execve) are an attempt (low).
"""
import hashlib
import json
import re
import struct
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Set, Tuple, Union

from escape_engine import auditd, sysmon_linux
from escape_engine.lineage import (DEFAULT_RUNTIME, RUNC_INIT_TITLE, HostLineage, Proc, basename,
                                   container_id_from_argv, is_runc_init)
from escape_engine.scalars import finite_float, first_text, is_ascii_digits

Value = Union[str, List[str]]
Record = Mapping[str, Value]

SUSPICIOUS_SYSCALLS = ("unshare", "setns", "mount", "umount2", "keyctl", "add_key", "request_key", "pivot_root",
                       "chroot", "open_by_handle_at", "init_module", "finit_module")
ESCAPE_TOOLS = frozenset(("nsenter", "unshare", "keyctl", "mount", "umount", "chroot", "debugfs", "pivot_root",
                          "insmod", "modprobe", "capsh", "switch_root", "docker", "podman", "nerdctl", "ctr",
                          "crictl", "kubectl"))
RUNTIME_CLIENTS = frozenset(("docker", "podman", "nerdctl", "ctr", "crictl", "kubectl"))
CLIENT_VERBS = frozenset(("run", "create", "exec", "debug"))
RISKY_CLIENT_MARKERS = ("--privileged", "--pid=host", "--pid", "/:/", "-v=/:", "docker.sock", "containerd.sock",
                        "crio.sock", "--cap-add", "seccomp=unconfined", "apparmor=unconfined", "--net=host",
                        "--userns=host", "--ipc=host")
AGENT_FILES = ("release_agent", "core_pattern")
HELPER_WINDOW = 10.0
# Sysmon for Linux fields the correlation reads (EventID 1 and 11).
SYSMON_FIELDS = frozenset(("EventID", "Computer", "UtcTime", "Image", "CommandLine", "ParentImage", "ParentProcessId",
                           "ProcessId", "User", "CurrentDirectory", "TargetFilename"))
# Sysmon events the correlation reads, and the fields without which one is malformed.
SYSMON_REQUIRED = {"1": ("ProcessId", "Image"), "11": ("TargetFilename",)}
# Record types the correlation reads; the others (BPRM_FCAPS, SOCKADDR, USER, ...) keep only their _cd as evidence.
READ_TYPES = frozenset(("SYSCALL", "EXECVE", "PATH", "PROCTITLE", "CWD", "CONTAINER_ID"))
REPORTS = ("escapes", "attempts", "all")
SEVERITY_RANK = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
_NS_FLAGS = ((0x10000000, "user"), (0x20000000, "pid"), (0x40000000, "net"), (0x20000, "mnt"), (0x8000000, "ipc"),
             (0x4000000, "uts"), (0x2000000, "cgroup"), (0x80, "time"))


class Item:
    """One event of a container's activity that a chain may rest on."""

    __slots__ = ("time", "kind", "cds", "text", "success", "name", "detail", "order", "source", "sourcetype",
                 "attribution")

    def __init__(self, time: float, kind: str, cds: List[str], text: str, success: bool, name: str,
                 detail: str = "", order: int = 0, source: str = "", sourcetype: str = "",
                 attribution: str = "") -> None:
        self.time = time
        self.attribution = attribution
        self.kind = kind
        self.cds = cds
        self.text = text
        self.success = success
        self.name = name
        self.detail = detail
        self.order = order
        self.source = source
        self.sourcetype = sourcetype


class _Chain:
    """A classified cluster: its alert row but for what reads the container table, which is filled in at the end
    (a container's id or evidence may be learnt after its chain closed)."""

    __slots__ = ("row", "host", "key", "attribution", "trigger_text", "result_texts")

    def __init__(self, row: Dict[str, Value], host: str, key: str, attribution: str, trigger_text: str,
                 result_texts: List[str]) -> None:
        self.row = row
        self.host = host
        self.key = key
        self.attribution = attribution
        self.trigger_text = trigger_text
        self.result_texts = result_texts


class _Event:
    __slots__ = ("host", "time", "serial", "records", "cds", "sysmon", "source", "sourcetype")

    def __init__(self, host: str, time: float, serial: int) -> None:
        self.host = host
        self.time = time
        self.serial = serial
        self.records: List[auditd.AuditRecord] = []
        self.cds: List[str] = []
        self.sysmon: Optional[Dict[str, str]] = None
        self.source = ""
        self.sourcetype = ""


def _splunk_time(record: Record) -> float:
    when = finite_float(first_text(record.get("_time")))
    return float("nan") if when is None else when


# ---- spool line encoding -----------------------------------------------------------------------------------------
# A spool line: host, time, serial, stamp, arrival, _cd, source, sourcetype, record type, payload, tab-separated.
# Text fields are escaped (backslash, tab, CR, LF) so that a line is one line and its fields split on tabs.
# Event times outside 1970-2100 are malformed: a far-future stamp would age the host's whole persisted lineage out
# (the TTL counts back from the newest time seen).
EPOCH_RANGE = (0.0, 4102444800.0)
SYSMON_SERIAL = "-"        # sorts before every audit serial ("%02d" length, then digits)
MAX_SERIAL_DIGITS = 99     # what "%02d" holds; audit serials are 32 or 64-bit counters (20 digits at most)
_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\r": "\\r", "\n": "\\n"}
_UNESCAPES = {value[1]: key for key, value in _ESCAPES.items()}
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


def _escape(text: str) -> str:
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return "".join(_ESCAPES.get(c, c) for c in text)
    return text


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPED.sub(lambda m: _UNESCAPES.get(m.group(1), m.group(1)), text)


def _time_key(when: float) -> str:
    """16 hex digits whose string order is the numeric order of the double `when` (-0.0 folded into 0.0)."""
    bits: int = struct.unpack(">Q", struct.pack(">d", when + 0.0))[0]
    return "%016x" % (bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | 0x8000000000000000)


def _time_value(key: str) -> float:
    bits = int(key, 16)
    value: float = struct.unpack(">d", struct.pack(">Q", bits & 0x7FFFFFFFFFFFFFFF if bits >> 63
                                                    else bits ^ 0xFFFFFFFFFFFFFFFF))[0]
    return value


def _ns_names(value: str) -> str:
    try:
        flags = int(value, 16)
    except ValueError:
        return value
    names = [name for bit, name in _NS_FLAGS if flags & bit]
    return "|".join(names) if names else value


def parse_list(text: str) -> List[str]:
    return [item.strip() for item in text.replace(";", ",").split(",") if item.strip()]


class Correlator:
    """Stateful correlation over chunks of events; see the module docstring."""

    def __init__(self, *, window: float = 300.0, skew: float = 2.0, allowlist: Iterable[str] = (),
                 runtime: Optional[Iterable[str]] = None, ttl: float = 7 * 86400.0, report: str = "escapes",
                 state: Optional[Mapping[str, Mapping[str, Any]]] = None) -> None:
        if window <= 0:
            raise ValueError("window must be a positive number of seconds, got {}".format(window))
        if skew < 0:
            raise ValueError("skew must be zero or more seconds, got {}".format(skew))
        if report not in REPORTS:
            raise ValueError("report must be one of {}, got {!r}".format(", ".join(REPORTS), report))
        unknown = [s for s in allowlist if s not in SUSPICIOUS_SYSCALLS and s != "umount2"]
        if unknown:
            raise ValueError("allowlist names unknown syscalls: {}; use any of {}".format(
                ", ".join(unknown), ", ".join(SUSPICIOUS_SYSCALLS)))
        self.window = window
        self.skew = skew
        self.allowlist = frozenset(allowlist)
        self.runtime = tuple(runtime) if runtime else DEFAULT_RUNTIME
        self.ttl = ttl
        self.report = report
        self.hosts: Dict[str, HostLineage] = {}
        self.summary: Dict[str, int] = {"records": 0, "audit_events": 0, "sysmon_events": 0, "malformed": 0,
                                        "out_of_order": 0, "runtime_suppressed": 0, "allowlisted": 0,
                                        "escapes": 0, "suspicious": 0, "attempts": 0, "state_dropped": 0}
        for host, data in (state or {}).items():  # unusable entries (a hand edit, a cut document) are skipped, counted
            self.hosts[host] = HostLineage.from_json(data, self.runtime, host=host)
            self.summary["state_dropped"] += self.hosts[host].dropped
        self._buffer: List[str] = []
        self._seq = 0
        self._last_key: Optional[Tuple[str, str, str]] = None
        self._oldest: Optional[float] = None
        # The open cluster of each container, per host: items closer than `window` apart. A cluster is classified as
        # soon as replay time passes its last item by more than `window` (no later item can join it), so what is held
        # is bounded by the window, not by the search range; the rows wait in _chains for the container table.
        self._items: Dict[str, Dict[str, List[Item]]] = {}
        self._chains: List[Tuple[Tuple[str, str, int], _Chain]] = []
        self._swept: Tuple[str, float] = ("", float("-inf"))
        self._traps: Dict[str, List[Tuple[float, int, str, List[str]]]] = {}
        self._clients: Dict[str, List[Tuple[float, str, str, List[str]]]] = {}
        self._order = 0
        self._started: Set[Tuple[str, str]] = set()

    # ---- input: records -> compact spool lines ------------------------------------------------------------------
    # Each record becomes one tab-separated line holding only what the correlation reads (spool line encoding). Its
    # first five fields are encoded so that plain string order of whole lines is the replay order: per host, oldest
    # first, then serial, stamp and arrival. `feed` keeps the lines in memory; a caller that spools each chunk's lines
    # sorted to a file (`encode`) and merges the files into `replay` holds no event in memory.
    def feed(self, records: Iterable[Record]) -> None:
        self._buffer.extend(self.encode(records))

    def encode(self, records: Iterable[Record]) -> List[str]:
        """One spool line per kept record of one chunk; counts records, malformed and out-of-order events."""
        out: List[str] = []
        summary = self.summary
        prefix = ""
        prefix_key: Optional[Tuple[str, float, str, str]] = None
        labels = ""
        labels_key: Optional[Tuple[str, str]] = None
        for record in records:
            summary["records"] += 1
            raw = first_text(record.get("_raw"))
            if not raw.strip():
                summary["malformed"] += 1
                continue
            host = first_text(record.get("host"))
            cd = _escape(first_text(record.get("_cd")))
            source, sourcetype = first_text(record.get("source")), first_text(record.get("sourcetype"))
            if labels_key != (source, sourcetype):
                labels_key = (source, sourcetype)
                labels = _escape(source) + "\t" + _escape(sourcetype)
            splunk_time: Optional[float] = None
            if "<Event" in raw and "<EventID>" in raw:
                data = sysmon_linux.parse_event(raw)
                if data is None or data["EventID"] not in SYSMON_REQUIRED:
                    if data is None:
                        summary["malformed"] += 1
                    continue
                if not all(data.get(name) for name in SYSMON_REQUIRED[data["EventID"]]):
                    summary["malformed"] += 1  # a process start without its process, a file create without its file
                    continue
                when = sysmon_linux.utc_epoch(data.get("UtcTime", "")) or _splunk_time(record)
                if not EPOCH_RANGE[0] <= when < EPOCH_RANGE[1]:  # also NaN: no time from the event or from Splunk
                    summary["malformed"] += 1
                    continue
                self._arrival(when)
                self._last_key = None
                kept = {k: v for k, v in data.items() if k in SYSMON_FIELDS}
                self._seq += 1
                out.append("\t".join((_escape(data.get("Computer") or host), _time_key(when), SYSMON_SERIAL, "",
                                      "%012x" % self._seq, cd, labels, "sysmon",
                                      json.dumps(kept, separators=(",", ":")))))
                continue
            for line in raw.split("\n"):
                parsed = auditd.parse_line(line)
                if parsed is None:
                    if line.strip():
                        summary["malformed"] += 1
                    continue
                epoch = parsed.epoch
                if epoch is not None:
                    when = epoch
                else:  # ausearch -i stamps are local time text: Splunk's _time stands in
                    if splunk_time is None:
                        splunk_time = _splunk_time(record)
                    when = splunk_time
                if not EPOCH_RANGE[0] <= when < EPOCH_RANGE[1] or len(parsed.serial) > MAX_SERIAL_DIGITS:
                    summary["malformed"] += 1
                    continue
                event_host = parsed.node or host
                key = (event_host, parsed.stamp, parsed.serial)
                if key != self._last_key:
                    self._arrival(when)
                    self._last_key = key
                if prefix_key != (event_host, when, parsed.serial, parsed.stamp):
                    prefix_key = (event_host, when, parsed.serial, parsed.stamp)
                    digits = parsed.serial.lstrip("0") or "0"
                    prefix = "%s\t%s\t%02d%s\t%s\t" % (_escape(event_host), _time_key(when), len(digits), digits,
                                                        _escape(parsed.stamp))
                self._seq += 1
                if parsed.rtype in READ_TYPES:
                    out.append("%s%012x\t%s\t%s\t%s\t%s" % (prefix, self._seq, cd, labels, _escape(parsed.rtype),
                                                             _escape(parsed.body)))
                else:  # kept for its _cd only (evidence)
                    out.append("%s%012x\t%s\t%s\t\t" % (prefix, self._seq, cd, labels))
        return out

    def _arrival(self, when: float) -> None:
        if self._oldest is not None and when > self._oldest + self.skew:
            self.summary["out_of_order"] += 1
        if self._oldest is None or when < self._oldest:
            self._oldest = when

    def replay(self, lines: Iterable[str]) -> None:
        """Process spool lines in string order, one event at a time (the records of an audit event are adjacent)."""
        event: Optional[_Event] = None
        group: Optional[Tuple[str, str, str]] = None
        for line in lines:
            host, time_key, serial, stamp, _seq, cd, source, sourcetype, rtype, payload = line.split("\t", 9)
            if serial == SYSMON_SERIAL:
                if event is not None:
                    self._dispatch(event)
                event, group = None, None
                sysmon = _Event(_unescape(host), _time_value(time_key), -1)
                sysmon.sysmon = {str(k): str(v) for k, v in dict(json.loads(payload)).items()}
                cd = _unescape(cd)
                sysmon.cds = [cd] if cd else []
                sysmon.source, sysmon.sourcetype = _unescape(source), _unescape(sourcetype)
                self._dispatch(sysmon)
                continue
            if event is None or group != (host, serial, stamp):
                if event is not None:
                    self._dispatch(event)
                event = _Event(_unescape(host), _time_value(time_key), int(serial[2:]))
                event.source, event.sourcetype = _unescape(source), _unescape(sourcetype)
                group = (host, serial, stamp)
            if rtype:
                raw, _, tail = _unescape(payload).partition(auditd.GS)
                event.records.append(auditd.AuditRecord(_unescape(rtype), _unescape(stamp), serial[2:], "", raw,
                                                        tail))
            if cd:
                cd = _unescape(cd)
                if cd not in event.cds:
                    event.cds.append(cd)
        if event is not None:
            self._dispatch(event)

    # ---- replay in time order ----------------------------------------------------------------------------------
    def _table(self, host: str) -> HostLineage:
        table = self.hosts.get(host)
        if table is None:
            table = self.hosts[host] = HostLineage(host, self.runtime)
        return table

    def _dispatch(self, event: _Event) -> None:
        host, swept = self._swept
        if event.host != host or event.time > swept + self.window:
            self._sweep(event.host, event.time)
        self.summary["sysmon_events" if event.sysmon is not None else "audit_events"] += 1
        if event.sysmon is not None:
            self._sysmon_event(event)
        else:
            self._audit_event(event)

    def _audit_event(self, event: _Event) -> None:
        syscall = next((r for r in event.records if r.rtype == "SYSCALL"), None)
        if syscall is None:
            return
        fields = syscall.fields
        name = auditd.syscall_name(syscall)
        pid = fields.get("pid", "")
        ppid = fields.get("ppid", "")
        comm = auditd.decode_string(fields.get("comm", ""))
        exe = auditd.decode_string(fields.get("exe", ""))
        success = fields.get("success", "") in ("yes", "1")
        paths = [r for r in event.records if r.rtype == "PATH"]
        table = self._table(event.host)
        if name in ("execve", "execveat"):
            if not success:
                return
            execve = next((r for r in event.records if r.rtype == "EXECVE"), None)
            argv = auditd.execve_argv(execve) if execve is not None else []
            title_record = next((r for r in event.records if r.rtype == "PROCTITLE"), None)
            title = auditd.proctitle(title_record) if title_record is not None else []
            item0 = next((p for p in paths if p.fields.get("item") == "0"), None)
            dev = item0.fields.get("dev", "") if item0 is not None else ""
            explicit = ""
            cwd_record = next((r for r in event.records if r.rtype == "CWD"), None)
            cwd = auditd.decode_string(cwd_record.fields.get("cwd", "")) if cwd_record is not None else ""
            for record in event.records:
                if record.rtype == "CONTAINER_ID":
                    explicit = record.fields.get("contid", "")
            self._exec(event, table, pid, ppid, comm, exe, dev, argv, title, fields.get("uid", ""),
                       fields.get("subj", ""), explicit, cwd)
            return
        if name in SUSPICIOUS_SYSCALLS:
            self._syscall(event, table, name, pid, ppid, comm, exe, success, fields, paths)
            return
        for path in paths:
            target = auditd.decode_string(path.fields.get("name", ""))
            if target.endswith(AGENT_FILES):
                self._agent_write(event, table, pid, ppid, comm, exe, target)
                return

    def _sysmon_event(self, event: _Event) -> None:
        data = event.sysmon or {}
        table = self._table(event.host)
        if data.get("EventID") == "1":
            image = data.get("Image", "")
            argv = data.get("CommandLine", "").split()
            title: List[str] = []
            if basename(data.get("ParentImage", "")).startswith("containerd-shim"):
                title = list(RUNC_INIT_TITLE)
                parent = data.get("ParentProcessId", "")
                if table.lookup(parent, event.time, self.skew) is None:
                    table.add(Proc(parent, "", event.time - self.skew, basename(data["ParentImage"]),
                                   data["ParentImage"], "", [], runtime=True))
            self._exec(event, table, data.get("ProcessId", ""), data.get("ParentProcessId", ""), basename(image),
                       image, "", argv, title, data.get("User", ""), "", "", data.get("CurrentDirectory", ""))
            if image.startswith("/host/"):
                proc = table.lookup(data.get("ProcessId", ""), event.time, self.skew)
                key = proc.container if proc is not None and proc.container else "image-path:/host"
                self._add_item(event.host, key, Item(event.time, "host_exec", list(event.cds),
                                                     "%s ran %s from the host root mounted under /host" % (
                                                         data.get("ProcessId", ""), image), True, image,
                                                     source=event.source, sourcetype=event.sourcetype))
        elif data.get("EventID") == "11":
            target = data.get("TargetFilename", "")
            if target.endswith(AGENT_FILES):
                self._agent_write(event, table, data.get("ProcessId", ""), "", basename(data.get("Image", "")),
                                  data.get("Image", ""), target)

    def _add_item(self, host: str, key: str, item: Item) -> None:
        """Items arrive in replay order, so per container in time order: a gap over `window` closes the cluster."""
        self._order += 1
        item.order = self._order
        clusters = self._items.setdefault(host, {})
        cluster = clusters.get(key)
        if cluster and item.time - cluster[-1].time > self.window:
            self._close(host, key, cluster)
            cluster = None
        if cluster:
            cluster.append(item)
        else:
            clusters[key] = [item]

    def _sweep(self, host: str, now: float) -> None:
        """Classify the clusters replay time has left behind and forget traps and clients too old to match."""
        previous, _ = self._swept
        if previous != host:  # replay is ordered by host: the previous host has no more events
            for key, cluster in sorted(self._items.pop(previous, {}).items()):
                self._close(previous, key, cluster)
            self._traps.pop(previous, None)
            self._clients.pop(previous, None)
        clusters = self._items.get(host, {})
        for key in [k for k, cluster in clusters.items() if now - cluster[-1].time > self.window]:
            self._close(host, key, clusters.pop(key))
        if host in self._traps:
            self._traps[host] = [t for t in self._traps[host] if now - t[0] <= HELPER_WINDOW]
        if host in self._clients:
            self._clients[host] = [c for c in self._clients[host] if now - c[0] <= self.window]
        self._swept = (host, now)

    def _close(self, host: str, key: str, cluster: List[Item]) -> None:
        chain = self._classify(host, key, cluster)
        if chain is not None:
            self._chains.append(((host, key, cluster[0].order), chain))

    def _exec(self, event: _Event, table: HostLineage, pid: str, ppid: str, comm: str, exe: str, dev: str,
              argv: List[str], title: List[str], uid: str, subj: str, explicit: str, cwd: str = "") -> None:
        when = event.time
        key, evidence, runtime, parent = table.attribute(pid, ppid, when, comm, exe, dev, argv, title, subj,
                                                         explicit, self.skew)
        if parent is not None and parent.persisted and key and "persisted state" not in evidence:
            evidence += " [persisted state]"
        if not key and not runtime and parent is None and cwd == "/" and not table.known(ppid) and \
                table.is_host_dev(dev):
            helper = self._helper_trap(table, pid, ppid, when)
            if helper is not None:
                trap_time, trap_pid, trap_key, trap_cds = helper
                table.add(Proc(ppid, "", trap_time, "(usermode helper)", "", "", [], container=trap_key,
                               evidence="usermode_helper:unseen parent pid %s born after container pid %s's mount"
                                        % (ppid, trap_pid), helper=True))
                key = trap_key
                evidence = "usermode_helper:unseen parent pid %s born after container pid %s's mount" % (
                    ppid, trap_pid)
        proc = Proc(pid, ppid, when, comm, exe, dev, argv, uid, key, evidence, runtime)
        proc.cds = list(event.cds)
        table.add(proc)
        if not key:
            table.note_host_dev(dev, when)
            return
        first = is_runc_init(title)
        container_id = container_id_from_argv(parent.argv) if parent is not None else ""
        table.container_seen(key, when, evidence, container_id)
        item_args: Dict[str, Any] = dict(source=event.source, sourcetype=event.sourcetype, attribution=evidence)
        if first and (table.host, key) not in self._started:
            self._started.add((table.host, key))
            self._child_start(event, table, key, argv)
        command = " ".join(argv)[:200] or exe
        if table.is_host_dev(dev):
            spawner = table.lookup(ppid, when, self.skew)
            kind = "helper_exec" if spawner is not None and spawner.helper else "host_exec"
            self._add_item(table.host, key, Item(when, kind, list(event.cds),
                                                 "pid %s executed the host binary %s (dev %s): %s"
                                                 % (pid, exe, dev, command), True, exe, **item_args))
        tool = basename(comm) if basename(comm) in ESCAPE_TOOLS else basename(exe)
        if tool in ESCAPE_TOOLS:
            if tool in RUNTIME_CLIENTS and any(v in argv for v in CLIENT_VERBS):
                risky = [a for a in argv if a.startswith(RISKY_CLIENT_MARKERS) or any(
                    m in a for m in ("/:/", "docker.sock", "containerd.sock"))]
                self._add_item(table.host, key, Item(when, "socket_client", list(event.cds),
                                                     "pid %s ran the runtime client %s" % (pid, command),
                                                     True, tool, " ".join(risky), **item_args))
                self._clients.setdefault(table.host, []).append((when, key, " ".join(risky), argv))
            else:
                self._add_item(table.host, key, Item(when, "tool", list(event.cds),
                                                     "pid %s executed %s" % (pid, command), True, tool,
                                                     **item_args))

    def _helper_trap(self, table: HostLineage, pid: str, ppid: str,
                     when: float) -> Optional[Tuple[float, int, str, List[str]]]:
        """The kernel's usermode helper: an unseen parent born after the container's trap (cgroup mount or agent write)
        and just before its child (pids grow: trap pid < parent pid < child pid, close together), cwd "/" (checked by
        the caller), within HELPER_WINDOW seconds. A fork of a long-lived unseen process fails the pid order."""
        if not is_ascii_digits(ppid) or not is_ascii_digits(pid):
            return None
        parent, child = int(ppid), int(pid)
        if not parent < child <= parent + 1000:
            return None
        for trap in reversed(self._traps.get(table.host, [])):
            trap_time, trap_pid, _, _ = trap
            if 0.0 <= when - trap_time <= HELPER_WINDOW and trap_pid < parent:
                return trap
        return None

    def _child_start(self, event: _Event, table: HostLineage, key: str, argv: List[str]) -> None:
        """Link a container's first process to a container-side client whose command line ends with its argv."""
        if not argv:
            return
        for when, client_key, risky, client_argv in reversed(self._clients.get(table.host, [])):
            if client_key == key or not 0.0 <= event.time - when <= self.window:
                continue
            if len(client_argv) <= len(argv) or client_argv[-len(argv):] != argv:
                continue
            self._add_item(table.host, client_key, Item(
                event.time, "child_start", list(event.cds),
                "a new container (%s) started running %s, as the container-side client asked (%s)" % (
                    key[:24], " ".join(argv)[:120], risky or "-"), True, key,
                source=event.source, sourcetype=event.sourcetype))
            self._clients[table.host] = [c for c in self._clients[table.host] if c[0] != when]
            return

    def _attribute_running(self, table: HostLineage, pid: str, ppid: str, when: float, comm: str,
                           exe: str) -> Tuple[str, str, bool, Optional[Proc]]:
        proc = table.lookup(pid, when, self.skew)
        parent = table.lookup(ppid, when, self.skew)
        if proc is not None and proc.comm == comm:
            table.touch(pid, when)
            return proc.container, proc.evidence, proc.runtime, proc
        if table.is_runtime(comm, exe, "", parent if parent is not None else proc):
            return "", "", True, proc
        if proc is not None and proc.container:
            return proc.container, proc.evidence, proc.runtime, proc
        if parent is not None and not parent.runtime and parent.container:
            return parent.container, "lineage:parent %s(pid %s) %s" % (parent.comm, parent.pid, parent.evidence), \
                False, proc
        if parent is not None and basename(parent.exe).startswith("containerd-shim"):
            cid = container_id_from_argv(parent.argv)
            return cid or "shim:%s" % parent.pid, "lineage:%s(pid %s)" % (basename(parent.exe), parent.pid), \
                False, proc
        return "", "", False, proc

    def _syscall(self, event: _Event, table: HostLineage, name: str, pid: str, ppid: str, comm: str, exe: str,
                 success: bool, fields: Mapping[str, str], paths: List[auditd.AuditRecord]) -> None:
        when = event.time
        key, attribution, runtime, proc = self._attribute_running(table, pid, ppid, when, comm, exe)
        if runtime:
            self.summary["runtime_suppressed"] += 1
            return
        if not key:
            return
        if name in self.allowlist:
            self.summary["allowlisted"] += 1
            return
        detail = self._detail(name, fields, paths, table)
        cds = list(event.cds)
        if proc is not None:
            for cd in proc.cds:
                if cd not in cds:
                    cds.append(cd)
        text = "%s %s(pid %s, %s) %s%s" % (name, "succeeded" if success else "failed", pid, comm,
                                            detail, "" if success else " exit=%s" % fields.get("exit", ""))
        self._add_item(table.host, key, Item(when, "syscall", cds, text.strip(), success, name, detail,
                                             source=event.source, sourcetype=event.sourcetype,
                                             attribution=attribution))
        if name == "mount" and success and is_ascii_digits(pid) and self._cgroup_mount(proc, detail):
            self._traps.setdefault(table.host, []).append((when, int(pid), key, cds))

    def _agent_write(self, event: _Event, table: HostLineage, pid: str, ppid: str, comm: str, exe: str,
                     target: str) -> None:
        key, _, runtime, _ = self._attribute_running(table, pid, ppid, event.time, comm, exe)
        if runtime or not key:
            return
        self._add_item(table.host, key, Item(event.time, "agent_write", list(event.cds),
                                             "pid %s (%s) wrote %s" % (pid, comm, target), True, "write", target,
                                             source=event.source, sourcetype=event.sourcetype))
        if is_ascii_digits(pid):
            self._traps.setdefault(table.host, []).append((event.time, int(pid), key, list(event.cds)))

    @staticmethod
    def _cgroup_mount(proc: Optional[Proc], detail: str) -> bool:
        """A cgroup (v1) mount arms the release_agent trap: the mounting command names cgroup, or the target does."""
        return "cgroup" in detail or (proc is not None and any("cgroup" in a for a in proc.argv))

    @staticmethod
    def _detail(name: str, fields: Mapping[str, str], paths: List[auditd.AuditRecord], table: HostLineage) -> str:
        a0 = fields.get("a0", "")
        a1 = fields.get("a1", "")
        if name == "unshare":
            return "flags=%s" % _ns_names(a0)
        if name == "setns":
            return "nstype=%s" % (_ns_names(a1) if a1 != "0" else "any")
        if name in ("keyctl",):
            return "op=%s key=%s" % (a0, a1)
        parts = []
        for path in paths:
            pf = path.fields
            target = auditd.decode_string(pf.get("name", ""))
            mode = pf.get("mode", "")
            if mode.startswith("060") or mode.startswith("block"):
                parts.append("block_device=%s(rdev %s)" % (target, pf.get("rdev", "")))
            elif pf.get("inode") == "2" and table.is_host_dev(pf.get("dev", "")):
                parts.append("host_root=%s(dev %s inode 2)" % (target or "-", pf.get("dev", "")))
            elif target and target != "(null)" and pf.get("item") == "0":
                parts.append("path=%s" % target)
        return " ".join(parts)

    # ---- output ------------------------------------------------------------------------------------------------
    def finish(self) -> List[Dict[str, Value]]:
        """Replay the buffered events in time order and return one alert row per chain."""
        if self._buffer:
            lines, self._buffer = self._buffer, []
            lines.sort()
            self.replay(lines)
        for host in sorted(self._items):
            for key, cluster in sorted(self._items[host].items()):
                self._close(host, key, cluster)
        self._items, self._traps, self._clients = {}, {}, {}
        self._swept = ("", float("-inf"))
        self._chains.sort(key=lambda pair: pair[0])
        rows = [self._row(chain) for _, chain in self._chains]
        self._chains = []
        rows.sort(key=lambda r: float(str(r["_time"])), reverse=True)
        return rows

    def _classify(self, host: str, key: str, items: List[Item]) -> Optional["_Chain"]:
        triggers = [i for i in items if i.kind in ("syscall", "tool", "socket_client", "agent_write")]
        if not triggers:
            return None
        first_trigger = triggers[0]
        results = [i for i in items if i.kind in ("host_exec", "helper_exec", "child_start")
                   and i.time >= first_trigger.time - self.skew]
        ok_calls = [i for i in triggers if i.kind == "syscall" and i.success]
        names = sorted({i.name for i in triggers if i.kind == "syscall"})
        if results:
            kinds = {i.kind for i in results}
            if "helper_exec" in kinds:
                finding, severity = "release_agent_host_exec", "critical"
            elif "child_start" in kinds:
                finding, severity = "runtime_socket_escape", "critical"
            elif "setns" in {i.name for i in ok_calls}:
                finding, severity = "nsenter_host_exec", "critical"
            elif "chroot" in {i.name for i in ok_calls}:
                finding, severity = "chroot_host_exec", "critical"
            else:
                finding, severity = "container_host_exec", "high"
            category = "escape"
        elif ok_calls:
            details = " ".join(i.detail for i in ok_calls)
            ok_names = {i.name for i in ok_calls}
            category = "suspicious"
            if "block_device=" in details and "mount" in ok_names:
                # A container mounting a block device reads the host's disk: an escape of the file system.
                finding, severity, category = "host_device_mount", "high", "escape"
            elif "open_by_handle_at" in ok_names:
                finding, severity = "host_file_handle", "high"
                if "host_root=" in details:  # a handle on inode 2 of the host device: the host's / (Shocker)
                    category = "escape"
            elif ok_names & {"init_module", "finit_module"}:
                finding, severity = "kernel_module_load", "high"
            elif ok_names & {"keyctl", "add_key", "request_key"}:
                finding, severity = "host_keyring_access", "medium"
            else:
                finding, severity = "namespace_syscall", "medium"
        else:
            socket = [i for i in triggers if i.kind == "socket_client" and i.detail]
            finding, severity = ("runtime_socket_attempt", "medium") if socket else ("escape_attempt", "low")
            category = "attempt"
        if self.report == "escapes" and category == "attempt":
            return None
        if self.report == "attempts" and category != "attempt":
            return None
        self.summary["escapes" if category == "escape" else "suspicious" if category == "suspicious"
                     else "attempts"] += 1
        evidence: List[str] = []
        for item in items:
            if item.kind in ("host_exec", "helper_exec", "child_start") and item.time < first_trigger.time - self.skew:
                continue
            for cd in item.cds:
                if cd not in evidence:
                    evidence.append(cd)
        anchor = results[0] if results else first_trigger
        chain_seed = "%s|%s|%.3f|%s" % (host, key, first_trigger.time, first_trigger.text)
        chain_id = hashlib.sha1(chain_seed.encode("utf-8")).hexdigest()[:20]
        tools = sorted({i.name for i in triggers if i.kind in ("tool", "socket_client")})
        host_bins = sorted({i.name for i in results if i.kind in ("host_exec", "helper_exec")})
        row: Dict[str, Value] = {
            "_time": "%.3f" % anchor.time,
            "host": host,
            "source": anchor.source,
            "sourcetype": anchor.sourcetype,
            "escape_severity": severity,
            "escape_finding": finding,
            "escape_category": category,
            "escape_summary": "",  # these three read the container table: filled in by _row
            "escape_chain_id": chain_id,
            "escape_evidence_cd": evidence,
            "escape_container": key,
            "escape_container_id": "",
            "escape_attribution": "",
            "escape_syscalls": names,
            "escape_tools": tools,
            "escape_host_binaries": host_bins,
            "escape_first_time": "%.3f" % items[0].time,
            "escape_steps": [i.text for i in items if i.kind != "host_exec" or i.time >= first_trigger.time - self.skew][:50],
        }
        if first_trigger.cds:
            row["_cd"] = first_trigger.cds[0]
        attribution = next((i.attribution for i in triggers if i.attribution), "")
        return _Chain(row, host, key, attribution, first_trigger.text, [i.text for i in results[:3]])

    def _row(self, chain: "_Chain") -> Dict[str, Value]:
        """The chain's alert row, with what the container table knows at the end of the search."""
        container = self._table(chain.host).containers.get(chain.key, {})
        attribution = chain.attribution or str(container.get("evidence", "")) or "unknown"
        row = chain.row
        row["escape_container_id"] = str(container.get("id", ""))
        row["escape_attribution"] = attribution
        row["escape_summary"] = self._summary(row, attribution, chain.trigger_text, chain.result_texts)
        return row

    @staticmethod
    def _summary(row: Mapping[str, Value], attribution: str, trigger_text: str, result_texts: List[str]) -> str:
        category, finding = row["escape_category"], row["escape_finding"]
        names, tools = list(row["escape_syscalls"]), list(row["escape_tools"])
        where = "container %s on %s (attributed by %s)" % (str(row["escape_container"])[:24], row["host"], attribution)
        if category == "escape":
            return "Escape chain %s in %s: %s, then %s." % (
                finding, where, ", ".join(names + tools) or trigger_text, "; ".join(result_texts))
        if category == "suspicious":
            return "Suspicious %s by a process in %s (%s)." % (", ".join(names), where, finding)
        return "Escape attempt in %s: %s executed with no successful escape syscall (blocked, e.g. by seccomp)." % (
            where, ", ".join(tools) or ", ".join(names))

    def messages(self) -> List[Tuple[str, str]]:
        """(level, text) for the search inspector after finish: the counts, then one warning per kind of problem."""
        counts = self.summary
        out = [("INFO", "escapecorrelate: " + ", ".join("%s=%d" % pair for pair in sorted(counts.items())))]
        if counts["state_dropped"]:
            out.append(("WARN", "escapecorrelate: %d unusable entries of the persisted lineage were skipped"
                        % counts["state_dropped"]))
        if counts["out_of_order"] or counts["malformed"]:
            out.append(("WARN", "escapecorrelate: %d events arrived out of the tolerated order, %d records were "
                                "malformed (not an audit or Sysmon event, no time between 1970 and 2100, or a Sysmon "
                                "event without its process or file)" % (counts["out_of_order"], counts["malformed"])))
        return out

    def state(self) -> Dict[str, Dict[str, Any]]:
        """The per-host lineage to persist for the next search (after finish)."""
        return {host: table.to_json(self.ttl) for host, table in self.hosts.items()}


def run(records: Iterable[Record], *, window: float = 300.0, skew: float = 2.0, allowlist: str = "",
        runtime: str = "", report: str = "escapes", ttl: float = 7 * 86400.0,
        state: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Iterator[Dict[str, Value]]:
    """One-shot entry point over all records (tests, replay): feed everything, then emit the alert rows."""
    correlator = Correlator(window=window, skew=skew, allowlist=parse_list(allowlist),
                            runtime=parse_list(runtime), ttl=ttl, report=report, state=state)
    correlator.feed(records)
    yield from correlator.finish()
