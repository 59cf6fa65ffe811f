"""Offline replay of the add-on's analytics over raw log files (docs/replay.md, docs/development.md §3).

    ./build.sh replay --input SOURCETYPE[,source=S][,host=H][,index=I]=PATH [--input ...] [--set MACRO=VALUE ...] [--state DIR]

1. Event breaking and timestamps: owned sourcetypes through the built app's props.conf (tools/indextime.py), the
   documented record format of the source otherwise (tools/inputs.py). Every event gets `_cd = 0:<n>`.
2. Fields for the base search: one seam, `FieldFunction` (tools/searchtime.py over the built app).
3. Per detection (content/detections/*.yml): macro expansion (tools/spl.py), the base search as a pure search-term
   expression (tools/searchterms.py parses it; anything else is refused), then its `replay_pipes` commands, run from
   the app's bin/ through the real splunklib dispatcher over SCP v2 (tools/scp.py), events newest first, in chunks.
4. One JSON object per alert row on stdout; diagnostics on stderr.
"""
import argparse
import csv
import functools
import io
import json
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union

from escape_engine.allowlist import parse_allow_option
from escape_engine.evidence import address, addresses, reference
from escape_engine.ground import Value
from escape_engine.windows import HOSTPROCESS_MODES
from escape_setup import tunables
from tools import conffile, content, spl
from tools.inputs import InputSpec, ReplayError, Span, load_inputs, parse_input, warn
from tools.scp import run_command
from tools.searchterms import DEFAULT_FIELDS, check_pure_definition, fields_used, matches, parse_search_expression
from tools.searchtime import SearchTimeKnowledge
from tools.spl import Macro, SplError, command_name, expand_macros, replay_plan

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "output" / "TA_escape_to_host"
CHUNK = 1000
Event = Dict[str, Value]
FieldFunction = Callable[[Mapping[str, str]], Mapping[str, Value]]


# ---------------------------------------------------------------- fields (the one seam)
def default_field_function(app_dir: Path) -> FieldFunction:
    """Search-time fields from tools/searchtime.py over the built app, with eventtype and tag."""
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


# ---------------------------------------------------------------- macros and --set
def macro_table(content_dir: Path, overrides: Mapping[str, str]) -> Dict[str, Macro]:
    table = spl.macro_table([Macro(str(m["name"]), str(m["definition"]), tuple(m.get("args") or ()))
                                 for m in content.macros(content_dir)])
    for name, definition in overrides.items():
        table[name] = Macro(name, definition)
    return table


# Knobs whose value is one word of a fixed set, read from the engine that checks it (escapewindows' hostprocess=).
WORD_CHOICES: Dict[str, Tuple[str, ...]] = {"escape_windows_hostprocess": HOSTPROCESS_MODES}
# Quoted lists whose items the add-on's engine parses: the same parser checks them here (escapeinspect allow=).
LIST_PARSERS: Dict[str, Callable[[str], object]] = {"escape_allowed_workloads": parse_allow_option}


def _quoted_list(name: str, value: str) -> str:
    """A quoted, comma-separated list macro (escape_allowed_workloads): given with or without its quotes."""
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    bad = re.search(r'["`|\n\r\\]', text)
    if bad:
        raise ValueError("the character {!r} is not allowed in this comma-separated list".format(bad.group(0)))
    items = [item.strip() for item in text.split(",") if item.strip()]
    parser = LIST_PARSERS.get(name)
    if parser is not None:
        parser(",".join(items))
    return '"{}"'.format(",".join(items))


def _whole_number(value: str) -> str:
    text = value.strip()
    if not re.fullmatch(r"[0-9]{1,9}", text) or int(text) < 1:
        raise ValueError("use a whole number of 1 or more, got {!r}".format(value))
    return str(int(text))


