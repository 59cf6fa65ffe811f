"""A lint for the add-on's SPL: structure, commands, functions, knowledge objects and project rules.

It is a lint, not a parser: it expands macros, checks quotes / parentheses / brackets, splits on top-level pipes and
checks each command's name (and the function names inside eval, where and stats-like commands) against allow-lists
written from Splunk's public Search Reference plus our own commands.conf. It does not check command options, argument
syntax or types; a real Splunk remains the judge of those (README, "What only a real Splunk confirms").

It reads SPL through tools/spl.py (structure, macros) and tools/searchterms.py (the base search must be a pure
search-term expression the replay evaluates). Linting everything the add-on ships, with the content model, is
tools/contentlint.py.
"""
import re
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Tuple

from escape_engine.ground import filter_macro_name
from tools.searchterms import parse_search_expression
from tools.spl import (
    Macro,
    SplError,
    check_balance,
    command_name,
    escape_pipes,
    expand_macros,
    macro_references,
    outside_quotes,
    replay_plan,
    split_pipes,
    strip_comments,
)

# Splunk Search Reference (Splunk Enterprise 9.x/10.x), built-in commands. Written by hand from the public index.
BUILTIN_COMMANDS = frozenset("""
abstract accum addcoltotals addinfo addtotals analyzefields anomalies anomalousvalue anomalydetection append
appendcols appendpipe arules associate audit autoregress bin bucket bucketdir chart cluster cofilter collect
concurrency contingency convert correlate datamodel dbinspect dedup delete delta diff erex eval eventcount eventstats
extract kv fieldformat fields fieldsummary filldown fillnull findtypes folderize foreach format from gauge gentimes
geom geomfilter geostats head highlight history iconify inputcsv inputlookup iplocation join kmeans kvform loadjob
localize localop lookup makecontinuous makemv makeresults map mcollect metadata metasearch meventcollect mpreview
msearch mstats multikv multisearch mvcombine mvexpand nomv outlier outputcsv outputlookup outputtext overlap pivot
predict rangemap rare redistribute regex reltime rename replace require rest return reverse rex rtorder savedsearch
script run scrub search searchtxn selfjoin sendalert sendemail set setfields sichart sirare sistats sitimechart sitop
sort spath stats strcat streamstats table tags tail timechart timewrap tojson top transaction transpose trendline
tscollect tstats typeahead typelearner typer union uniq untable walklex where x11 xmlkv xmlunescape xpath xyseries
""".split())

# Commands that produce events themselves: they must come first, after a leading pipe (append=t variants aside).
GENERATING_COMMANDS = frozenset("""
datamodel dbinspect eventcount from gentimes inputcsv inputlookup loadjob makeresults metadata metasearch mpreview
msearch mstats multisearch pivot rest savedsearch searchtxn set tstats union walklex history audit
""".split())
GENERATING_ANYWHERE_WITH_APPEND = frozenset({"inputlookup", "tstats", "mstats", "inputcsv"})

EVAL_FUNCTIONS = frozenset("""
abs acos acosh asin asinh atan atan2 atanh avg bit_and bit_not bit_or bit_shift_left bit_shift_right bit_xor case
cidrmatch ceil ceiling coalesce commands cos cosh exact exp false floor hypot if in ipmask isarray isbool isdouble
isint isnotnull isnull isnum isobject isstr json_append json_array json_array_to_mv json_delete json_entries
json_extend json_extract json_extract_exact json_has_key_exact json_keys json_object json_set json_set_exact json_valid
len like ln log lookup lower ltrim match max md5 min mv_to_json_array mvappend mvcount mvdedup mvfilter mvfind
mvindex mvjoin mvmap mvrange mvsort mvzip now null nullif pi pow printf random relative_time replace round rtrim
searchmatch sha1 sha256 sha512 sigfig sin sinh spath split sqrt strftime strptime substr sum tan tanh time tonumber
tostring trim true typeof upper urldecode validate
""".split())
STATS_FUNCTIONS = frozenset("""
avg c count dc distinct_count earliest earliest_time estdc estdc_error eval exactperc first last latest latest_time
list max mean median min mode perc range rate rate_avg rate_sum sparkline stdev stdevp sum sumsq upperperc values
var varp per_day per_hour per_minute per_second
""".split())
_PERCENTILE = re.compile(r"(?:perc|p|exactperc|upperperc)\d+")
FUNCTION_COMMANDS = {"eval": EVAL_FUNCTIONS, "where": EVAL_FUNCTIONS, "fieldformat": EVAL_FUNCTIONS}
for _name in ("stats", "eventstats", "streamstats", "chart", "timechart", "tstats", "sistats", "top", "geostats"):
    FUNCTION_COMMANDS[_name] = STATS_FUNCTIONS | EVAL_FUNCTIONS  # stats accept eval(...) holding eval functions
