"""ESXi hypervisor escapes and tampering (AN0615): escapeesxi's engine.

Reads ESXi syslog lines (vmkernel, vmkwarning, shell, hostd, esxupdate, vmx) from `_raw` and reports:
- ``module_load``: a vmkernel module load ("Loading module <name>", "Initialization of <name> succeeded", in the
  ESXi 6.7 and 7/8 formats) or a shell load command (vmkload_mod, esxcfg-module, esxcli system module load) for a
  module that is neither stock, nor in the user's allowed list, nor in the first-seen baseline;
- ``forced_vib_install``: a VIB / image-profile install that forces or skips signature and acceptance checks;
- ``acceptance_level_change``: `esxcli software acceptance set` (lower trust = higher severity);
- ``bulk_vm_kill``: at least `threshold` VM kills / power-offs on one host within `window` seconds;
- ``vmx_crash``: a VMX panic or unrecoverable error, or at least `threshold` vmkwarning lines on one host within
  `window` seconds.

The first-seen baseline is per host: a (host, module) pair. In `baseline` mode (the one-off seed) the engine learns
every vmkernel load it reads; in `detect` mode it learns every module load it has judged, so that the next run, whose
window overlaps this one, does not judge it again, and nothing is learnt that was not judged (docs/detections.md,
esxi_unexpected_module_load). The engine is pure: the wrapper hands it the stock list and the baseline, and persists
`learned`.
Events arrive in any order (Splunk hands search-head commands newest first); windows use absolute time distance.
"""
import calendar
import re
import time
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Set, Tuple

from escape_engine.evidence import reference, row_fields
from escape_engine.ground import Record, Value
from escape_engine.runstats import Stats, choose_findings
from escape_engine.scalars import finite_float, first_text

FINDINGS = ("module_load", "forced_vib_install", "acceptance_level_change", "bulk_vm_kill", "vmx_crash")
FINDING_ALIASES: Dict[str, Tuple[str, ...]] = {
    "all": FINDINGS, "vib": ("forced_vib_install", "acceptance_level_change")}
MODES = ("detect", "baseline")
_MODULE_NAME = re.compile(r"[A-Za-z0-9_.-]+")

# Module-load lines (vmkernel). 6.7: "Mod: LoadDone:4962: Initialization of X succeeded", 7.0/8.0: "Mod: 4789: ...".
_LOADING = re.compile(r"\)\s*Loading module ([A-Za-z0-9_.-]+)(?:\s|\.\.\.|$)")
_INITIALISED = re.compile(r"Mod:\s*(?:[A-Za-z_]+:)?\d+:\s*Initialization of ([A-Za-z0-9_.-]+) succeeded")
# Shell history: "<time> shell[<pid>]: [<user>]: <command>" (ESXi 8 adds "In(14)" before "shell").
# Every pattern here reads text an attacker writes, so each runs in time linear in its input: no two unbounded
# quantifiers that can take the same characters. "a ... b ... c" is matched as steps (`_in_order`): each step searches
# from where the previous one ended, instead of one pattern with ".*" between the parts (cubic on "a b a b ...").
_SHELL = re.compile(r"\bshell\[\d+\]:[ \t]*(?:\[([^\]\n]*)\]:[ \t]*)?([^\n]*)")
_ESXCLI = re.compile(r"\besxcli\b")
_SYSTEM_MODULE_LOAD = re.compile(r"\bsystem\s+module\s+load\b")
_MODULE_OPTION = re.compile(r"(?:-m|--module)[=\s]+([A-Za-z0-9_.-]+)")
_SHELL_MODULE_LOAD = (
    re.compile(r"\bvmkload_mod\s+(?:-[a-zA-Z]\s+)*(?:\S*/)?([A-Za-z0-9_.-]+?)(?:\.o)?(?:\s|$)"),
    re.compile(r"\besxcfg-module\s+(?:-[a-zA-Z]\s+)*([A-Za-z0-9_.-]+)\s*$"),
)
_SOFTWARE_INSTALL = re.compile(r"\bsoftware\s+(?:vib|profile|component)\s+(?:install|update|apply)\b")
_VIB_FORCE = re.compile(r"(?:^|\s)(?:-f|--force|--no-sig-check|--nosigcheck)(?:\s|=|$)")
_SOFTWARE_ACCEPTANCE = re.compile(r"\bsoftware\s+acceptance\s+set\b")
_LEVEL_OPTION = re.compile(r"(?:--level|-l)[=\s]+([A-Za-z]+)")
_LOG_UNSIGNED = re.compile(
    r"image profile with validation disabled|bypassing signing and acceptance level verification|"
    r"vib without (?:a )?valid signature|signature verification (?:is )?(?:disabled|skipped)", re.IGNORECASE)
