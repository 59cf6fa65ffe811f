"""What the Linux correlation reads from one audit event, and which events can ever matter to it.

`AuditFacts` is the compact form of an audit event (the records that share host, stamp and serial): the SYSCALL
record's process and call, the arguments the analytic reads, the executed argv and PROCTITLE, the working directory,
an explicit container id, every PATH item, the target of an OBJ_PID record and the signal of an ANOM_ABEND record (a
crash, which has no SYSCALL record). `facts_of` reads it from the records (escapecorrelate over raw events,
escapereduce on the search peers); `to_fields` / `from_fields` carry it as a compact row between the two commands
(escapereduce's output, escapecorrelate input=reduced). `audit_matters` / `sysmon_matters` are the one rule of which
events the correlation acts on: a successful process creation, an escape syscall, a write to a usermode-helper
trap file, a call of escape_engine.families that can mean something, a call of a kernel usermode helper, or a crash
(escape_engine.activity reads the same constants). Everything else never reaches an item or the lineage.
"""
import json
import operator
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence

from . import auditd
from .ground import ESCAPE_SYSCALLS, Value
from .lineage.helper import KTHREADD
from .scalars import first_text
from .specrules import RUNTIME_SOCKETS

# Process creation: the syscalls whose success starts a new process image in the lineage.
EXEC_SYSCALLS = frozenset(("execve", "execveat"))
# The calls of escape_engine.families' escape families: device nodes, opens (of block devices), writes into other
# processes, eBPF program loads.
DEVICE_CALLS = ("mknod", "mknodat")
OPEN_CALLS = ("open", "openat", "openat2")
INJECTION_CALLS = ("ptrace", "process_vm_writev")
KERNEL_CODE_CALLS = ("bpf",)
FAMILY_CALLS = frozenset(DEVICE_CALLS + OPEN_CALLS + INJECTION_CALLS + KERNEL_CODE_CALLS)
# Files whose write arms the kernel's usermode helper (cgroup v1 release_agent, /proc/sys/kernel/core_pattern).
AGENT_FILES = ("release_agent", "core_pattern")
# Sysmon for Linux: process create (EID 1) always feeds the lineage; file create (EID 11) only on a trap file.
SYSMON_PROCESS, SYSMON_FILE = "1", "11"
# Record types that only ever accompany a SYSCALL record: a group holding one but no SYSCALL is part of an event
# whose records arrived apart, and is handed on for the search head to join (escape_engine.spoolline.events).
COMPANION_TYPES = frozenset(("EXECVE", "PATH", "PROCTITLE", "CWD", "CONTAINER_ID", "OBJ_PID"))
BLOCK_MODE = "060"  # a PATH item's mode= of a block device (octal S_IFBLK)
# connect() to a unix socket: the kernel logs the socket file it resolved as a PATH item (mode S_IFSOCK, octal 014...;
# "socket" in the interpreted form) beside the SOCKADDR record.
CONNECT_CALL = "connect"
SOCKET_MODES = ("014", "socket")
_ESCAPE = frozenset(ESCAPE_SYSCALLS)


class PathItem(NamedTuple):
    """One PATH record: the fields the analytic reads (name decoded; the others as the kernel logs them)."""
    item: str
    name: str
    dev: str
    inode: str
    mode: str
    rdev: str
    nametype: str


class AuditFacts(NamedTuple):
    """One audit event as the correlation reads it. `syscall` is "" when the event has no SYSCALL record; a crash
    (ANOM_ABEND) then gives pid, comm, exe and `abend`, its signal."""
    syscall: str
    success: bool
    exit: str
    pid: str
    ppid: str
    uid: str
    comm: str
    exe: str
    subj: str
    a0: str
    a1: str
    a2: str
    a3: str
    argv: List[str]
    title: List[str]
    cwd: str
    contid: str
    paths: List[PathItem]
    opid: str
    ocomm: str
    abend: str

    @property
    def dev(self) -> str:
        """The executable's device: PATH item 0 of an execve."""
        return next((p.dev for p in self.paths if p.item == "0"), "")