_OPERATOR_WORDS = frozenset({"AND", "OR", "NOT", "XOR", "LIKE", "BY", "AS", "OVER"})


# ---------------------------------------------------------------- whole searches
@dataclass
class Knowledge:
    """What a search may reference: macros, our commands, lookups and eventtypes."""
    macros: Dict[str, Macro]
    commands: FrozenSet[str] = frozenset()
    lookups: FrozenSet[str] = frozenset()
    eventtypes: FrozenSet[str] = frozenset()
    external_macros: Tuple[str, ...] = ()
    generating: FrozenSet[str] = frozenset()  # our commands that generate rows (after a leading pipe)


def lint_search(spl: str, knowledge: Knowledge, subsearch: bool = False) -> List[str]:
    """Return the list of problems in one search (empty when it passes)."""
    problems: List[str] = []
    try:
        expanded = expand_macros(spl, knowledge.macros, knowledge.external_macros) if not subsearch else spl
        check_balance(expanded)
    except SplError as err:
        return [str(err)]
    text = expanded.strip()
    leading_pipe = text.startswith("|")
    pipes = split_pipes(text[1:] if leading_pipe else text)
    for position, pipe in enumerate(pipes):
        if not pipe:
            problems.append("empty pipe at position {}".format(position))
            continue
        if position == 0 and not leading_pipe:
            name, args = "search", pipe
        else:
            try:
                name, args = command_name(pipe)
            except SplError as err:
                problems.append(str(err))
                continue
        if name not in BUILTIN_COMMANDS and name not in knowledge.commands:
            problems.append("unknown command {!r}".format(name))
        generating = name in GENERATING_COMMANDS or name in knowledge.generating
        if leading_pipe and position == 0 and not generating:
            problems.append("{!r} follows a leading pipe but is not a generating command".format(name))
        appended = name in GENERATING_ANYWHERE_WITH_APPEND and re.search(r"\bappend\s*=\s*t(rue)?\b", args,
                                                                         re.IGNORECASE)
        if position > 0 and generating and name != "search" and not appended:
            problems.append("generating command {!r} must come first, after a leading pipe".format(name))
        bare = outside_quotes(args)
        allowed = FUNCTION_COMMANDS.get(name)
        if allowed is not None:
            for function in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", bare):
                if function.upper() in _OPERATOR_WORDS and function.isupper():
                    continue
                if function.lower() not in allowed and not _PERCENTILE.fullmatch(function.lower()):
                    problems.append("{}: unknown function {}()".format(name, function))
        if name in ("lookup", "inputlookup", "outputlookup"):
            target = re.sub(r"^(?:\w+\s*=\s*\S+\s+)*", "", args).split()
            if target and name != "outputlookup" and target[0] not in knowledge.lookups:
                problems.append("{}: unknown lookup {!r}".format(name, target[0]))
        for eventtype in re.findall(r"\beventtype\s*=\s*\"?([A-Za-z0-9_.:-]+)", bare):
            if eventtype not in knowledge.eventtypes:
                problems.append("unknown eventtype {!r}".format(eventtype))
        for inner in _subsearches(args):
            problems.extend(lint_search(inner, knowledge, subsearch=True))
    return problems


def _subsearches(text: str) -> List[str]:
    found, depth, start, quoted = [], 0, 0, False
    for i, char in enumerate(text):
        if char == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and char == "[":
            if depth == 0:
                start = i + 1
            depth += 1
        elif not quoted and char == "]":
            depth -= 1
            if depth == 0:
                found.append(text[start:i])
    return found


def has_index(definition: str) -> bool:
    return bool(re.search(r"(?<![\w.])index\s*=", outside_quotes(definition), re.IGNORECASE))


