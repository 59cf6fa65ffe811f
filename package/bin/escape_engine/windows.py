"""Windows container escapes (AN0614): escapewindows' engine.

Reads Security 4688 (classic text and XML) and Sysmon EID 1 / 11 (XML) from `_raw`, decides whether the process is
in a container's context and reports three findings:
- ``restricted_dir_write``: a container process created a file under a restricted host directory (Sysmon 11);
- ``restricted_dir_exec``: a container-context process was started from a restricted host directory (4688, Sysmon 1);
- ``symlink_abuse``: symbolic-link or junction tooling run from a container (mklink, fsutil behavior set
  SymlinkEvaluation, PowerShell New-Item -ItemType SymbolicLink / Junction / HardLink, including -EncodedCommand).

Container context (no Windows event carries a container id): the process or its parent is CExecSvc.exe (the
container execution service that starts entrypoints and `docker exec`), the account is User Manager\\
ContainerAdministrator or ContainerUser, an image lies on a container volume, or (Sysmon) the process descends from
such a process through ProcessGuid / ParentProcessGuid among the events of the same search. Kubernetes
HostProcess containers (parent containerd-shim-runhcs-v1.exe, image under C:\\hpc\\ or
%CONTAINER_SANDBOX_MOUNT_POINT%) run as host processes on purpose: with ``hostprocess=record`` (default) their
hits stay as low-severity records with ``escape_exception=hostprocess``; with ``hostprocess=alert`` they alert like
any container.
"""
import base64
import binascii
import functools
import re
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from escape_engine import winpath
from escape_engine.ground import Record, Value
from escape_engine.runstats import Stats, choose_findings
from escape_engine.scalars import first_text

FINDINGS = ("restricted_dir_write", "restricted_dir_exec", "symlink_abuse")
FINDING_ALIASES: Dict[str, Tuple[str, ...]] = {
    "all": FINDINGS,
    "file_write": ("restricted_dir_write",),
    "process_exec": ("restricted_dir_exec",),
    "symlink": ("symlink_abuse",),
}
HOSTPROCESS_MODES = ("record", "alert")
CONTAINER_ACCOUNTS = ("containeradministrator", "containeruser")
_HOSTPROCESS_PARENTS = ("containerd-shim-runhcs-v1.exe",)

_DATA = re.compile(r"<Data Name=(['\"])([^'\"]+)\1\s*(?:/>|>(.*?)</Data>)", re.DOTALL)
_EVENT_ID = re.compile(r"<EventID(?:\s[^>]*)?>([0-9]+)</EventID>")  # ASCII: "٤٦٨٨" is no event id
_COMPUTER = re.compile(r"<Computer>([^<]*)</Computer>")
_PROVIDER = re.compile(r"<Provider Name=(['\"])([^'\"]+)\1")
_CLASSIC_KV = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?):[ \t]*(.*?)\s*$")
_CLASSIC_EVENTCODE = re.compile(r"^EventCode=([0-9]+)\s*$", re.MULTILINE)
_CLASSIC_COMPUTER = re.compile(r"^ComputerName=(.*?)\s*$", re.MULTILINE)
_XML_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&#39;", "'"), ("&amp;", "&"))

_MKLINK = re.compile(r"(?:^|[\s\"'&|;(])mklink(?:\.exe)?\s+(?:/[dhj]\s+)*(\"[^\"]+\"|\S+)\s+(\"[^\"]+\"|\S+)",
                     re.IGNORECASE)
_FSUTIL_SYMLINK = re.compile(r"\bfsutil(?:\.exe)?\s+behavior\s+set\s+symlinkevaluation\b(.*)", re.IGNORECASE)
_NEW_ITEM = re.compile(r"\b(?:new-item|ni)\b[^|;]*?-(?:itemtype|type|it|i)\s*:?\s*[\"']?"
                       r"(symboliclink|junction|hardlink)\b", re.IGNORECASE)