def settable_macros(content_dir: Path) -> Dict[str, Callable[[str], str]]:
    """Every macro the docs tell a user to edit (docs/tunables.md: the tunables, every macro of content/macros/ and
    the filter hooks), each with the check and rendering the replay applies to a --set value: the setup page's own
    code where the page sets the macro (escape_setup.tunables), the lint's pure-expression check for data scopes and
    filters, the engine's parser for the workload allowlist, the shape of the shipped value otherwise."""
    checks: Dict[str, Callable[[str], str]] = {}
    for name, spec in content.tunable_specs(content_dir).items():
        checks[name] = functools.partial(tunables.render, spec)
    scope_path = content_dir / "macros" / "data_scope.yml"
    _, field_names = (tunables.load_scope_specs(content.load_yaml(scope_path)) if scope_path.is_file() else ({}, {}))
    scope = set(content.data_scope_names(content_dir))

    def pure(value: str) -> str:
        check_pure_definition(value)
        return value

    def filter_hook(value: str) -> str:
        match = re.fullmatch(r"\s*search\s+(.*)", value, re.DOTALL)
        if not match:
            raise ValueError("a filter macro is 'search <terms>', e.g. search NOT host=\"build-*\"")
        check_pure_definition(match.group(1))
        return value

    def one_of(name: str, value: str) -> str:
        if value.strip() not in WORD_CHOICES[name]:
            raise ValueError("use one of {}, got {!r}".format(", ".join(WORD_CHOICES[name]), value))
        return value.strip()

    for macro in content.macros(content_dir):
        name, definition = str(macro["name"]), str(macro["definition"]).strip()
        if name in checks or macro.get("args"):
            continue  # tunables are above; a macro with arguments is a building block, not a setting
        if name in field_names:
            checks[name] = functools.partial(tunables.render_field_name, field_names[name])
        elif name in scope:
            checks[name] = pure
        elif name.endswith("_filter") and definition == "search *":
            checks[name] = filter_hook
        elif name in WORD_CHOICES:
            checks[name] = functools.partial(one_of, name)
        elif re.fullmatch(r"[0-9]+", definition):
            checks[name] = _whole_number
        elif definition.startswith('"') and definition.endswith('"'):
            checks[name] = functools.partial(_quoted_list, name)
        else:
            checks[name] = pure
    return checks


def validate_overrides(settings: Sequence[str], content_dir: Path) -> Dict[str, str]:
    """--set MACRO=VALUE for every macro a user is told to edit, validated as settable_macros() says."""
    checks = settable_macros(content_dir)
    shipped = {str(m["name"]) for m in content.macros(content_dir)}
    overrides = {}
    for setting in settings:
        name, sep, value = setting.partition("=")
        name = name.strip()
        if not sep:
            raise ReplayError("--set {!r} is not MACRO=VALUE".format(setting))
        if name not in checks:
            known = sorted(checks)
            raise ReplayError("--set {}: {} (the replay sets: {})".format(
                name, "a macro with arguments, not a setting" if name in shipped else "unknown macro",
                ", ".join(n for n in known if not n.endswith("_filter"))
                + " and each detection's escape_<slug>_filter"))
        try:
            overrides[name] = checks[name](value)
        except (ValueError, SplError) as err:
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


class Notes:
    """The commands' messages of one run, each printed once (with the detections that gave it) at the end. A command
    that got no event has nothing to report: its INFO counters (records=0) are dropped."""

    def __init__(self) -> None:
        self.seen: Dict[Tuple[str, str, str], List[str]] = {}

    def add(self, label: str, name: str, level: str, text: str, records: int) -> None:
        if level == "INFO" and records == 0:
            return
        labels = self.seen.setdefault((name, level, text), [])
        if label not in labels:
            labels.append(label)

    def flush(self) -> None:
        for (name, level, text), labels in self.seen.items():
            if len(labels) == 1:
                warn("{} | {}: {}: {}".format(labels[0], name, level, text))
            else:
                warn("{}: {}: {} (from {} detections: {})".format(name, level, text, len(labels), ", ".join(labels)))
        self.seen.clear()