# ------------------------------------------------- scheduling and detection rules (docs/development.md §1)
def cron_period_minutes(cron: str) -> int:
    """The interval between runs of a regular cron schedule; irregular ones are refused."""
    fields = cron.split()
    if len(fields) != 5:
        raise SplError("cron_schedule {!r} does not have five fields".format(cron))
    minute, hour, day, month, weekday = fields
    if (day, month, weekday) != ("*", "*", "*"):
        raise SplError("cron_schedule {!r}: the lint computes periods only for daily or shorter schedules".format(cron))
    step = re.fullmatch(r"(?:\*|\d+(?:-\d+)?)/(\d+)", minute)
    if step and hour == "*" and 60 % int(step.group(1)) == 0:
        return int(step.group(1))
    if re.fullmatch(r"\d+(,\d+)+", minute) and hour == "*":
        values = sorted(int(v) for v in minute.split(","))
        gaps = {b - a for a, b in zip(values, values[1:] + [values[0] + 60])}
        if len(gaps) == 1:
            return gaps.pop()
    if re.fullmatch(r"\d+", minute):
        if hour == "*":
            return 60
        hour_step = re.fullmatch(r"(?:\*|\d+(?:-\d+)?)/(\d+)", hour)
        if hour_step and 24 % int(hour_step.group(1)) == 0:
            return 60 * int(hour_step.group(1))
        if re.fullmatch(r"\d+", hour):
            return 1440
    raise SplError("cron_schedule {!r} is not a regular schedule the lint understands".format(cron))


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def relative_seconds(text: str) -> int:
    """Seconds before now of a relative time such as -70m@m (the snap is ignored; both ends snap alike)."""
    if text.strip() == "now":
        return 0
    match = re.fullmatch(r"-(\d+)(s|m|h|d)(?:@[smhd])?", text.strip())
    if not match:
        raise SplError("dispatch time {!r} is not of the form -<n><s|m|h|d>[@<unit>]".format(text))
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


# Commands that may follow the replayed part without deciding anything (they never drop or add rows).
PRESENTATION_COMMANDS = frozenset({"fields", "table", "rename", "fillnull", "convert", "eval"})


@dataclass
class DetectionView:
    """What the rules need from a detection and its rendered stanza (filled by lint_content)."""
    slug: str
    type: str
    search: str
    replay_pipes: int
    stanza: Dict[str, str]
    data_scope: Tuple[str, ...]
    time_window_seconds: int
    producer: str = ""  # the search of the maintenance search whose saved results it reads (companion_of)


def lint_detection(view: DetectionView, knowledge: Knowledge) -> List[str]:
    problems = ["search: " + p for p in lint_search(view.search, knowledge)]
    filter_call = "`{}`".format(filter_macro_name(view.slug))
    if split_pipes(strip_comments(view.search).strip())[-1] != filter_call:
        problems.append("the search must end with its own filter macro {}".format(filter_call))
    try:
        base, replayed, after = replay_plan(view.search, view.replay_pipes, knowledge.macros)
    except SplError as err:
        return problems + [str(err)]
    if not split_pipes(strip_comments(view.search).strip())[0]:
        problems.extend(_lint_reader(view, knowledge, replayed))
    else:
        problems.extend(_lint_base(view.search, view.data_scope, base, replayed, knowledge))
    for pipe in after[:-1]:
        name = command_name(pipe)[0] if not pipe.startswith("`") else "macro " + pipe
        if name not in PRESENTATION_COMMANDS:
            problems.append("{!r} sits after the replayed pipes: decisive logic (filtering, joins, thresholds, "
                            "lookups) must be inside the replayed part".format(pipe))
    problems.extend(lint_schedule(view, knowledge))
    return problems