_NEW_ITEM_VALUE = re.compile(r"-(?:value|target)\s+(\"[^\"]+\"|'[^']+'|\S+)", re.IGNORECASE)
_DOTNET_LINK = re.compile(r"\b(?:createsymboliclink|createjunction|createhardlink)\b", re.IGNORECASE)
_ENCODED = re.compile(r"(?:^|\s)[-/](e[a-z]*)\s+[\"']?([A-Za-z0-9+/=]{8,})", re.IGNORECASE)
_POWERSHELL = re.compile(r"\b(?:powershell|pwsh)(?:\.exe)?\b", re.IGNORECASE)
_PATH_SEPARATOR = re.compile(r"[\\/]")
_SANDBOX_MOUNT = re.compile(r"container_sandbox_mount_point", re.IGNORECASE)


class WinEvent(NamedTuple):
    """The fields of one process-creation or file-creation event that the analytic decides on."""

    kind: str  # security_4688 | sysmon_1 | sysmon_11
    computer: str
    image: str
    parent_image: str
    command_line: str
    parent_command_line: str
    user: str  # DOMAIN\name of the account the process runs as
    parent_user: str
    target_filename: str
    process_guid: str = ""
    parent_process_guid: str = ""


def _unescape(text: str) -> str:
    if "&" not in text:  # every entity starts with "&": most values have none
        return text
    for entity, char in _XML_ENTITIES:
        text = text.replace(entity, char)
    return text


def _xml_data(raw: str) -> Dict[str, str]:
    # findall gives "" for a self-closing <Data Name='X'/> (its value group does not take part)
    return {name: _unescape(value).strip() for _quote, name, value in _DATA.findall(raw)}


def _account(domain: str, name: str) -> str:
    domain, name = domain.strip(), name.strip()
    if not name or name == "-":
        return ""
    return domain + "\\" + name if domain and domain != "-" else name


def _classic_sections(raw: str) -> Dict[str, Dict[str, str]]:
    """Classic WinEventLog text: 'Section:' lines followed by tab-indented 'Key:<tabs>Value' lines."""
    sections: Dict[str, Dict[str, str]] = {}
    current = ""
    for line in raw.split("\n"):
        if ":" not in line:  # neither a section nor a key line (and blank lines have none either)
            continue
        match = _CLASSIC_KV.match(line)
        if not match:
            continue
        key, value = match.group(1).strip(), match.group(2)
        if not line[:1].isspace() and value == "":
            current = key
            continue
        sections.setdefault(current, {}).setdefault(key, value)
    return sections


def parse(raw: str) -> Tuple[Optional[WinEvent], str]:
    """Parse one event. Returns (event, "") for the kinds we read, (None, "") for other events and
    (None, reason) for a malformed event of a kind we read."""
    if "<Event" in raw and "<EventID" in raw:
        return _parse_xml(raw)
    code = _CLASSIC_EVENTCODE.search(raw)
    if code:
        if code.group(1) != "4688":
            return None, ""
        return _parse_classic_4688(raw)
    return None, ""


def _parse_xml(raw: str) -> Tuple[Optional[WinEvent], str]:
    event_id = _EVENT_ID.search(raw)
    provider = _PROVIDER.search(raw)
    computer_match = _COMPUTER.search(raw)
    computer = computer_match.group(1).strip() if computer_match else ""
    if not event_id:
        return None, "XML event without an EventID"
    eid = event_id.group(1)
    provider_name = provider.group(2).lower() if provider else ""
    data = _xml_data(raw)
    if "sysmon" in provider_name:
        if eid not in ("1", "11"):
            return None, ""
        if "Image" not in data:
            return None, "Sysmon {} event without an Image field".format(eid)
        if eid == "11" and "TargetFilename" not in data:
            return None, "Sysmon 11 event without a TargetFilename field"
        return WinEvent("sysmon_" + eid, computer, data.get("Image", ""), data.get("ParentImage", ""),
                        data.get("CommandLine", ""), data.get("ParentCommandLine", ""), data.get("User", ""),
                        data.get("ParentUser", ""), data.get("TargetFilename", ""),
                        data.get("ProcessGuid", "").lower(), data.get("ParentProcessGuid", "").lower()), ""
    if eid == "4688" and "security-auditing" in provider_name:
        if "NewProcessName" not in data:
            return None, "4688 XML event without NewProcessName"
        user = _account(data.get("TargetDomainName", ""), data.get("TargetUserName", "")) or _account(
            data.get("SubjectDomainName", ""), data.get("SubjectUserName", ""))
        subject = _account(data.get("SubjectDomainName", ""), data.get("SubjectUserName", ""))
        return WinEvent("security_4688", computer, data["NewProcessName"], data.get("ParentProcessName", ""),
                        data.get("CommandLine", ""), "", user, subject, ""), ""
    return None, ""


