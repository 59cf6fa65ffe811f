"""Offline replay of the add-on's analytics over raw log files (docs/replay.md, docs/development.md §3).

    ./build.sh replay --input SOURCETYPE[,source=S][,host=H]=PATH [--input ...] [--set MACRO=VALUE ...] [--state DIR]

1. Event breaking and timestamps: owned sourcetypes through the built app's props.conf (tools/indextime.py), the
   documented record format of the source otherwise (READERS below). Every event gets `_cd = 0:<n>`.
2. Fields for the base search: one seam, `FieldFunction` (tools/searchtime.py once it exists).
3. Per detection (content/detections/*.yml): macro expansion, the base search as a pure search-term expression
   (tools/spllint.py parses it; anything else is refused), then its `replay_pipes` commands, run from the app's bin/
   through the real splunklib dispatcher over SCP v2 (tools/scp.py), events newest first, in chunks.
4. One JSON object per alert row on stdout; diagnostics on stderr.
"""
import argparse
import gzip
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import conffile, content, indextime, spllint  # noqa: E402
from tools.scp import run_command  # noqa: E402
from escape_engine import tunables  # noqa: E402

APP_DIR = ROOT / "output" / "TA_escape_to_host"
CHUNK = 1000
from escape_engine.ground import Value  # noqa: E402
Event = Dict[str, Value]
FieldFunction = Callable[[Mapping[str, str]], Mapping[str, Value]]
OWNED = ("docker:daemon", "docker:events", "docker:inspect")
DEFAULT_HOST = "replay"


class ReplayError(Exception):
    """A problem the user must fix (bad input, unknown macro, refused search): message to stderr, exit 2."""


def warn(message: str) -> None:
    print("replay: " + message, file=sys.stderr)


# ---------------------------------------------------------------- inputs
@dataclass
class InputSpec:
    sourcetype: str
    path: Path
    source: Optional[str] = None
    host: Optional[str] = None


_INPUT = re.compile(r"(?P<st>[^,=]+)(?P<opts>(?:,(?:source|host)=[^,=]*)*)=(?P<path>.+)")


def parse_input(text: str) -> InputSpec:
    match = _INPUT.fullmatch(text)
    if not match:
        raise ReplayError("--input {!r} is not SOURCETYPE[,source=SOURCE][,host=HOST]=PATH".format(text))
    spec = InputSpec(match.group("st").strip(), Path(match.group("path")))
    for option in filter(None, match.group("opts").split(",")):
        key, value = option.split("=", 1)
        setattr(spec, key, value)
    return spec


def read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if path.suffix == ".gz" else data
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise ReplayError("cannot read {}: {}".format(path, err)) from None


def _epoch_iso(text: str) -> Optional[float]:
    """ISO 8601 with Z or an offset (no offset: UTC)."""
    match = re.match(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?", text)
    if not match:
        return None
    stamp = datetime.strptime(match.group(1) + "T" + match.group(2), "%Y-%m-%dT%H:%M:%S")
    zone = match.group(4) or "Z"
    offset = 0 if zone == "Z" else (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[-2:]) * 60)
    return stamp.replace(tzinfo=timezone.utc).timestamp() - offset + float("0" + (match.group(3) or ""))


# Each reader: bytes -> [(raw, time or None, {default fields from the record})]. Documented formats only.
Record = Tuple[str, Optional[float], Dict[str, str]]


def _lines(data: bytes) -> List[str]:
    # Audit records may hold 0x1D (ENRICHED): split on b"\n" only, never str.splitlines().
    return [line.rstrip(b"\r").decode("utf-8", errors="replace") for line in data.split(b"\n") if line.strip()]


_AUDIT_EPOCH = re.compile(r"msg=audit\((\d+(?:\.\d+)?):\d+\)")
# ausearch -i prints the date in the C locale's %x form (11/29/26); other locales give a four-digit year.
_AUDIT_LOCAL = re.compile(r"msg=audit\((\d{2})/(\d{2})/(\d{4}|\d{2}) (\d{2}:\d{2}:\d{2})(\.\d+)?:\d+\)")


def _audit_time(raw: str) -> Optional[float]:
    match = _AUDIT_EPOCH.search(raw)
    if match:
        return float(match.group(1))
    match = _AUDIT_LOCAL.search(raw)  # ausearch -i prints local time; the replay reads it as UTC
    if match:
        year = match.group(3) if len(match.group(3)) == 4 else "20" + match.group(3)
        return _epoch_iso("{}-{}-{}T{}{}".format(year, match.group(1), match.group(2), match.group(4),
                                                  match.group(5) or ""))
    return None