def _lint_base(search: str, data_scope: Tuple[str, ...], base: str, replayed: List[str],
               knowledge: Knowledge) -> List[str]:
    """The rules over a search that reads events: a data-scope macro, no index=, a pure base search, then the
    add-on's escape<verb> commands."""
    problems = []
    first = split_pipes(strip_comments(search).strip())[0]
    if not set(macro_references(first)) & set(data_scope):
        problems.append("the search must start from a data-scope macro ({})".format(", ".join(data_scope)))
    if has_index(expand_macros(search, knowledge.macros, knowledge.external_macros)):
        problems.append("the search names index= (admins set indexes in the data-scope macros)")
    try:
        parse_search_expression(base)
    except SplError as err:
        problems.append("the base search is not one the replay evaluates: {}".format(err))
    for pipe in replayed:
        name = command_name(expand_macros(pipe, knowledge.macros))[0]
        if not (name.startswith("escape") and name in knowledge.commands):
            problems.append("replayed pipe {!r} is not one of the add-on's escape<verb> commands: decisive logic "
                            "must live in the engine, where the replay runs it".format(pipe))
    return problems


def _lint_reader(view: DetectionView, knowledge: Knowledge, replayed: List[str]) -> List[str]:
    """A detection that starts with a leading pipe reads what its companion maintenance search saved: one generating
    escape<verb> command of the add-on, and the producer passes every rule of a search over events, ending with its
    commands (so the replay runs the whole path, and nothing decisive escapes it)."""
    names = [command_name(expand_macros(p, knowledge.macros))[0] for p in replayed]
    problems = []
    if len(names) != 1 or names[0] not in knowledge.generating or not names[0].startswith("escape"):
        problems.append("a search with a leading pipe must read saved results with one generating escape<verb> "
                        "command of the add-on, then its filter macro")
    if not view.producer:
        return problems + ["a detection that reads saved results needs the maintenance search that saves them "
                           "(content/baselines/, companion_of: [{}])".format(view.slug)]
    pipes = split_pipes(strip_comments(view.producer).strip())
    try:
        base, produced, after = replay_plan(view.producer, escape_pipes(view.producer), knowledge.macros,
                                            filtered=False)
    except SplError as err:
        return problems + ["its maintenance search: {}".format(err)]
    if after or len(pipes) < 2:
        problems.append("its maintenance search must end with the add-on's commands (the replay runs all of it)")
    return problems + ["its maintenance search: " + p
                       for p in _lint_base(view.producer, view.data_scope, base, produced, knowledge)]


def lint_schedule(view: DetectionView, knowledge: Knowledge) -> List[str]:
    stanza, problems = view.stanza, []
    if stanza.get("realtime_schedule") != "0":
        problems.append("realtime_schedule must be 0 (a busy scheduler then delays a run instead of skipping it)")
    if stanza.get("alert.digest_mode") != "0":
        problems.append("alert.digest_mode must be 0 (one alert per result)")
    fields = [f.strip() for f in stanza.get("alert.suppress.fields", "").split(",") if f.strip()]
    if stanza.get("alert.suppress") != "1" or not fields:
        problems.append("alerts must be suppressed on the entity: alert.suppress = 1 with alert.suppress.fields")
    for name in fields:
        if not (name.startswith("escape_") or name == "host"):
            problems.append("alert.suppress.fields {!r} is not an entity field (escape_* or host)".format(name))
    try:
        period = cron_period_minutes(stanza.get("cron_schedule", "")) * 60
        earliest = relative_seconds(stanza.get("dispatch.earliest_time", ""))
        latest = relative_seconds(stanza.get("dispatch.latest_time", ""))
    except SplError as err:
        return problems + [str(err)]
    if latest <= 0:
        problems.append("dispatch.latest_time must lag behind now for late data (e.g. -10m@m)")
    window = earliest - latest
    if view.type in ("single", "health") and window != period:
        problems.append("a single-event detection's dispatch window ({} s) must equal its cron period ({} s): "
                        "contiguous windows, no gap, no double alert".format(window, period))
    if view.type == "chain":
        if window < period + view.time_window_seconds:
            problems.append("a chain detection's window ({} s) must overlap the previous run by escape_time_window: "
                            "at least cron period + time window = {} s".format(
                                window, period + view.time_window_seconds))
        if "escape_chain_id" not in fields:
            problems.append("a chain detection suppresses on escape_chain_id (a chain seen by two runs alerts once)")
    periods = [ref for ref in macro_references(view.search) if re.fullmatch(r"escape_\w+_(period|window)", ref)]
    if view.type == "threshold" and not periods:
        problems.append("a threshold counts over a period set in a macro (escape_<what>_period or "
                        "escape_<what>_window), not over whatever the cron happens to be")
    return problems
