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
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from escape_engine import winpath
from escape_engine.evidence import reference, row_fields
from escape_engine.ground import Record, Value
from escape_engine.runstats import Stats, choose_findings
from escape_engine.scalars import first_text
from escape_engine.wincontext import Lineage, context_with_lineage
from escape_engine.winevent import WinEvent, parse
from escape_engine.winsymlink import symlink_tooling

FINDINGS = ("restricted_dir_write", "restricted_dir_exec", "symlink_abuse")
FINDING_ALIASES: Dict[str, Tuple[str, ...]] = {
    "all": FINDINGS,
    "file_write": ("restricted_dir_write",),
    "process_exec": ("restricted_dir_exec",),
    "symlink": ("symlink_abuse",),
}
HOSTPROCESS_MODES = ("record", "alert")


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
        event, problem = parse(first_text(record.get("_raw")), first_text(record.get("sourcetype")))
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
            context, _reasons = context_with_lineage(event, known)
            if context and known.add(event.computer, event.process_guid, context):
                changed = True
        if not changed:
            break
    for record, event in parsed:
        context, reasons = context_with_lineage(event, known)
        if not context:
            if event.kind != "security_4688":  # 4688 carries no GUID to inherit through
                known.wait(record, event, list(_findings(event, directories, wanted)))
            continue
        for row in _findings(event, directories, wanted):
            yield _alert(record, event, context, reasons, row, hostprocess)
    for record, event, rows, context, reasons in known.resolve():  # earlier chunks' events whose ancestor came now
        for row in rows:
            yield _alert(record, event, context, reasons, row, hostprocess)


class Scanner:
    """One search's escapewindows: the options checked once (ValueError on a bad one, before any event), the Sysmon
    lineage and the counts carried from chunk to chunk. `feed` is `run` over one chunk."""

    def __init__(self, *, restricted: str, findings: str = "all", hostprocess: str = "record") -> None:
        for _ in run([], restricted=restricted, findings=findings, hostprocess=hostprocess):
            pass  # an empty run only checks the options
        self.restricted, self.findings, self.hostprocess = restricted, findings, hostprocess
        self.lineage = Lineage()
        self.stats = Stats()

    def feed(self, records: Iterable[Record]) -> Iterator[Dict[str, Value]]:
        return run(records, restricted=self.restricted, findings=self.findings, hostprocess=self.hostprocess,
                   stats=self.stats, lineage=self.lineage)

    def messages(self) -> List[str]:
        """The search's warnings: malformed events, and every event the lineage's bounds gave up."""
        said = ["escapewindows: " + m for m in self.lineage.messages()]
        if self.stats.malformed:
            said.append("escapewindows: {} malformed events skipped, e.g. {}".format(self.stats.malformed,
                                                                                   self.stats.reasons[0]))
        return said


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
    result.update(row_fields([reference(record)]))
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