def read_linux_audit(data: bytes) -> List[Record]:
    return [(line, _audit_time(line), {}) for line in _lines(data)]


def read_auditd(data: bytes) -> List[Record]:
    """ausearch -i output: events separated by '----' lines; without separators, one record per line."""
    lines = [line.rstrip(b"\r") for line in data.split(b"\n")]
    if not any(line.strip() == b"----" for line in lines):
        return read_linux_audit(data)
    records: List[Record] = []
    current: List[bytes] = []
    for line in lines + [b"----"]:
        if line.strip() == b"----":
            if any(part.strip() for part in current):
                raw = b"\n".join(part for part in current if part.strip()).decode("utf-8", errors="replace")
                records.append((raw, _audit_time(raw), {}))
            current = []
        else:
            current.append(line)
    return records


_KUBE_TIME_KEYS = ("requestReceivedTimestamp", "stageTimestamp", "timestamp")


def _kube_time(event: object) -> Optional[float]:
    if isinstance(event, dict):
        for key in _KUBE_TIME_KEYS:
            if isinstance(event.get(key), str):
                return _epoch_iso(event[key])
    return None


def read_kube_audit(data: bytes) -> List[Record]:
    """One audit.k8s.io Event per line; a file holding one pretty-printed JSON object is one event."""
    text = data.decode("utf-8", errors="replace")
    lines = [line for line in text.split("\n") if line.strip()]
    try:
        parsed = [json.loads(line) for line in lines]
        return [(line.strip(), _kube_time(obj), {}) for line, obj in zip(lines, parsed)]
    except ValueError:
        pass
    try:
        whole = json.loads(text)
        if isinstance(whole, dict):
            return [(text.strip(), _kube_time(whole), {})]
    except ValueError:
        pass
    records = []
    for line in lines:  # keep every line; the malformed ones are counted by the caller (no time)
        try:
            records.append((line.strip(), _kube_time(json.loads(line)), {}))
        except ValueError:
            records.append((line.strip(), None, {}))
    return records


def _xml_fields(raw: str, prefix: str) -> Dict[str, str]:
    fields = {}
    computer = re.search(r"<Computer>([^<]+)</Computer>", raw)
    if computer:
        fields["host"] = computer.group(1)
    channel = re.search(r"<Channel>([^<]+)</Channel>", raw)
    if channel and prefix:
        fields["source"] = prefix + channel.group(1)
    return fields


def _xml_time(raw: str) -> Optional[float]:
    match = re.search(r"<TimeCreated SystemTime=['\"]([^'\"]+)['\"]", raw)
    return _epoch_iso(match.group(1)) if match else None


def read_xml_wineventlog(data: bytes) -> List[Record]:
    text = data.decode("utf-8", errors="replace")
    events = re.findall(r"<Event[\s>].*?</Event>", text, re.DOTALL)
    return [(raw, _xml_time(raw), _xml_fields(raw, "XmlWinEventLog:")) for raw in events]


_WIN_DATE = re.compile(r"(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([AP]M)$")


def read_wineventlog(data: bytes) -> List[Record]:
    """Classic multi-line WinEventLog: a new event starts at a line holding only its date (MM/DD/YYYY hh:mm:ss AM)."""
    records: List[Record] = []
    current: List[str] = []
    lines = data.decode("utf-8", errors="replace").replace("\r\n", "\n").split("\n")

    def flush() -> None:
        raw = "\n".join(current).strip()
        if raw:
            first = _WIN_DATE.match(current[0].strip())
            stamp = None
            if first:
                month, day, year, hour, minute, second, half = first.groups()
                stamp = _epoch_iso("{}-{}-{}T{:02d}:{}:{}".format(
                    year, month, day, int(hour) % 12 + (12 if half == "PM" else 0), minute, second))
            fields = {}
            computer = re.search(r"^ComputerName=(.+)$", raw, re.MULTILINE)
            if computer:
                fields["host"] = computer.group(1).strip()
            log = re.search(r"^LogName=(.+)$", raw, re.MULTILINE)
            if log:
                fields["source"] = "WinEventLog:" + log.group(1).strip()
            records.append((raw, stamp, fields))

    for line in lines:
        if _WIN_DATE.match(line.strip()) and current:
            flush()
            current = []
        current.append(line)
    flush()
    return records


