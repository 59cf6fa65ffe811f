"""The benchmark's table of cases: which detection (or maintenance search) pipe each escape<verb> command is
measured and fuzzed as, the searches' base-search matcher made fast (the replay's own rules), and the detections'
samples. Read by tools/bench.py and tests/integration/test_fuzz_commands.py.
"""
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from escape_engine.ground import Value
from tools import content as content_model
from tools import replay
from tools.benchscp import APP
from tools.inputs import load_events
from tools.searchterms import BREAKERS, BoolOp, Node, matches, parse_search_expression, wildcard
from tools.spl import Macro, command_name, expand_macros, replay_plan

ROOT = Path(__file__).resolve().parent.parent
BUILT_APP = ROOT / "output" / APP
COMMANDS_CONF = ROOT / "package" / "default" / "commands.conf"

Event = Dict[str, Value]
Searched = Union[content_model.Detection, content_model.MaintenanceSearch]


# ---- the per-command table -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CommandCase:
    """How to benchmark and fuzz one escape<verb> command.

    detection: the content/detections slug whose base search selects the command's input;
    pipe: which pipe of that search (1 = right after the base search) the command is; earlier pipes are run
          (untimed) to produce its input;
    overrides: arguments replacing those of the detection's pipe (e.g. the widest output for a fair worst case);
    reports: how the command reports malformed / out-of-order input: "warning" (inspector WARN message with a
             count) or "summary" (a summary count in an inspector message);
    emits_per_event: True when the command returns (up to) one row per input event, False when it emits only
             alerts (the fuzz test then checks counts rather than rows);
    generating: it reads saved results and takes no events (escapefindings): neither timed against a pass-through
             nor fuzzed with events (tests/unit/test_findings.py feeds it malformed saved documents).
    """
    detection: str
    pipe: int
    overrides: Tuple[Tuple[str, str], ...] = ()
    emits_per_event: bool = True
    generating: bool = False


# One entry per stanza of package/default/commands.conf; a command without an entry fails tests/unit/test_bench.py.
COMMANDS: Dict[str, CommandCase] = {
    "escapeinspect": CommandCase("container_allowlisted_workload", 1, (("suppressed", "include"),)),
    "escapethreshold": CommandCase("container_privileged_launch_threshold", 2, emits_per_event=False),
    "escapereduce": CommandCase("linux_escape_correlation", 1),
    "escapecorrelate": CommandCase("linux_escape_correlation", 2, (("state", "none"),), emits_per_event=False),
    "escapefindings": CommandCase("linux_container_escape_attempt", 1, emits_per_event=False, generating=True),
    "escapewindows": CommandCase("windows_container_restricted_dir_exec", 1),
    "escapeesxi": CommandCase("esxi_unexpected_module_load", 1, emits_per_event=False),
    "escaperegistry": CommandCase("container_registry", 1, (("state", "none"),), emits_per_event=False),
}