def facts_of(records: Sequence[auditd.AuditRecord]) -> AuditFacts:
    """The facts of the records of one audit event, in any arrival order."""
    syscall = next((r for r in records if r.rtype == "SYSCALL"), None)
    abend = next((r for r in records if r.rtype == "ANOM_ABEND"), None) if syscall is None else None
    process = syscall if syscall is not None else abend
    fields: Mapping[str, str] = process.fields if process is not None else {}
    title_record = next((r for r in records if r.rtype == "PROCTITLE"), None)
    cwd_record = next((r for r in records if r.rtype == "CWD"), None)
    obj: Mapping[str, str] = next((r.fields for r in records if r.rtype == "OBJ_PID"), {})
    contid = ""
    for record in records:
        if record.rtype == "CONTAINER_ID":
            contid = record.fields.get("contid", "")
    execve = [r for r in records if r.rtype == "EXECVE"]
    paths = [PathItem(pf.get("item", ""), auditd.decode_string(pf.get("name", "")), pf.get("dev", ""),
                      pf.get("inode", ""), pf.get("mode", ""), pf.get("rdev", ""), pf.get("nametype", ""))
             for pf in (r.fields for r in records if r.rtype == "PATH")]
    return AuditFacts(
        auditd.syscall_name(syscall) if syscall is not None else "", fields.get("success", "") in ("yes", "1"),
        fields.get("exit", ""), fields.get("pid", ""), fields.get("ppid", ""), fields.get("uid", ""),
        auditd.decode_string(fields.get("comm", "")), auditd.decode_string(fields.get("exe", "")),
        fields.get("subj", ""), fields.get("a0", ""), fields.get("a1", ""), fields.get("a2", ""), fields.get("a3", ""),
        auditd.execve_argv(execve) if execve else [],  # argv split over records
        auditd.proctitle(title_record) if title_record is not None else [],
        auditd.decode_string(cwd_record.fields.get("cwd", "")) if cwd_record is not None else "", contid, paths,
        obj.get("opid", ""), auditd.decode_string(obj.get("ocomm", "")),
        (fields.get("sig", "") or "?") if abend is not None else "")


def is_helper_call(facts: AuditFacts) -> bool:
    """A successful call of a kernel usermode helper: root, its parent kthreadd (escape_engine.lineage.helper)."""
    return facts.ppid == KTHREADD and facts.uid == "0" and facts.success


def opens_block_device(facts: AuditFacts) -> bool:
    return any(p.mode.startswith(BLOCK_MODE) for p in facts.paths)


def agent_target(facts: AuditFacts) -> str:
    """The trap file a syscall's PATH items name, else ""."""
    return next((p.name for p in facts.paths if p.name.endswith(AGENT_FILES)), "")


def runtime_socket(facts: AuditFacts) -> str:
    """The runtime API socket a successful connect() reached (the kernel's PATH item: a socket file of a runtime's
    socket name, resolved against the CWD record when relative), else ""."""
    if facts.syscall != CONNECT_CALL or not facts.success:
        return ""
    for path in facts.paths:
        if path.mode.startswith(SOCKET_MODES) and path.name.rsplit("/", 1)[-1] in RUNTIME_SOCKETS:
            if path.name.startswith("/") or not facts.cwd:
                return path.name
            return facts.cwd.rstrip("/") + "/" + path.name
    return ""


def audit_matters(facts: AuditFacts) -> bool:
    """Whether the correlation can act on this event: a successful process creation, an escape syscall (failed
    ones are attempts), a write to a trap file, a family call (an open only of a block device), a usermode helper's
    call or a crash. The rule's key is not read: which rule logged a call is the rule order's choice (a CIS
    `-k mounts` rule before ours logs a container's mount under its own key)."""
    if facts.abend or is_helper_call(facts):
        return True
    if facts.syscall in EXEC_SYSCALLS:
        return facts.success
    if facts.syscall in OPEN_CALLS:
        return opens_block_device(facts) or bool(agent_target(facts))
    if facts.syscall == CONNECT_CALL:
        return bool(runtime_socket(facts))
    return facts.syscall in _ESCAPE or facts.syscall in FAMILY_CALLS or bool(agent_target(facts))