_VM_PROCESS_KILL = re.compile(r"\bvm\s+process\s+kill\b")
_WORLD_OPTION = re.compile(r"(?:--world-id|-w)[=\s]+(\d+)")
_VIM_POWER_OFF = re.compile(r"\bvim-cmd\s+vmsvc/power\.(?:off|shutdown|suspend)\s+(\d+)")
_KILL_PID = re.compile(r"\bkill\s+(?:-9\s+|-KILL\s+|-s\s+\w+\s+)?(\d+)\b")
_PKILL = re.compile(r"\bpkill\b")
_VMX_WORD = re.compile(r"\bvmx\b")
_HOSTD_VM = re.compile(r"sub=Vmsvc\.vm:([^\]\s]+)")
_HOSTD_POWERING_OFF = re.compile(r"State Transition \(VM_STATE_ON -> VM_STATE_(?:POWERING_OFF|OFF)\)")
_UNRECOVERABLE = re.compile(r"unrecoverable error:\s*\((?:vmx|vcpu-\d+)\)", re.IGNORECASE)
_VMX_CRASH_STEPS = tuple(tuple(re.compile(p, re.IGNORECASE) for p in steps) for steps in (
    (r"\bvmx(?:\[\d+\])?:", r"\bPANIC\b"),
    (r"\bvcpu-\d+\|", r"\bPANIC:"),
    (r"UserDump:", r"\bvmx\b", r"\bDumping cartel\b"),
    (r"\bvmx\b", r"\b(?:core dumped|crashed)\b"),
))
_VMKWARNING = re.compile(r"\bvmkwarning(?:\[\d+\])?:")
_VMKWARNING_STEPS = (re.compile(r"\bvmkwarning\b"), re.compile(r"\bWARNING:"))
_TIME_ISO = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?Z")
_ACCEPTANCE_SEVERITY = {"communitysupported": "high", "partnersupported": "medium", "vmwareaccepted": "low",
                        "vmwarecertified": "low"}


class EsxiEvent(NamedTuple):
    finding: str
    subject: str  # module name, VIB command, acceptance level, VM id, crash text
    detail: str
    user: str


def _in_order(text: str, steps: "Tuple[re.Pattern[str], ...]") -> "Optional[re.Match[str]]":
    """The last step's match when the steps' patterns match one after another in `text` (each searched from the end
    of the previous match: the earliest match of a step leaves the most room for the next), else None."""
    match: Optional[re.Match[str]] = None
    for pattern in steps:
        match = pattern.search(text, match.end() if match else 0)
        if match is None:
            return None
    return match


def _shell_event(user: str, command: str) -> Optional[EsxiEvent]:
    module = _in_order(command, (_ESXCLI, _SYSTEM_MODULE_LOAD, _MODULE_OPTION))
    if module:
        return EsxiEvent("module_load", module.group(1), command, user)
    for pattern in _SHELL_MODULE_LOAD:
        match = pattern.search(command)
        if match:
            return EsxiEvent("module_load", match.group(1), command, user)
    vib = _in_order(command, (_ESXCLI, _SOFTWARE_INSTALL))
    if vib and _VIB_FORCE.search(command, vib.end()):
        return EsxiEvent("forced_vib_install", command, command, user)
    acceptance = _in_order(command, (_ESXCLI, _SOFTWARE_ACCEPTANCE, _LEVEL_OPTION))
    if acceptance:
        return EsxiEvent("acceptance_level_change", acceptance.group(1), command, user)
    for steps in ((_ESXCLI, _VM_PROCESS_KILL, _WORLD_OPTION), (_VIM_POWER_OFF,)):
        kill = _in_order(command, steps)
        if kill:
            return EsxiEvent("bulk_vm_kill", kill.group(1), command, user)
    pid = _KILL_PID.search(command)
    if pid and _VMX_WORD.search(command, pid.end()):
        return EsxiEvent("bulk_vm_kill", pid.group(1), command, user)
    if _in_order(command, (_PKILL, _VMX_WORD)):
        return EsxiEvent("bulk_vm_kill", "vmx", command, user)
    return None


def _hostd_power_off(text: str) -> str:
    """The .vmx path of a hostd "State Transition (VM_STATE_ON -> ...OFF)" line, else ""."""
    for match in _HOSTD_VM.finditer(text):  # the first Vmsvc.vm token naming a .vmx, then "]", then the transition
        token = match.group(1)
        end = token.rfind(".vmx")
        if end <= 0:
            continue
        bracket = text.find("]", match.start(1) + end + 4)
        if bracket >= 0 and _HOSTD_POWERING_OFF.search(text, bracket):
            return token[:end + 4]
        return ""
    return ""