def read_sysmon_linux(data: bytes) -> List[Record]:
    return [(line, _xml_time(line), _xml_fields(line, "")) for line in _lines(data)]


def read_esxi_syslog(data: bytes) -> List[Record]:
    records = []
    for line in _lines(data):
        match = re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", line[:128])
        records.append((line, _epoch_iso(line[match.start():]) if match else None, {}))
    return records


READERS: Dict[str, Callable[[bytes], List[Record]]] = {
    "linux:audit": read_linux_audit,
    "auditd": read_auditd,
    "kube:apiserver-audit": read_kube_audit,
    "XmlWinEventLog": read_xml_wineventlog,
    "WinEventLog": read_wineventlog,
    "sysmon:linux": read_sysmon_linux,
    "vmw-syslog": read_esxi_syslog,
}


def reader_for(sourcetype: str) -> Optional[Callable[[bytes], List[Record]]]:
    if sourcetype.startswith("vmware:esxlog:") and len(sourcetype) > len("vmware:esxlog:"):
        return read_esxi_syslog
    return READERS.get(sourcetype)


def known_sourcetypes() -> List[str]:
    return list(OWNED) + list(READERS) + ["vmware:esxlog:<program>"]


def load_events(specs: Sequence[InputSpec], app_dir: Path) -> List[Event]:
    """Break and timestamp every input; events keep file order and get _cd = 0:<n> across all inputs."""
    events: List[Event] = []
    props: Optional[Dict[str, Dict[str, str]]] = None
    for spec in specs:
        if spec.sourcetype not in OWNED and reader_for(spec.sourcetype) is None:
            raise ReplayError("unknown sourcetype {!r}; the replay reads {}".format(
                spec.sourcetype, ", ".join(known_sourcetypes())))
        data = read_bytes(spec.path)
        untimed = 0
        if spec.sourcetype in OWNED:
            if props is None:
                path = app_dir / "default" / "props.conf"
                props = conffile.parse(path) if path.is_file() else {}
            if spec.sourcetype not in props:
                raise ReplayError("{} is an owned sourcetype but {} has no [{}] stanza".format(
                    spec.sourcetype, app_dir / "default" / "props.conf", spec.sourcetype))
            try:
                settings = indextime.index_time_settings(props[spec.sourcetype], spec.sourcetype)
                broken = indextime.break_events(data, settings, str(spec.path))
            except indextime.IndexTimeError as err:
                raise ReplayError(str(err)) from None
            records: List[Record] = [(raw, stamp, {}) for raw, stamp in broken.events]
            untimed = broken.untimed
            if broken.truncated:
                warn("{}: {} event(s) cut at TRUNCATE".format(spec.path, broken.truncated))
        else:
            reader = reader_for(spec.sourcetype)
            assert reader is not None
            records = reader(data)
        previous = 0.0
        for raw, stamp, defaults in records:
            if stamp is None:
                untimed += spec.sourcetype not in OWNED
                stamp = previous
            previous = stamp
            events.append({
                "_raw": raw, "_time": repr(stamp), "_cd": "0:{}".format(len(events)), "index": "main",
                "sourcetype": spec.sourcetype, "source": spec.source or defaults.get("source") or str(spec.path),
                "host": spec.host or defaults.get("host") or DEFAULT_HOST,
            })
        if untimed:
            warn("{}: {} event(s) without a readable timestamp took the previous event's time".format(spec.path, untimed))
        if not records:
            warn("{}: no events".format(spec.path))
    return events


# ---------------------------------------------------------------- fields (the one seam) and the base search
def default_field_function(app_dir: Path) -> FieldFunction:
    """Search-time fields from tools/searchtime.py when it exists; else only the default fields."""
    try:
        from tools.searchtime import SearchTimeKnowledge  # type: ignore[import-not-found]
    except ImportError:
        warn("tools/searchtime.py is not here yet: base searches see only _raw, sourcetype, source and host")
        return lambda event: {}
    knowledge = SearchTimeKnowledge.from_app(app_dir)

    def fields(event: Mapping[str, str]) -> Mapping[str, Value]:
        result: Dict[str, Value] = dict(knowledge.fields(event))
        eventtypes = knowledge.eventtypes(result)
        if eventtypes:
            result["eventtype"] = eventtypes
            tags = knowledge.tags(result)
            if tags:
                result["tag"] = tags
        return result

    return fields