def _parse_classic_4688(raw: str) -> Tuple[Optional[WinEvent], str]:
    sections = _classic_sections(raw)
    process = sections.get("Process Information", {})
    if "New Process Name" not in process:
        return None, "4688 text event without 'New Process Name'"
    creator = sections.get("Creator Subject", sections.get("Subject", {}))
    target = sections.get("Target Subject", {})
    subject = _account(creator.get("Account Domain", ""), creator.get("Account Name", ""))
    user = _account(target.get("Account Domain", ""), target.get("Account Name", "")) or subject
    computer = _CLASSIC_COMPUTER.search(raw)
    return WinEvent("security_4688", computer.group(1) if computer else "", process["New Process Name"],
                    process.get("Creator Process Name", ""), process.get("Process Command Line", ""), "",
                    user, subject, ""), ""


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


class Lineage:
    """Sysmon ProcessGuids of processes known to be in a container's context, per computer, across the chunks of one
    search (bounded: the oldest entries go first). A Sysmon 1 whose ParentProcessGuid is known inherits the context,
    which carries CExecSvc.exe lineage past the first generation; a Sysmon 11 inherits it through its ProcessGuid.

    Splunk hands events newest first, so a child often comes a chunk before its container ancestor. Sysmon events
    without a context wait, keyed by the GUID they would inherit through (bounded by `wait_limit`, the oldest waiting
    first to go); when that GUID becomes known in a later chunk they are resolved and their findings emitted then."""

    def __init__(self, limit: int = 200000, wait_limit: int = 20000) -> None:
        self.limit = limit
        self.known: Dict[Tuple[str, str], str] = {}
        self.wait_limit = wait_limit
        self.waiting: Dict[Tuple[str, str], List[Tuple[Optional[Record], WinEvent, List[Dict[str, str]]]]] = {}
        self.waiting_count = 0
        self.fresh: List[Tuple[str, str]] = []  # GUIDs added since the waiting events were last looked at

    def add(self, computer: str, guid: str, context: str) -> bool:
        if not _is_guid(guid) or (computer.lower(), guid) in self.known:
            return False
        self.known[(computer.lower(), guid)] = context
        self.fresh.append((computer.lower(), guid))
        if len(self.known) > self.limit:
            del self.known[next(iter(self.known))]
        return True

    def get(self, computer: str, guid: str) -> str:
        return self.known.get((computer.lower(), guid), "") if guid else ""

    def wait(self, record: Record, event: WinEvent, rows: List[Dict[str, str]]) -> None:
        """Keep a Sysmon event that has no context yet: its findings (`rows`, with the record), or for a process start
        without findings only the event, which later generations may inherit through."""
        guid = event.parent_process_guid if event.kind == "sysmon_1" else event.process_guid
        if not _is_guid(guid) or (event.kind == "sysmon_11" and not rows):
            return
        self.waiting.setdefault((event.computer.lower(), guid), []).append((record if rows else None, event, rows))
        self.waiting_count += 1
        while self.waiting_count > self.wait_limit:
            self.waiting_count -= len(self.waiting.pop(next(iter(self.waiting))))

    def resolve(self) -> List[Tuple[Record, WinEvent, List[Dict[str, str]], str, List[str]]]:
        """The waiting events whose GUID has become known, each with its findings, context and reasons; a resolved
        process start makes its own GUID known in turn, so deeper generations follow."""
        resolved: List[Tuple[Record, WinEvent, List[Dict[str, str]], str, List[str]]] = []
        while self.fresh:
            fresh, self.fresh = self.fresh, []
            for key in fresh:
                for record, event, rows in self.waiting.pop(key, []):
                    self.waiting_count -= 1
                    context, reasons = _context_with_lineage(event, self)
                    if event.kind == "sysmon_1" and context:
                        self.add(event.computer, event.process_guid, context)
                    if record is not None and context:
                        resolved.append((record, event, rows, context, reasons))
        return resolved