def run_pipe(pipe: str, rows: Rows, macros: Mapping[str, Macro], app_dir: Path,
             state_dir: Optional[Path], label: str, notes: Optional[Notes] = None,
             info: Optional[Mapping[str, Any]] = None) -> List[Event]:
    """Run one command over SCP v2; `rows(required_fields)` gives its input once getinfo has told what it needs.
    `info`: searchinfo keys instead of the defaults (a reader's dispatch window)."""
    expanded = expand_macros(pipe, macros)
    name, arg_text = command_name(expanded)
    script = _command_script(app_dir, name)
    sent = [0]

    def chunks(getinfo: Dict[str, Any]) -> List[List[Event]]:
        required = getinfo.get("required_fields")
        records = rows(required if isinstance(required, list) else None)
        sent[0] = len(records)
        return _chunks(records, CHUNK)

    PROGRESS.doing("{} | {}".format(label, name))
    run = run_command(script, split_args(arg_text), chunks, state_dir=state_dir, info=info)
    own = notes or Notes()
    for level, text in run.messages:
        if level != "ERROR":
            own.add(label, name, level, text, sent[0])
    if notes is None:
        own.flush()
    if run.errors() or run.returncode != 0:
        raise ReplayError("{} | {} failed (exit {}): {}\n{}".format(
            label, name, run.returncode, "; ".join(run.errors()), run.stderr.strip()[-2000:]))
    return [dict(r) for r in run.records]