def sysmon_matters(data: Mapping[str, str]) -> bool:
    """A Sysmon for Linux event the correlation reads (see escape_engine.intake for the required fields)."""
    event_id = data.get("EventID")
    return event_id == SYSMON_PROCESS or (event_id == SYSMON_FILE and
                                          data.get("TargetFilename", "").endswith(AGENT_FILES))


# ---- the compact row: escapereduce's output fields, escapecorrelate input=reduced's input ----------------------
# Scalars are fields of their own (a user can table them); lists are JSON arrays (an argument may hold any text).
SCALAR_FIELDS = (("syscall", "escape_syscall"), ("exit", "escape_exit"), ("pid", "escape_pid"),
                 ("ppid", "escape_ppid"), ("uid", "escape_uid"), ("comm", "escape_comm"), ("exe", "escape_exe"),
                 ("subj", "escape_subj"), ("a0", "escape_a0"), ("a1", "escape_a1"), ("a2", "escape_a2"),
                 ("a3", "escape_a3"), ("cwd", "escape_cwd"), ("contid", "escape_contid"), ("opid", "escape_opid"),
                 ("ocomm", "escape_ocomm"), ("abend", "escape_abend"))
SUCCESS_FIELD, ARGV_FIELD, TITLE_FIELD, PATHS_FIELD = "escape_success", "escape_argv", "escape_title", "escape_paths"
# The event's join key and kind: its host (node= or the Splunk host; Sysmon's Computer), audit stamp and serial.
HOST_FIELD, STAMP_FIELD, SERIAL_FIELD, KIND_FIELD = "escape_host", "escape_stamp", "escape_serial", "escape_kind"
SYSMON_FIELD = "escape_sysmon"          # a Sysmon event's kept fields, JSON
EVIDENCE_FIELD = "escape_evidence_cd"   # the _cd of every record of the event (evidence names every one)
KIND_AUDIT, KIND_SYSMON = "audit", "sysmon"
# The fields that hold the facts.
FACT_FIELDS = tuple(name for _, name in SCALAR_FIELDS) + (SUCCESS_FIELD, ARGV_FIELD, TITLE_FIELD, PATHS_FIELD)
# Every field a compact row may carry besides Splunk's own (_time, host, source, sourcetype, index, splunk_server).
ROW_FIELDS = FACT_FIELDS + (HOST_FIELD, STAMP_FIELD, SERIAL_FIELD, KIND_FIELD,
    SYSMON_FIELD, EVIDENCE_FIELD)


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def to_fields(facts: AuditFacts) -> Dict[str, Value]:
    """The compact row fields of an audit event's facts (empty ones left out)."""
    row: Dict[str, Value] = {name: getattr(facts, attr) for attr, name in SCALAR_FIELDS if getattr(facts, attr)}
    row[SUCCESS_FIELD] = "yes" if facts.success else "no"
    if facts.argv:
        row[ARGV_FIELD] = _dumps(facts.argv)
    if facts.title:
        row[TITLE_FIELD] = _dumps(facts.title)
    if facts.paths:
        row[PATHS_FIELD] = _dumps([list(p) for p in facts.paths])
    return row


def _json_list(text: str) -> List[Any]:
    """A JSON array, else [] (a row not written by escapereduce)."""
    if not text:
        return []
    try:  # escapereduce's own text: the decoder's C scanner without json.loads' wrapping
        value, end = _RAW_DECODE(text)
    except (ValueError, RecursionError):
        end = -1
    if end != len(text):  # whitespace around it, or no JSON: json.loads decides, as before
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            return []
    return value if isinstance(value, list) else []


_RAW_DECODE = json.JSONDecoder().raw_decode