_BREAKERS = r"\s\[\]<>(){}|!;,'\"*&?+=/:@.\-$#%\\_"


def _wildcard(value: str, bounded: bool) -> "re.Pattern[str]":
    body = ".*".join(re.escape(part) for part in value.split("*"))
    if bounded:  # a term matches whole segments of _raw (Splunk's major and minor breakers)
        body = r"(?:^|(?<=[{0}])){1}(?=$|[{0}])".format(_BREAKERS, body)
        return re.compile(body, re.IGNORECASE | re.DOTALL)
    return re.compile(body + r"\Z", re.IGNORECASE | re.DOTALL)


DEFAULT_FIELDS = frozenset({"_raw", "_time", "_cd", "index", "sourcetype", "source", "host"})


def _fields_used(node: spllint.Node) -> "set[str]":
    if isinstance(node, spllint.BoolOp):
        return set().union(*(_fields_used(child) for child in node.children))
    return {node.field or "_raw"}


def matches(node: spllint.Node, event: Mapping[str, Value]) -> bool:
    """Evaluate a parsed base search on one event, case-insensitively like Splunk."""
    if isinstance(node, spllint.BoolOp):
        if node.op == "NOT":
            return not matches(node.children[0], event)
        results = (matches(child, event) for child in node.children)
        return all(results) if node.op == "AND" else any(results)
    if node.field is None:
        raw = event.get("_raw", "")
        return bool(_wildcard(node.value, True).search(raw if isinstance(raw, str) else "\n".join(raw)))
    if node.field == "index":
        return True  # every replayed input is in scope, whatever index the macro names
    value = event.get(node.field)
    if value is None:
        return False
    pattern = _wildcard(node.value, False)
    return any(pattern.match(v) for v in ([value] if isinstance(value, str) else value))


# ---------------------------------------------------------------- macros and --set
def macro_table(content_dir: Path, overrides: Mapping[str, str]) -> Dict[str, spllint.Macro]:
    table = spllint.macro_table([spllint.Macro(str(m["name"]), str(m["definition"]), tuple(m.get("args") or ()))
                                 for m in content.macros(content_dir)])
    for name, definition in overrides.items():
        table[name] = spllint.Macro(name, definition)
    return table


def validate_overrides(settings: Sequence[str], content_dir: Path) -> Dict[str, str]:
    """--set MACRO=VALUE: tunables through the setup page's schema, data-scope and filter macros through the lint."""
    specs = content.tunable_specs(content_dir)
    scope = content.data_scope_names(content_dir)
    filters = {d.filter_macro for d in content.detections(content_dir)}
    shipped = {str(m["name"]) for m in content.macros(content_dir)}
    overrides = {}
    for setting in settings:
        name, sep, value = setting.partition("=")
        name = name.strip()
        if not sep:
            raise ReplayError("--set {!r} is not MACRO=VALUE".format(setting))
        try:
            if name in specs:
                overrides[name] = tunables.render(specs[name], value)
            elif name in scope:
                spllint.check_pure_definition(value)
                overrides[name] = value
            elif name in filters:
                match = re.fullmatch(r"\s*search\s+(.*)", value, re.DOTALL)
                if not match:
                    raise ValueError("a filter macro is 'search <terms>', e.g. search NOT host=\"build-*\"")
                spllint.check_pure_definition(match.group(1))
                overrides[name] = value
            elif name in shipped:
                raise ReplayError("--set {}: only tunables, data-scope and filter macros can be set in a replay".format(name))
            else:
                raise ReplayError("--set {}: unknown macro (known: {})".format(
                    name, ", ".join(sorted(set(specs) | set(scope) | filters))))
        except (ValueError, spllint.LintError) as err:
            raise ReplayError("--set {}: {}".format(name, err)) from None
    return overrides


# ---------------------------------------------------------------- running a detection
def split_args(text: str) -> List[str]:
    """SPL command arguments as splunkd hands them to a command: split on spaces, quotes removed."""
    args, current, quoted, started, i = [], [], False, False, 0
    while i < len(text):
        char = text[i]
        if quoted and char == "\\" and i + 1 < len(text):
            current.append(text[i + 1])
            i += 2
            continue
        if char == '"':
            quoted, started = not quoted, True
        elif char.isspace() and not quoted:
            if started:
                args.append("".join(current))
            current, started = [], False
        else:
            current.append(char)
            started = True
        i += 1
    if started:
        args.append("".join(current))
    return args