def _context_with_lineage(event: WinEvent, lineage: Lineage) -> Tuple[str, List[str]]:
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


def _decode_encoded_commands(command_line: str) -> List[str]:
    decoded: List[str] = []
    for match in _ENCODED.finditer(command_line):
        parameter, blob = match.group(1).lower(), match.group(2)
        if not ("encodedcommand".startswith(parameter) or parameter == "ec"):
            continue
        try:
            text = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True).decode("utf-16-le")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if text.isprintable() or "\n" in text:
            decoded.append(text)
    return decoded


class SymlinkHit(NamedTuple):
    tool: str  # mklink | fsutil | powershell | dotnet
    detail: str
    targets: Tuple[str, ...]


def symlink_tooling(command_line: str) -> Optional[SymlinkHit]:
    """Find symbolic-link / junction tooling in a command line (and in PowerShell -EncodedCommand text)."""
    texts = [command_line]
    if _POWERSHELL.search(command_line):
        texts.extend(_decode_encoded_commands(command_line))
    for text in texts:
        mklink = _MKLINK.search(text)
        if mklink:
            return SymlinkHit("mklink", mklink.group(0).strip(), (mklink.group(2).strip("\"'"),))
        fsutil = _FSUTIL_SYMLINK.search(text)
        if fsutil:
            return SymlinkHit("fsutil", "fsutil behavior set SymlinkEvaluation" + fsutil.group(1).rstrip(), ())
        new_item = _NEW_ITEM.search(text)
        if new_item:
            value = _NEW_ITEM_VALUE.search(text)
            targets = (value.group(1).strip("\"'"),) if value else ()
            return SymlinkHit("powershell", "New-Item -ItemType " + new_item.group(1), targets)
        dotnet = _DOTNET_LINK.search(text)
        if dotnet and (text is not command_line or _POWERSHELL.search(text)):
            return SymlinkHit("dotnet", dotnet.group(0), ())
    return None


def parse_findings(value: str) -> Tuple[str, ...]:
    return choose_findings(value, FINDINGS, FINDING_ALIASES)


def run(records: Iterable[Record], *, restricted: str, findings: str = "all", hostprocess: str = "record",
        stats: Optional[Stats] = None, lineage: Optional[Lineage] = None) -> Iterator[Dict[str, Value]]:
    """Yield one alert row per finding. `restricted` is escape_restricted_host_dirs ("C:/Windows,C:/ProgramData").

    One call handles one chunk: it reads the whole chunk first, so Sysmon lineage resolves whatever the order of the
    events inside it; pass the same `lineage` to every call of one search to carry it across chunks (a Sysmon event
    whose container ancestor comes in a later chunk is then reported with that chunk)."""
    directories = winpath.parse_dir_list(restricted)
    if not directories:
        raise ValueError("restricted: name at least one directory, e.g. restricted=\"C:/Windows,C:/ProgramData\"")
    wanted = parse_findings(findings)
    if hostprocess not in HOSTPROCESS_MODES:
        raise ValueError("hostprocess: use record (HostProcess hits stay low-severity records) or alert")
    counters = stats if stats is not None else Stats()
    known = lineage if lineage is not None else Lineage()
    parsed: List[Tuple[Record, WinEvent]] = []
    for record in records:
        counters.read += 1
        event, problem = parse(first_text(record.get("_raw")))
        if event is None:
            if problem:
                counters.bad(problem)
            else:
                counters.skipped += 1
            continue
        parsed.append((record, event))
    starts = [e for _, e in parsed if e.kind == "sysmon_1" and e.process_guid]
    for _ in range(32):  # propagate down the process tree until nothing changes (depth-bounded)
        changed = False
        for event in starts:
            context, _reasons = _context_with_lineage(event, known)
            if context and known.add(event.computer, event.process_guid, context):
                changed = True
        if not changed:
            break
    for record, event in parsed:
        context, reasons = _context_with_lineage(event, known)
        if not context:
            if event.kind != "security_4688":  # 4688 carries no GUID to inherit through
                known.wait(record, event, list(_findings(event, directories, wanted)))
            continue
        for row in _findings(event, directories, wanted):
            yield _alert(record, event, context, reasons, row, hostprocess)
    for record, event, rows, context, reasons in known.resolve():  # earlier chunks' events whose ancestor came now
        for row in rows:
            yield _alert(record, event, context, reasons, row, hostprocess)