class Progress:
    """A sign of life on stderr for long runs: after AFTER seconds, every EVERY seconds, one line with the events read,
    the rate, the time elapsed and what runs now. Started by main() only (library calls and tests stay quiet)."""
    AFTER = 8.0
    EVERY = 10.0

    def __init__(self) -> None:
        self.events = 0
        self.now = "reading the inputs"
        self.started = time.monotonic()
        self._stop: Optional[threading.Event] = None
        self._thread: Optional[threading.Thread] = None

    def doing(self, what: str) -> None:
        self.now = what

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        return "progress: {:,} events read, {:,.0f} events/s, {:.0f} s elapsed; now: {}".format(
            self.events, self.events / elapsed if elapsed > 0 else 0.0, elapsed, self.now)

    def start(self) -> None:
        self.started = time.monotonic()
        self._stop = threading.Event()
        stop = self._stop

        def tick() -> None:
            if stop.wait(self.AFTER):
                return
            while True:
                warn(self.line())
                if stop.wait(self.EVERY):
                    return

        self._thread = threading.Thread(target=tick, name="replay-progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._stop is not None and self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._stop = self._thread = None


PROGRESS = Progress()


@dataclass
class Replay:
    events: List[Event]
    content_dir: Path = content.CONTENT
    app_dir: Path = APP_DIR
    overrides: Dict[str, str] = field(default_factory=dict)
    state_dir: Optional[Path] = None
    field_function: Optional[FieldFunction] = None
    cache: Dict[int, Event] = field(default_factory=dict)  # search-time fields by event position
    fields: Sequence[str] = ()  # the alert rows' own fields to show (--fields), under "fields" in each alert
    matched: Set[int] = field(default_factory=set)  # events that some base search matched
    notes: Notes = field(default_factory=Notes)

    def __post_init__(self) -> None:
        self.macros = macro_table(self.content_dir, self.overrides)
        self.function = self.field_function or default_field_function(self.app_dir)
        self.index_evidence()
        self.companions = content.companions(self.content_dir)
        self.produced: Set[str] = set()  # maintenance searches this replay has run
        self.began = time.time()  # where the first saved_window of a search that reads saved results starts
        self.last_read: Dict[str, float] = {}

    def index_evidence(self) -> None:
        """Each event's _raw by where an alert row says it is: escape_evidence (index, splunk_server, _cd), or
        the bare _cd for a row that gives only escape_evidence_cd."""
        self.by_address = {address(reference(e)): str(e["_raw"]) for e in self.events}
        self.by_cd = {str(e["_cd"]): str(e["_raw"]) for e in self.events}

    def fields_of(self, position: int) -> Event:
        """The event with its search-time fields, computed once and only for events a search needs them for."""
        if position not in self.cache:
            event = self.events[position]
            try:
                extracted: Event = dict(self.function({k: v for k, v in event.items() if isinstance(v, str)}))
            # A knowledge setting the evaluator refuses is a user error, not a crash.
            except Exception as err:  # noqa: BLE001
                raise ReplayError("search-time fields of {} event {}: {}".format(
                    event["sourcetype"], event["_cd"], err)) from None
            extracted.update(event)  # the default fields win, as in Splunk
            self.cache[position] = extracted
        return self.cache[position]

    def visible(self, position: int) -> bool:
        """Whether the search being run can see the event (the simulation narrows this to its dispatch window)."""
        return True

    def result_rows(self, detection: Union[content.Detection, content.MaintenanceSearch]) -> List[Event]:
        """The rows of a detection (or a maintenance search): base search, replayed commands, filter hook."""
        try:
            base, replayed, after = replay_plan(detection.search, detection.replay_pipes, self.macros,
                                                filtered=bool(detection.filter_macro))
            tree = parse_search_expression(base) if base else None
        except SplError as err:
            raise ReplayError("{}: {}".format(detection.stanza, err)) from None
        if tree is None:  # no base search: the first pipe generates the rows (it reads saved results)
            rows = self.run_pipes(detection.slug, replayed, [], self.saved_window(detection.slug))
            return self._filter(detection, after, rows)
        needs_fields = bool(fields_used(tree) - DEFAULT_FIELDS)
        PROGRESS.doing("{} | base search".format(detection.slug))
        selected = [i for i, e in enumerate(self.events)
                    if self.visible(i) and matches(tree, self.fields_of(i) if needs_fields else e)]
        self.matched.update(selected)
        # Splunk hands events newest first; among equal times, the later-read event first.
        selected.sort(key=lambda i: (float(str(self.events[i]["_time"])), i), reverse=True)
        rows = self.run_pipes(detection.slug, replayed, selected)
        return self._filter(detection, after, rows)

    def saved_window(self, slug: str) -> Dict[str, str]:
        """The dispatch window of a search that reads saved results, on the clock the saves are stamped with: from
        its previous run (the first: from the start of this replay) to now. Consecutive runs read every row saved
        meanwhile once, as scheduled runs do; rows an earlier replay left in a reused --state folder are not read."""
        now = time.time()
        earliest = self.last_read.get(slug, self.began)
        self.last_read[slug] = now
        return {"earliest_time": repr(earliest), "latest_time": repr(now)}

    def first_rows(self, selected: Sequence[int], required: Optional[Sequence[str]]) -> List[Event]:
        """The base search's events as the first command receives them."""
        # Search-time fields are computed only when the command may need them.
        if required and set(required) <= DEFAULT_FIELDS:
            return project([self.events[i] for i in selected], required)
        return project([self.fields_of(i) for i in selected], required)

    def run_pipes(self, label: str, replayed: Sequence[str], selected: Sequence[int],
                  info: Optional[Mapping[str, Any]] = None) -> List[Event]:
        """The replayed commands, one after another, over the selected events (all on the search head); `info`:
        searchinfo keys for them (a reader's window)."""
        rows: List[Event] = []
        provider: Rows = functools.partial(self.first_rows, selected)
        for pipe in replayed:
            rows = run_pipe(pipe, provider, self.macros, self.app_dir, self.state_dir, label, self.notes, info)
            provider = functools.partial(project, rows)
        return rows

    def run(self, detection: content.Detection) -> List[Dict[str, object]]:
        if detection.reads_saved_results:  # what its companion saves is there before it reads (once per replay)
            for maintenance in self.companions.get(detection.slug, []):
                if maintenance.slug not in self.produced:
                    self.produced.add(maintenance.slug)
                    self.result_rows(maintenance)
        rows = self.result_rows(detection)
        alerts = [self.alert(detection, row) for row in rows]
        unsummarised = sum(1 for row in rows if not row.get("escape_summary"))
        if unsummarised:
            warn("{}: {} alert row(s) without escape_summary".format(detection.slug, unsummarised))
        return alerts

    def _filter(self, detection: Union[content.Detection, content.MaintenanceSearch], after: List[str],
                rows: List[Event]) -> List[Event]:
        """Apply the filter hook when it is `search <terms>`; other pipes after the replayed part only on Splunk."""
        for pipe in after:
            expanded = expand_macros(pipe, self.macros).strip()
            match = re.fullmatch(r"search\s+(.*)", expanded, re.DOTALL)
            if pipe == "`{}`".format(detection.filter_macro) and match:
                if match.group(1).strip() != "*":
                    tree = parse_search_expression(match.group(1))
                    rows = [r for r in rows if matches(tree, r)]
            else:
                warn("{}: pipe {!r} is not replayed (confirmed only on a real Splunk)".format(detection.slug, pipe))
        return rows

    def alert(self, detection: content.Detection, row: Event) -> Dict[str, object]:
        found_at = addresses(row)
        cds = row.get("escape_evidence_cd") or row.get("_cd") or []
        known, places = (self.by_address, found_at) if found_at else (self.by_cd, [cds] if isinstance(cds, str) else cds)
        evidence = []
        for place in places:
            if place in known:
                evidence.append(known[place])
            else:
                warn("{}: evidence {!r} is no replayed event".format(detection.slug, place))
        try:
            stamp = datetime.fromtimestamp(float(str(row.get("_time", "0"))), timezone.utc)
            when = stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        except ValueError:
            when = str(row.get("_time", ""))
        alert: Dict[str, object] = {
            "analytic": detection.analytic,
            "detection": detection.stanza,
            "time": when,
            "host": row.get("host", ""),
            "severity": row.get("escape_severity") or detection.severity,
            "summary": row.get("escape_summary", ""),
            "evidence": evidence,
        }
        if self.fields:
            alert["fields"] = {name: row.get(name, "") for name in self.fields}
        return alert


def replay(specs: Sequence[InputSpec], content_dir: Path = content.CONTENT, app_dir: Path = APP_DIR,
           settings: Sequence[str] = (), state_dir: Optional[Path] = None, only: Iterable[str] = (),
           field_function: Optional[FieldFunction] = None, fields: Sequence[str] = (),
           require_time: bool = True) -> List[Dict[str, object]]:
    """Replay `specs` through every detection (or the slugs in `only`); return the alerts. With `fields`, each alert
    also carries those fields of its alert row under "fields". `require_time=False` only for the bundled samples
    (an input without any timestamp is refused otherwise)."""
    overrides = validate_overrides(settings, content_dir)
    chosen = [d for d in content.detections(content_dir) if not only or d.slug in set(only)]
    unknown = set(only) - {d.slug for d in chosen}
    if unknown:
        raise ReplayError("unknown detection(s): {}".format(", ".join(sorted(unknown))))
    if not (app_dir / "bin").is_dir():
        raise ReplayError("{} is not a built add-on: run ./build.sh".format(app_dir))
    known = _input_key(specs, app_dir) if field_function is None else None
    key = None if known is None else (require_time,) + known
    if key is not None and key in _LOADED:
        events, spans, cache = _LOADED[key]
    else:
        (events, spans), cache = load_inputs(specs, app_dir, require_time), {}
        if key is not None:
            _LOADED.clear()  # keep only the last inputs: a test session replays the same samples several times
            _LOADED[key] = (events, spans, cache)
    PROGRESS.events = len(events)
    with tempfile.TemporaryDirectory(prefix="escape-replay-state-") as fresh:
        engine = Replay(events, content_dir, app_dir, overrides, state_dir or Path(fresh), field_function, cache,
                        fields)
        alerts: List[Dict[str, object]] = []
        try:
            for detection in chosen:
                alerts.extend(engine.run(detection))
        finally:
            engine.notes.flush()
        _report_unmatched(spans, engine.matched, len(chosen))
        return alerts


def _report_unmatched(spans: Sequence[Span], matched: Set[int], detections: int) -> None:
    """Per input: say so when none of its events matched any replayed detection's base search."""
    for span in spans:
        total = span.end - span.start
        if total and not any(span.start <= i < span.end for i in matched):
            warn("{}: 0 of {:,} events matched the base search of {}: is the sourcetype ({}) right?".format(
                span.spec.path, total, "any detection" if detections != 1 else "the detection replayed",
                span.spec.sourcetype))


_LOADED: Dict[Tuple[object, ...], Tuple[List[Event], List[Span], Dict[int, Event]]] = {}


def _input_key(specs: Sequence[InputSpec], app_dir: Path) -> Optional[Tuple[object, ...]]:
    """Identity of a run's inputs (files by path, size and modification time, plus the app's knowledge)."""
    try:
        parts: List[object] = [str(app_dir.resolve())]
        for name in ("props.conf", "transforms.conf", "eventtypes.conf", "tags.conf"):
            conf = app_dir / "default" / name
            parts.append(conf.stat().st_mtime_ns if conf.is_file() else None)
        for spec in specs:
            stat = spec.path.stat()
            parts.append((spec.sourcetype, str(spec.path.resolve()), stat.st_size, stat.st_mtime_ns, spec.source,
                          spec.host, spec.index))
        return tuple(parts)
    except OSError:
        return None  # load_events reports the unreadable file


def sample_specs(detection: content.Detection, kind: str, root: Path = ROOT) -> List[InputSpec]:
    return [InputSpec(s["sourcetype"], (root / s["path"]).resolve(), s.get("source"), s.get("host"))
            for s in detection.samples[kind]]


def sample_groups(content_dir: Path = content.CONTENT) -> List[List[content.Detection]]:
    """The detections grouped by their `samples.fires` (the same samples are replayed in one run)."""
    groups: Dict[Tuple[object, ...], List[content.Detection]] = {}
    for detection in content.detections(content_dir):
        key = tuple(tuple(sorted(s.items())) for s in detection.samples["fires"])
        groups.setdefault(key, []).append(detection)
    return list(groups.values())


def replay_samples(content_dir: Path, app_dir: Path) -> Dict[str, int]:
    """Replay every detection over its own `samples.fires`; return alert counts per analytic.
    Detections with the same samples are replayed in one run (events and fields are read once)."""
    counts = {a: 0 for a in content.ANALYTICS}
    for members in sample_groups(content_dir):
        alerts = replay(sample_specs(members[0], "fires"), content_dir, app_dir, only=[d.slug for d in members],
                        require_time=False)
        for detection in members:
            count = sum(1 for a in alerts if a["detection"] == detection.stanza)
            counts[detection.analytic] += count
            warn("{}: {} alert(s) on its samples".format(detection.stanza, count))
    return counts


def plan(content_dir: Path) -> str:
    """A Markdown table: per detection, what the replay runs and what only a real Splunk confirms."""
    table = spl.macro_table([Macro(str(m["name"]), str(m["definition"]), tuple(m.get("args") or ()))
                                 for m in content.macros(content_dir)])
    lines = ["| detection | replayed pipes | confirmed only on a real Splunk |", "|---|---|---|"]
    for detection in content.detections(content_dir):
        _, replayed, after = replay_plan(detection.search, detection.replay_pipes, table)
        splunk_only = ["dispatch window and scheduling", "alert suppression on " + ", ".join(detection.suppress_fields)]
        for pipe in after:
            expanded = expand_macros(pipe, table).strip()
            if not re.fullmatch(r"search\s+.*", expanded, re.DOTALL) or pipe != "`{}`".format(detection.filter_macro):
                splunk_only.insert(0, "`` {} ``".format(pipe))
        if detection.reads_saved_results:  # the replay runs its producer first, once
            for maintenance in content.companions(content_dir).get(detection.slug, []):
                replayed = ["{}: {}".format(maintenance.stanza, " | ".join(
                    replay_plan(maintenance.search, maintenance.replay_pipes, table)[1]))] + replayed
            splunk_only.append("the KV store between the correlation and this search")
        lines.append("| {} | {} | {} |".format(detection.stanza, "<br>".join(
            "`` {} ``".format(p) for p in replayed), "; ".join(splunk_only)))
    return "\n".join(lines)


FORMATS = ("json", "table", "csv")
COLUMNS = ("time", "severity", "host", "detection", "summary")


def _cell(value: object) -> str:
    if isinstance(value, list):
        return " | ".join(str(v) for v in value)
    return str(value)


def _flat(alert: Mapping[str, object]) -> Dict[str, object]:
    """An alert with its --fields as columns of their own (named as the alert row names them)."""
    flat = {k: v for k, v in alert.items() if k != "fields"}
    extra = alert.get("fields")
    if isinstance(extra, dict):
        for name, value in extra.items():
            flat[name if name not in flat else "field:" + name] = value
    return flat


def render(alerts: Sequence[Mapping[str, object]], fmt: str, fields: Sequence[str] = ()) -> str:
    """The alerts as stdout shows them: json (one object per line, the documented contract), csv (every key, evidence
    joined by newlines inside its cell) or table (aligned columns a person reads: time, severity, host, the
    detection's title, the --fields, summary; evidence left out)."""
    if fmt == "json":
        return "".join(json.dumps(alert, ensure_ascii=False) + "\n" for alert in alerts)
    rows = [_flat(a) for a in alerts]
    extra = [name if name not in ALERT_KEYS else "field:" + name for name in fields]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(list(ALERT_KEYS) + extra)
        for row in rows:
            writer.writerow(["\n".join(str(e) for e in row["evidence"]) if key == "evidence"  # type: ignore[attr-defined]
                             else _cell(row.get(key, "")) for key in list(ALERT_KEYS) + extra])
        return out.getvalue()
    header = list(COLUMNS[:-1]) + extra + ["summary"]  # the long summary last, unpadded
    table = [[_cell(row.get(key, "")) for key in header] for row in rows]
    for line in table:  # the stanza name without its fixed prefix and suffix
        line[3] = re.sub(r"^Escape to Host - (.*) - Rule$", r"\1", line[3])
    widths = [max([len(h)] + [len(line[i]) for line in table]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in table]
    return "\n".join(lines) + "\n"


ALERT_KEYS = ("analytic", "detection", "time", "host", "severity", "summary", "evidence")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="./build.sh replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", action="append", default=[], metavar="SOURCETYPE[,source=S][,host=H][,index=I]=PATH")
    parser.add_argument("--set", action="append", default=[], metavar="MACRO=VALUE")
    parser.add_argument("--state", type=Path, help="state folder (JSON files, not the KV store); default: fresh")
    parser.add_argument("--detection", action="append", default=[], metavar="SLUG", help="only these detections")
    parser.add_argument("--format", choices=FORMATS, default="json",
                        help="json (default: one object per alert), table (for reading) or csv")
    parser.add_argument("--fields", default="", metavar="F1,F2",
                        help="also show these fields of each alert row (e.g. escape_namespace,escape_workload)")
    parser.add_argument("--samples", action="store_true", help="replay every detection's own samples.fires")
    parser.add_argument("--plan", action="store_true", help="print, per detection, what the replay covers")
    parser.add_argument("--content", type=Path, default=content.CONTENT, help=argparse.SUPPRESS)
    parser.add_argument("--app", type=Path, default=APP_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    fields = [f.strip() for f in args.fields.split(",") if f.strip()]
    try:
        if args.plan:
            print(plan(args.content))
            return 0
        if args.samples:
            counts = replay_samples(args.content, args.app)
            warn("alerts on the bundled samples: " + ", ".join("{} {}".format(a, n) for a, n in counts.items()))
            return 0
        if not args.input:
            raise ReplayError("give at least one --input SOURCETYPE[,source=S][,host=H][,index=I]=PATH")
        bad = [f for f in fields if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.:-]*", f)]
        if bad:
            raise ReplayError("--fields: {!r} is not a field name".format(bad[0]))
        if args.state:
            args.state.mkdir(parents=True, exist_ok=True)
        PROGRESS.start()
        try:
            alerts = replay([parse_input(i) for i in args.input], args.content, args.app, args.set, args.state,
                            args.detection, fields=fields)
        finally:
            PROGRESS.stop()
    except (ReplayError, content.DetectionError) as err:
        print("replay: error: {}".format(err), file=sys.stderr)
        return 2
    sys.stdout.write(render(alerts, args.format, fields))
    warn("{} alert(s)".format(len(alerts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