def _chunks(records: Sequence[Event], size: int) -> List[List[Event]]:
    return [list(records[i:i + size]) for i in range(0, len(records), size)] or [[]]


def _command_script(app_dir: Path, name: str) -> Path:
    path = app_dir / "default" / "commands.conf"
    stanzas = conffile.parse(path) if path.is_file() else {}
    if name not in stanzas or not name.startswith("escape"):
        raise ReplayError("{!r} is not one of the add-on's commands in {}".format(name, path))
    return app_dir / "bin" / stanzas[name].get("filename", name + ".py")


# Always sent, even to a command that declares required_fields: the alert rows need them for time and evidence.
ALWAYS_SENT = ("_cd", "_time")
Rows = Callable[[Optional[Sequence[str]]], List[Event]]


def project(records: Sequence[Event], required: Optional[Sequence[str]]) -> List[Event]:
    """All fields when the command declares no required_fields (splunkd sends everything), else only those."""
    if not required:
        return list(records)
    keep = set(required) | set(ALWAYS_SENT)
    return [{k: v for k, v in r.items() if k in keep} for r in records]


def run_pipe(pipe: str, rows: Rows, macros: Mapping[str, spllint.Macro], app_dir: Path,
             env: Mapping[str, str], label: str) -> List[Event]:
    """Run one command over SCP v2; `rows(required_fields)` gives its input once getinfo has told what it needs."""
    expanded = spllint.expand_macros(pipe, macros)
    name, arg_text = spllint.command_name(expanded)
    script = _command_script(app_dir, name)

    def chunks(getinfo: Dict[str, Any]) -> List[List[Event]]:
        required = getinfo.get("required_fields")
        return _chunks(rows(required if isinstance(required, list) else None), CHUNK)

    run = run_command(script, split_args(arg_text), chunks, env=env)
    for level, text in run.messages:
        if level != "ERROR":
            warn("{} | {}: {}: {}".format(label, name, level, text))
    if run.errors() or run.returncode != 0:
        raise ReplayError("{} | {} failed (exit {}): {}\n{}".format(
            label, name, run.returncode, "; ".join(run.errors()), run.stderr.strip()[-2000:]))
    return [dict(r) for r in run.records]