def parse(raw: str) -> Optional[EsxiEvent]:
    """The one behaviour a line shows, or None."""
    text = raw.strip()
    for pattern in (_LOADING, _INITIALISED):
        match = pattern.search(text)
        if match:
            return EsxiEvent("module_load", match.group(1), "vmkernel", "")
    shell = _SHELL.search(text)
    if shell:
        return _shell_event(shell.group(1) or "", shell.group(2).strip())
    unsigned = _LOG_UNSIGNED.search(text)
    if unsigned:
        return EsxiEvent("forced_vib_install", unsigned.group(0), text, "")
    vmx = _hostd_power_off(text)
    if vmx:
        return EsxiEvent("bulk_vm_kill", vmx, text, "")
    if _UNRECOVERABLE.search(text) or any(_in_order(text, steps) for steps in _VMX_CRASH_STEPS):
        return EsxiEvent("vmx_crash", "vmx", text, "")
    if _VMKWARNING.search(text) or _in_order(text, _VMKWARNING_STEPS):
        return EsxiEvent("vmx_crash", "vmkwarning", text, "")
    return None


def epoch(record: Record) -> Optional[float]:
    """The event time: Splunk's _time (finite epoch seconds), else the first ISO 8601 UTC stamp in the line, else None
    ("nan", "inf" and a stamp that is no real date, such as month 13, are no time)."""
    when = finite_float(first_text(record.get("_time")))
    if when is not None:
        return when
    match = _TIME_ISO.search(first_text(record.get("_raw")))
    if not match:
        return None
    try:
        stamp = time.strptime("{} {}:{}:{}".format(*match.groups()), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return float(calendar.timegm(stamp))


def parse_modules(value: str) -> Set[str]:
    names: Set[str] = set()
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        if not _MODULE_NAME.fullmatch(item):
            raise ValueError("allowed: {!r} is not a module name of [A-Za-z0-9_.-]".format(item))
        names.add(item.lower())
    return names


def parse_findings(value: str) -> Tuple[str, ...]:
    return choose_findings(value, FINDINGS, FINDING_ALIASES)


class Detector:
    """Keeps what one search has seen across chunks: reported modules and the per-host burst windows."""

    def __init__(self, *, allowed: str = "", stock: Iterable[str] = (), baseline: Iterable[Tuple[str, str]] = (),
                 findings: str = "all", threshold: int = 5, window: int = 600, mode: str = "detect") -> None:
        if mode not in MODES:
            raise ValueError("mode: use detect (alerts) or baseline (learns module names)")
        if threshold < 1:
            raise ValueError("threshold: use a whole number of 1 or more")
        if window < 1:
            raise ValueError("window: use a number of seconds of 1 or more")
        self.allowed = parse_modules(allowed)
        self.stock = {s.strip().lower() for s in stock if s.strip()}
        self.baseline = {(host, module.strip().lower()) for host, module in baseline if module.strip()}
        self.findings = parse_findings(findings)
        self.threshold = threshold
        self.window = window
        self.mode = mode
        self.stats = Stats()
        self.learned: Dict[Tuple[str, str], float] = {}  # (host, module) -> earliest time seen or judged
        self._reported: Set[Tuple[str, str]] = set()
        self._bursts: Dict[Tuple[str, str], List[Tuple[float, str, str]]] = {}
        self._burst_alerted: Dict[Tuple[str, str], List[Tuple[float, float]]] = {}

    def known(self, host: str, module: str) -> str:
        """Why a module is expected on `host` ('stock', 'allowed', 'baseline') or '' when it is not."""
        name = module.lower()
        if name in self.stock:
            return "stock"
        if name in self.allowed:
            return "allowed"
        if (host, name) in self.baseline:
            return "baseline"
        return ""

    def _learn(self, record: Record, host: str, module: str) -> None:
        seen = epoch(record)
        stamp = seen if seen is not None else 0.0
        key = (host, module.lower())
        if key not in self.learned or stamp < self.learned[key]:
            self.learned[key] = stamp

    def process(self, records: Iterable[Record]) -> Iterator[Dict[str, Value]]:
        for record in records:
            self.stats.read += 1
            raw = first_text(record.get("_raw"))
            if not raw.strip():
                self.stats.bad("event without _raw")
                continue
            event = parse(raw)
            if event is None:
                self.stats.skipped += 1
                continue
            if self.mode == "baseline":
                if event.finding == "module_load" and event.detail == "vmkernel":
                    self._learn(record, first_text(record.get("host")), event.subject)
                continue
            if event.finding not in self.findings:
                continue
            row = self._decide(record, event)
            if row is not None:
                yield row

    def _decide(self, record: Record, event: EsxiEvent) -> Optional[Dict[str, Value]]:
        host = first_text(record.get("host"))
        if event.finding == "module_load":
            if self.known(host, event.subject):
                return None
            self._learn(record, host, event.subject)  # judged: the next, overlapping run knows it
            key = (host, event.subject.lower())
            if key in self._reported:
                return None
            self._reported.add(key)
            severity = "high" if event.detail == "vmkernel" else "medium"
            how = "vmkernel loaded module {}".format(event.subject) if event.detail == "vmkernel" else (
                "{} ran '{}' to load module {}".format(event.user or "a shell user", event.detail, event.subject))
            return _alert(record, event, severity, [reference(record)],
                          "On {}, {}, which is not stock, not in escape_allowed_kernel_modules and not in "
                          "this host's first-seen baseline.".format(host or "an ESXi host", how),
                          escape_module=event.subject)
        if event.finding == "forced_vib_install":
            return _alert(record, event, "high", [reference(record)],
                          "On {}, {} installed software skipping signature or acceptance checks: {}.".format(
                              host or "an ESXi host", event.user or "ESXi", event.subject))
        if event.finding == "acceptance_level_change":
            severity = _ACCEPTANCE_SEVERITY.get(event.subject.lower(), "medium")
            return _alert(record, event, severity, [reference(record)],
                          "On {}, {} set the host's VIB acceptance level to {}.".format(
                              host or "an ESXi host", event.user or "a shell user", event.subject),
                          escape_acceptance_level=event.subject)
        if event.finding == "vmx_crash" and event.subject == "vmx":
            when = epoch(record)
            crashes = self._burst_alerted.setdefault((host, "vmx"), [])
            if when is not None and any(abs(when - t) <= self.window for t, _ in crashes):
                return None  # the same crash logged by vmkernel and by the VMX itself
            if when is not None:
                crashes.append((when, when))
            return _alert(record, event, "high", [reference(record)],
                          "On {}, a VM's VMX process crashed or panicked, which a VM-to-hypervisor escape attempt "
                          "can cause.".format(host or "an ESXi host"))
        kind = "vmkwarning" if event.finding == "vmx_crash" else "vm_kill"
        return self._burst(record, event, host, kind)

    def _burst(self, record: Record, event: EsxiEvent, host: str, kind: str) -> Optional[Dict[str, Value]]:
        when = epoch(record)
        if when is None:
            self.stats.bad("{} event without a time".format(kind))
            return None
        key = (host, kind)
        for start, end in self._burst_alerted.get(key, []):
            if start - self.window <= when <= end + self.window:
                return None  # part of a burst already reported
        events = [e for e in self._bursts.get(key, []) if abs(e[0] - when) <= self.window]
        events.append((when, reference(record), event.subject))
        self._bursts[key] = events
        targets = {e[2] for e in events}
        if (len(targets) if kind == "vm_kill" else len(events)) < self.threshold:
            return None
        times = [e[0] for e in events]
        if max(times) - min(times) > self.window:
            return None
        self._burst_alerted.setdefault(key, []).append((min(times), max(times)))
        self._bursts[key] = []
        cds = [e[1] for e in sorted(events) if e[1]]
        if kind == "vm_kill":
            return _alert(record, event, "high", cds,
                          "On {}, {} VMs were killed or powered off within {} seconds ({}).".format(
                              host or "an ESXi host", len(targets), self.window, ", ".join(sorted(targets))),
                          finding="bulk_vm_kill", escape_vm_count=str(len(targets)))
        return _alert(record, event, "medium", cds,
                      "On {}, {} vmkwarning messages within {} seconds: the hypervisor warned repeatedly, which can "
                      "follow a VM-to-hypervisor escape attempt.".format(host or "an ESXi host", len(events),
                                                                         self.window),
                      finding="vmx_crash", escape_warning_count=str(len(events)))


def _alert(record: Record, event: EsxiEvent, severity: str, cds: List[str], summary: str,
           finding: str = "", **extra: str) -> Dict[str, Value]:
    result: Dict[str, Value] = dict(record)
    result["escape_analytic"] = "esxi"
    result["escape_finding"] = finding or event.finding
    result["escape_severity"] = severity
    result["escape_summary"] = summary
    result.update(row_fields(cds))
    result["escape_host"] = first_text(record.get("host"))
    if event.user:
        result["escape_user"] = event.user
    result.update(extra)
    return result