def _text_list(text: str) -> List[str]:
    """A JSON array of strings, else [] (a row not written by escapereduce)."""
    return [v for v in _json_list(text) if isinstance(v, str)]


_PATH_WIDTH = len(PathItem._fields)
_STR = {str}


def _paths(text: str) -> List[PathItem]:
    return [PathItem(*item) for item in _json_list(text)
            if isinstance(item, list) and len(item) == _PATH_WIDTH and set(map(type, item)) == _STR]


_FACT_TEXTS = operator.itemgetter(*FACT_FIELDS)
# Where from_texts finds each AuditFacts field among the texts of FACT_FIELDS (-1: a list or flag, read below), and
# where the list and flag fields are, in the texts and in the tuple: it builds the tuple positionally (one compact row
# per kept event reaches the search head; keyword construction would cost more than the rest).
_SCALAR_AT = {attr: FACT_FIELDS.index(name) for attr, name in SCALAR_FIELDS}
_AT = tuple(_SCALAR_AT.get(attr, -1) for attr in AuditFacts._fields)
_SUCCESS_AT, _ARGV_AT, _TITLE_AT, _PATHS_AT = (FACT_FIELDS.index(name)
                                              for name in (SUCCESS_FIELD, ARGV_FIELD, TITLE_FIELD, PATHS_FIELD))
_FACT_SUCCESS, _FACT_ARGV, _FACT_TITLE, _FACT_PATHS = (AuditFacts._fields.index(name)
                                                       for name in ("success", "argv", "title", "paths"))


def fact_texts(row: Mapping[str, Value]) -> List[str]:
    """The texts of a compact row's FACT_FIELDS, in that order (missing ones empty, a multivalue's first value)."""
    try:
        values = _FACT_TEXTS(row)  # splunklib hands every column of the chunk: one C call for the common case
    except KeyError:
        values = tuple(row.get(name, "") for name in FACT_FIELDS)
    if set(map(type, values)) == _STR:
        return list(values)
    return [first_text(value) for value in values]


def from_texts(texts: Sequence[str]) -> AuditFacts:
    """The facts of the texts of FACT_FIELDS (fact_texts): the lists read from their JSON, unusable ones empty."""
    values: List[Any] = [texts[at] if at >= 0 else None for at in _AT]
    values[_FACT_SUCCESS] = texts[_SUCCESS_AT] == "yes"
    values[_FACT_ARGV] = _text_list(texts[_ARGV_AT])
    values[_FACT_TITLE] = _text_list(texts[_TITLE_AT])
    values[_FACT_PATHS] = _paths(texts[_PATHS_AT])
    return AuditFacts._make(values)


def from_fields(row: Mapping[str, Value]) -> AuditFacts:
    """The facts a compact row carries (fields missing or unusable read as empty)."""
    return from_texts(fact_texts(row))


def merge(first: AuditFacts, second: AuditFacts) -> AuditFacts:
    """The facts of one event handed on in two parts (its records arrived apart): each field from the part that
    has it (the SYSCALL record's part for the call), the PATH items of both."""
    base, other = (first, second) if first.syscall or not second.syscall else (second, first)
    joined: Dict[str, Any] = {name: getattr(base, name) or getattr(other, name) for name in AuditFacts._fields}
    joined["success"] = base.success if base.syscall else other.success
    joined["paths"] = base.paths + [p for p in other.paths if p not in base.paths]
    return AuditFacts(**joined)


def sysmon_fields(data: Mapping[str, str]) -> Dict[str, Value]:
    return {KIND_FIELD: KIND_SYSMON, SYSMON_FIELD: _dumps(dict(data))}


def sysmon_data(row: Mapping[str, Value]) -> Optional[Dict[str, str]]:
    """A compact row's Sysmon fields, else None."""
    try:
        value = json.loads(first_text(row.get(SYSMON_FIELD)) or "null")
    except (ValueError, RecursionError):
        return None
    return {str(k): v for k, v in value.items() if isinstance(v, str)} if isinstance(value, dict) else None