@dataclass
class Replay:
    events: List[Event]
    content_dir: Path = content.CONTENT
    app_dir: Path = APP_DIR
    overrides: Dict[str, str] = field(default_factory=dict)
    state_dir: Optional[Path] = None
    field_function: Optional[FieldFunction] = None
    cache: Dict[int, Event] = field(default_factory=dict)  # search-time fields by event position

    def __post_init__(self) -> None:
        self.macros = macro_table(self.content_dir, self.overrides)
        self.function = self.field_function or default_field_function(self.app_dir)
        self.by_cd = {str(e["_cd"]): str(e["_raw"]) for e in self.events}

    def fields_of(self, position: int) -> Event:
        """The event with its search-time fields, computed once and only for events a search needs them for."""
        if position not in self.cache:
            event = self.events[position]
            try:
                extracted: Event = dict(self.function({k: v for k, v in event.items() if isinstance(v, str)}))
            except Exception as err:  # a knowledge setting the evaluator refuses: a user error, not a crash
                raise ReplayError("search-time fields of {} event {}: {}".format(
                    event["sourcetype"], event["_cd"], err)) from None
            extracted.update(event)  # the default fields win, as in Splunk
            self.cache[position] = extracted
        return self.cache[position]

    def run(self, detection: content.Detection) -> List[Dict[str, object]]:
        try:
            base, replayed, after = spllint.replay_plan(detection.search, detection.replay_pipes, self.macros)
            tree = spllint.parse_search_expression(base)
        except spllint.LintError as err:
            raise ReplayError("{}: {}".format(detection.stanza, err)) from None
        needs_fields = bool(_fields_used(tree) - DEFAULT_FIELDS)
        selected = [i for i, e in enumerate(self.events) if matches(tree, self.fields_of(i) if needs_fields else e)]
        # Splunk hands events newest first; among equal times, the later-read event first.
        selected.sort(key=lambda i: (float(str(self.events[i]["_time"])), i), reverse=True)
        env = {"ESCAPE_STATE_DIR": str(self.state_dir)} if self.state_dir else {}

        def first_rows(required: Optional[Sequence[str]]) -> List[Event]:
            # Search-time fields are computed only when the command may need them.
            if required and set(required) <= DEFAULT_FIELDS:
                return project([self.events[i] for i in selected], required)
            return project([self.fields_of(i) for i in selected], required)

        rows: List[Event] = []
        provider: Rows = first_rows
        for pipe in replayed:
            rows = run_pipe(pipe, provider, self.macros, self.app_dir, env, detection.slug)
            provider = (lambda previous: lambda required: project(previous, required))(rows)
        rows = self._filter(detection, after, rows)
        alerts = [self.alert(detection, row) for row in rows]
        unsummarised = sum(1 for row in rows if not row.get("escape_summary"))
        if unsummarised:
            warn("{}: {} alert row(s) without escape_summary".format(detection.slug, unsummarised))
        return alerts

    def _filter(self, detection: content.Detection, after: List[str], rows: List[Event]) -> List[Event]:
        """Apply the filter hook when it is `search <terms>`; other pipes after the replayed part only on Splunk."""
        for pipe in after:
            expanded = spllint.expand_macros(pipe, self.macros).strip()
            match = re.fullmatch(r"search\s+(.*)", expanded, re.DOTALL)
            if pipe == "`{}`".format(detection.filter_macro) and match:
                if match.group(1).strip() != "*":
                    tree = spllint.parse_search_expression(match.group(1))
                    rows = [r for r in rows if matches(tree, r)]
            else:
                warn("{}: pipe {!r} is not replayed (confirmed only on a real Splunk)".format(detection.slug, pipe))
        return rows

    def alert(self, detection: content.Detection, row: Event) -> Dict[str, object]:
        cds = row.get("escape_evidence_cd") or row.get("_cd") or []
        evidence = []
        for cd in [cds] if isinstance(cds, str) else cds:
            if cd in self.by_cd:
                evidence.append(self.by_cd[cd])
            else:
                warn("{}: evidence {!r} is no replayed event".format(detection.slug, cd))
        try:
            stamp = datetime.fromtimestamp(float(str(row.get("_time", "0"))), timezone.utc)
            when = stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        except ValueError:
            when = str(row.get("_time", ""))
        return {
            "analytic": detection.analytic,
            "detection": detection.stanza,
            "time": when,
            "host": row.get("host", ""),
            "severity": row.get("escape_severity") or detection.severity,
            "summary": row.get("escape_summary", ""),
            "evidence": evidence,
        }


def replay(specs: Sequence[InputSpec], content_dir: Path = content.CONTENT, app_dir: Path = APP_DIR,
           settings: Sequence[str] = (), state_dir: Optional[Path] = None, only: Iterable[str] = (),
           field_function: Optional[FieldFunction] = None) -> List[Dict[str, object]]:
    """Replay `specs` through every detection (or the slugs in `only`); return the alerts."""
    overrides = validate_overrides(settings, content_dir)
    chosen = [d for d in content.detections(content_dir) if not only or d.slug in set(only)]
    unknown = set(only) - {d.slug for d in chosen}
    if unknown:
        raise ReplayError("unknown detection(s): {}".format(", ".join(sorted(unknown))))
    if not (app_dir / "bin").is_dir():
        raise ReplayError("{} is not a built add-on: run ./build.sh".format(app_dir))
    key = _input_key(specs, app_dir) if field_function is None else None
    if key is not None and key in _LOADED:
        events, cache = _LOADED[key]
    else:
        events, cache = load_events(specs, app_dir), {}
        if key is not None:
            _LOADED.clear()  # keep only the last inputs: a test session replays the same samples several times
            _LOADED[key] = (events, cache)
    with tempfile.TemporaryDirectory(prefix="escape-replay-state-") as fresh:
        engine = Replay(events, content_dir, app_dir, overrides, state_dir or Path(fresh), field_function, cache)
        alerts: List[Dict[str, object]] = []
        for detection in chosen:
            alerts.extend(engine.run(detection))
        return alerts


_LOADED: Dict[Tuple[object, ...], Tuple[List[Event], Dict[int, Event]]] = {}