def conf_commands(path: Path = COMMANDS_CONF) -> List[str]:
    """The escape<verb> stanzas of commands.conf, in file order."""
    names = re.findall(r"^\[(escape[a-z0-9]+)\]\s*$", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return names


_BREAKER = re.compile("[{}]".format(BREAKERS))


# ---- detections, macros and the base-search matcher (the replay's own: tools/searchterms.py) ----------------------
@dataclass
class Content:
    """The detections (content/detections) with the maintenance searches they read (content/baselines/ with
    companion_of), and the macro table the replay expands searches with."""
    detections: Dict[str, Searched]
    macros: Dict[str, Macro]

    def with_base_search(self) -> Dict[str, Searched]:
        """The searches that select events (a detection reading saved results selects none)."""
        return {s: d for s, d in self.detections.items()
                if not (isinstance(d, content_model.Detection) and d.reads_saved_results)}


def _content() -> Content:
    searches: Dict[str, Searched] = {d.slug: d for d in content_model.detections()}
    searches.update((m.slug, m) for m in content_model.maintenance_searches() if m.companion_of)
    return Content(searches, replay.macro_table(content_model.CONTENT, {}))


def _plan(detection: Searched, macros: Mapping[str, Macro]) -> Tuple[str, List[str]]:
    base, replayed, _after = replay_plan(detection.search, detection.replay_pipes, macros,
                                         filtered=bool(detection.filter_macro))
    return base, replayed


def base_search(detection: Searched, macros: Mapping[str, Macro]) -> Node:
    """The detection's base search parsed by the replay (it refuses what it does not implement)."""
    return parse_search_expression(_plan(detection, macros)[0])


Matcher = Callable[[Mapping[str, Value], Dict[str, Any]], bool]


def compile_matcher(node: Node) -> Matcher:
    """The replay's matcher (tools/searchterms.py `matches`: same tree, same rules, its `wildcard` patterns) made fast
    enough for a million events: patterns compiled once, and a plain term (no wildcard, no breaker inside) looked up
    in the event's set of breaker-delimited segments, which is what the replay's bounded pattern matches. Call the
    result with (event, {}) and reuse the dict for the same event across detections."""
    if isinstance(node, BoolOp):
        kids = [compile_matcher(child) for child in node.children]
        if node.op == "NOT":
            return lambda e, c: not kids[0](e, c)
        if node.op == "AND":
            return lambda e, c: all(k(e, c) for k in kids)
        return lambda e, c: any(k(e, c) for k in kids)
    if node.field is None:
        if "*" not in node.value and not _BREAKER.search(node.value):
            word = node.value.lower()

            def segment_match(event: Mapping[str, Value], cache: Dict[str, Any]) -> bool:
                segments = cache.get("segments")
                if segments is None:
                    raw = event.get("_raw", "")
                    text = raw if isinstance(raw, str) else "\n".join(raw)
                    segments = cache["segments"] = set(_BREAKER.split(text.lower()))
                return word in segments
            return segment_match
        term = wildcard(node.value, True)

        def raw_match(event: Mapping[str, Value], cache: Dict[str, Any]) -> bool:
            raw = event.get("_raw", "")
            return bool(term.search(raw if isinstance(raw, str) else "\n".join(raw)))
        return raw_match
    if node.field == "index":
        return lambda e, c: True  # every generated event is in scope, whatever index the macro names
    pattern = wildcard(node.value, False)
    name = node.field

    def field_match(event: Mapping[str, Value], cache: Dict[str, Any]) -> bool:
        value = event.get(name)
        if value is None:
            return False
        return any(pattern.match(v) for v in ([value] if isinstance(value, str) else value))
    return field_match


def metadata_verdict(node: Node, event: Mapping[str, Value]) -> Optional[bool]:
    """The base search decided on an event's fields alone, in three-valued logic: True or False when no _raw term
    can change the outcome, None when one can."""
    if isinstance(node, BoolOp):
        results = [metadata_verdict(child, event) for child in node.children]
        if node.op == "NOT":
            return None if results[0] is None else not results[0]
        if node.op == "AND":
            return False if False in results else None if None in results else True
        return True if True in results else None if None in results else False
    if node.field is None:
        return None
    return matches(node, event)


def command_args(case: CommandCase, content: Content, pipe: Optional[int] = None) -> Tuple[str, List[str]]:
    """(command, args) of a detection's replayed pipe, as splunkd passes them: tokenised, SPL quotes stripped."""
    replayed = _plan(content.detections[case.detection], content.macros)[1]
    number = case.pipe if pipe is None else pipe
    if not 1 <= number <= len(replayed):
        raise ValueError("{}: pipe {} is not one of its {} replayed pipes".format(
            case.detection, number, len(replayed)))
    name, arg_text = command_name(expand_macros(replayed[number - 1], content.macros))
    args = replay.split_args(arg_text)
    if pipe is None:
        overrides = dict(case.overrides)
        args = [a for a in args if a.split("=", 1)[0] not in overrides] + \
            ["{}={}".format(k, v) for k, v in case.overrides]
    return name, args


def sample_events(detection: content_model.Detection, kinds: Sequence[str] = ("fires", "silent")) -> List[Event]:
    """A detection's own bundled samples, read by the replay's readers (event breaking, timestamps)."""
    specs = [s for kind in kinds for s in replay.sample_specs(detection, kind)]
    return [dict(e) for e in load_events(specs, BUILT_APP)]


def linux_passes(content: Content) -> int:
    """How many scheduled searches run the Linux correlation over the same data (each costs the search head once):
    the detections' own and the maintenance searches they read."""
    return sum(1 for d in content.with_base_search().values()
               if any(command_name(expand_macros(p, content.macros))[0] == "escapecorrelate"
                      for p in _plan(d, content.macros)[1]))