def _findings(event: WinEvent, directories: Sequence[winpath.WinPath],
              wanted: Sequence[str]) -> Iterator[Dict[str, str]]:
    if "restricted_dir_write" in wanted and event.kind == "sysmon_11":
        directory = winpath.under(winpath.normalise(event.target_filename), directories)
        if directory is not None:
            yield {"escape_finding": "restricted_dir_write", "escape_severity": "high",
                   "escape_target_path": event.target_filename, "escape_restricted_dir": directory.text()}
    if "restricted_dir_exec" in wanted and event.kind in ("security_4688", "sysmon_1"):
        directory = winpath.under(winpath.normalise(event.image), directories)
        if directory is not None:
            yield {"escape_finding": "restricted_dir_exec", "escape_severity": "high",
                   "escape_target_path": event.image, "escape_restricted_dir": directory.text()}
    if "symlink_abuse" in wanted and event.kind in ("security_4688", "sysmon_1") and event.command_line:
        hit = symlink_tooling(event.command_line)
        if hit is not None:
            severity = "medium"
            row = {"escape_finding": "symlink_abuse", "escape_symlink_tool": hit.tool,
                   "escape_symlink_command": hit.detail}
            if hit.tool == "fsutil":
                severity = "high"  # turns on remote/local link evaluation for the whole host
            for target in hit.targets:
                directory = winpath.under(winpath.normalise(target), directories)
                if directory is not None:
                    severity = "high"
                    row["escape_target_path"] = target
                    row["escape_restricted_dir"] = directory.text()
                    break
            row["escape_severity"] = severity
            yield row


_WHAT = {
    "restricted_dir_write": "created {target} under the restricted host directory {dir}",
    "restricted_dir_exec": "was started from {target}, under the restricted host directory {dir}",
    "symlink_abuse": "ran link tooling ({tool}: {detail})",
}


def _alert(record: Record, event: WinEvent, context: str, reasons: List[str], row: Dict[str, str],
           hostprocess: str) -> Dict[str, Value]:
    result: Dict[str, Value] = dict(record)
    result.update(row)
    cd = first_text(record.get("_cd"))
    result["escape_evidence_cd"] = [cd] if cd else []
    result["escape_analytic"] = "windows"
    result["escape_context"] = context
    result["escape_container_marker"] = list(reasons)
    result["escape_host"] = event.computer or first_text(record.get("host"))
    result["escape_process"] = event.image
    result["escape_parent_process"] = event.parent_image
    result["escape_user"] = event.user
    result["escape_command_line"] = event.command_line
    result["escape_event"] = event.kind
    if context == "hostprocess" and hostprocess == "record":
        result["escape_severity"] = "low"
        result["escape_exception"] = "hostprocess"
    what = _WHAT[row["escape_finding"]].format(
        target=row.get("escape_target_path", ""), dir=row.get("escape_restricted_dir", ""),
        tool=row.get("escape_symlink_tool", ""), detail=row.get("escape_symlink_command", ""))
    if row["escape_finding"] == "symlink_abuse" and "escape_restricted_dir" in row:
        what += " pointing at {} under {}".format(row["escape_target_path"], row["escape_restricted_dir"])
    where = "HostProcess container" if context == "hostprocess" else "container"
    account = "" if any(r.startswith("account ") for r in reasons) else "; account {}".format(event.user or "unknown")
    result["escape_summary"] = "On {host}, {image} ({where} context: {reasons}{account}) {what}{note}.".format(
        host=result["escape_host"] or "an unknown host", image=event.image or "a process", where=where,
        reasons=", ".join(reasons), account=account, what=what,
        note="; recorded at low severity as a HostProcess exception" if result.get("escape_exception") else "")
    return result