def _input_key(specs: Sequence[InputSpec], app_dir: Path) -> Optional[Tuple[object, ...]]:
    """Identity of a run's inputs (files by path, size and modification time, plus the app's knowledge)."""
    try:
        parts: List[object] = [str(app_dir.resolve())]
        for name in ("props.conf", "transforms.conf", "eventtypes.conf", "tags.conf"):
            conf = app_dir / "default" / name
            parts.append(conf.stat().st_mtime_ns if conf.is_file() else None)
        for spec in specs:
            stat = spec.path.stat()
            parts.append((spec.sourcetype, str(spec.path.resolve()), stat.st_size, stat.st_mtime_ns, spec.source, spec.host))
        return tuple(parts)
    except OSError:
        return None  # load_events reports the unreadable file


def sample_specs(detection: content.Detection, kind: str, root: Path = ROOT) -> List[InputSpec]:
    return [InputSpec(s["sourcetype"], (root / s["path"]).resolve(), s.get("source"), s.get("host"))
            for s in detection.samples[kind]]


def replay_samples(content_dir: Path, app_dir: Path) -> Dict[str, int]:
    """Replay every detection over its own `samples.fires`; return alert counts per analytic.
    Detections with the same samples are replayed in one run (events and fields are read once)."""
    counts = {a: 0 for a in content.ANALYTICS}
    groups: Dict[Tuple[object, ...], List[content.Detection]] = {}
    for detection in content.detections(content_dir):
        key = tuple(tuple(sorted(s.items())) for s in detection.samples["fires"])
        groups.setdefault(key, []).append(detection)
    for members in groups.values():
        alerts = replay(sample_specs(members[0], "fires"), content_dir, app_dir, only=[d.slug for d in members])
        for detection in members:
            count = sum(1 for a in alerts if a["detection"] == detection.stanza)
            counts[detection.analytic] += count
            warn("{}: {} alert(s) on its samples".format(detection.stanza, count))
    return counts


def plan(content_dir: Path) -> str:
    """A Markdown table: per detection, what the replay runs and what only a real Splunk confirms."""
    table = spllint.macro_table([spllint.Macro(str(m["name"]), str(m["definition"]), tuple(m.get("args") or ()))
                                 for m in content.macros(content_dir)])
    lines = ["| detection | replayed pipes | confirmed only on a real Splunk |", "|---|---|---|"]
    for detection in content.detections(content_dir):
        _, replayed, after = spllint.replay_plan(detection.search, detection.replay_pipes, table)
        splunk_only = ["dispatch window and scheduling", "alert suppression on " + ", ".join(detection.suppress_fields)]
        for pipe in after:
            expanded = spllint.expand_macros(pipe, table).strip()
            if not re.fullmatch(r"search\s+.*", expanded, re.DOTALL) or pipe != "`{}`".format(detection.filter_macro):
                splunk_only.insert(0, "`` {} ``".format(pipe))
        lines.append("| {} | {} | {} |".format(detection.stanza, "<br>".join(
            "`` {} ``".format(p) for p in replayed), "; ".join(splunk_only)))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="./build.sh replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", action="append", default=[], metavar="SOURCETYPE[,source=S][,host=H]=PATH")
    parser.add_argument("--set", action="append", default=[], metavar="MACRO=VALUE")
    parser.add_argument("--state", type=Path, help="folder for the commands' state (ESCAPE_STATE_DIR); default: fresh")
    parser.add_argument("--detection", action="append", default=[], metavar="SLUG", help="only these detections")
    parser.add_argument("--samples", action="store_true", help="replay every detection's own samples.fires")
    parser.add_argument("--plan", action="store_true", help="print, per detection, what the replay covers")
    parser.add_argument("--content", type=Path, default=content.CONTENT, help=argparse.SUPPRESS)
    parser.add_argument("--app", type=Path, default=APP_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.plan:
            print(plan(args.content))
            return 0
        if args.samples:
            counts = replay_samples(args.content, args.app)
            warn("alerts on the bundled samples: " + ", ".join("{} {}".format(a, n) for a, n in counts.items()))
            return 0
        if not args.input:
            raise ReplayError("give at least one --input SOURCETYPE[,source=S][,host=H]=PATH")
        if args.state:
            args.state.mkdir(parents=True, exist_ok=True)
        alerts = replay([parse_input(i) for i in args.input], args.content, args.app, args.set, args.state,
                        args.detection)
    except (ReplayError, content.DetectionError) as err:
        print("replay: error: {}".format(err), file=sys.stderr)
        return 2
    for alert in alerts:
        print(json.dumps(alert, ensure_ascii=False))
    warn("{} alert(s)".format(len(alerts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
