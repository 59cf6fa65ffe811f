"""A lint for the add-on's SPL: structure, commands, functions, knowledge objects and project rules.

It is a lint, not a parser: it expands macros, checks quotes / parentheses / brackets, splits on top-level pipes and
checks each command's name (and the function names inside eval, where and stats-like commands) against allow-lists
written from Splunk's public Search Reference plus our own commands.conf. It does not check command options, argument
syntax or types; a real Splunk remains the judge of those (README, "What only a real Splunk confirms").

The same module parses a *pure search-term expression* (sourcetype / source / host / field=value with * wildcards,
quoted or bare terms, AND, OR, NOT, parentheses): the base search the replay evaluates, and what `--set` accepts for
a data-scope macro.
"""
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from escape_engine.ground import filter_macro_name


class LintError(ValueError):
    pass


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


@dataclass
class Macro:
    name: str
    definition: str
    args: Tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return "{}({})".format(self.name, len(self.args)) if self.args else self.name


def macro_table(macros: Sequence[Macro]) -> Dict[str, Macro]:
    return {m.key: m for m in macros}


# ---------------------------------------------------------------- structure
def strip_comments(spl: str) -> str:
    """Remove ``` comments ``` (Splunk 8.1+); an unclosed one is an error."""
    parts = spl.split("```")
    if len(parts) % 2 == 0:
        raise LintError("unclosed ``` comment")
    return "".join(parts[0::2])


def _split_top(text: str, separator: str) -> List[str]:
    """Split on `separator` outside double quotes, parentheses and brackets."""
    parts, current, depth, quoted, i = [], [], 0, False, 0
    while i < len(text):
        char = text[i]
        if quoted and char == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "([":
            depth += 1
        elif not quoted and char in ")]":
            depth -= 1
        if char == separator and not quoted and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def check_balance(spl: str) -> None:
    stack: List[Tuple[str, int]] = []
    quoted_at: Optional[int] = None
    i = 0
    while i < len(spl):
        char = spl[i]
        if quoted_at is not None:
            if char == "\\":
                i += 2
                continue
            if char == '"':
                quoted_at = None
        elif char == '"':
            quoted_at = i
        elif char in "([":
            stack.append((char, i))
        elif char in ")]":
            want = "(" if char == ")" else "["
            if not stack or stack[-1][0] != want:
                raise LintError("unbalanced {!r} at offset {}: {!r}".format(char, i, spl[max(0, i - 30):i + 1]))
            stack.pop()
        i += 1
    if quoted_at is not None:
        raise LintError("unclosed double quote at offset {}: {!r}".format(quoted_at, spl[quoted_at:quoted_at + 40]))
    if stack:
        char, at = stack[-1]
        raise LintError("unclosed {!r} at offset {}: {!r}".format(char, at, spl[at:at + 40]))


def split_pipes(spl: str) -> List[str]:
    """Top-level pipes only: never inside quotes, parentheses or a [subsearch]."""
    return [p.strip() for p in _split_top(spl, "|")]


# ---------------------------------------------------------------- macros
_MACRO_CALL = re.compile(r"\s*([A-Za-z0-9_.-]+)\s*(?:\((.*)\))?\s*", re.DOTALL)


def macro_references(spl: str) -> List[str]:
    """Names (with arity, `name(N)`) of the macros `spl` calls directly."""
    refs = []
    for inner in re.findall(r"`([^`]*)`", strip_comments(spl)):
        match = _MACRO_CALL.fullmatch(inner)
        if not match:
            raise LintError("malformed macro call `{}`".format(inner))
        args = _macro_args(match.group(2)) if match.group(2) is not None else []
        refs.append("{}({})".format(match.group(1), len(args)) if args else match.group(1))
    return refs


def _macro_args(text: str) -> List[str]:
    return [a.strip() for a in _split_top(text, ",")] if text.strip() else []


def expand_macros(spl: str, macros: Mapping[str, Macro], external: Sequence[str] = (), _depth: int = 0) -> str:
    """Expand every `macro` / `macro(a, b)` (arguments replace $name$), recursively; unknown ones are errors."""
    if _depth > 20:
        raise LintError("macro expansion deeper than 20 levels (a macro that calls itself?)")
    spl = strip_comments(spl)
    if spl.count("`") % 2:
        raise LintError("unbalanced backtick: {!r}".format(spl[:80]))

    def substitute(match: "re.Match[str]") -> str:
        call = _MACRO_CALL.fullmatch(match.group(1))
        if not call:
            raise LintError("malformed macro call `{}`".format(match.group(1)))
        args = _macro_args(call.group(2)) if call.group(2) is not None else []
        key = "{}({})".format(call.group(1), len(args)) if args else call.group(1)
        if key not in macros:
            if key in external:
                return match.group(0)
            raise LintError("unknown macro `{}`".format(key))
        macro = macros[key]
        text = macro.definition
        for name, value in zip(macro.args, args):
            text = text.replace("$" + name + "$", value)
        return expand_macros(text, macros, external, _depth + 1)

    return re.sub(r"`([^`]*)`", substitute, spl)


# ---------------------------------------------------------------- pure search-term expressions
Node = Union["Term", "BoolOp"]


@dataclass
class Term:
    field: Optional[str]  # None: a term (or quoted phrase) matched against _raw
    value: str
    quoted: bool


@dataclass
class BoolOp:
    op: str  # AND | OR | NOT
    children: List[Node] = field(default_factory=list)


_TOKEN = re.compile(r'\s*(?:(\()|(\))|([A-Za-z_][A-Za-z0-9_.{}-]*)=(?:"((?:[^"\\]|\\.)*)"|([^\s()"]+))|"((?:[^"\\]|\\.)*)"|([^\s()"=]+))')
_REFUSED_IN_TERMS = re.compile(r"[|`\[\]<>!]|^(?:TERM|CASE)\(", re.IGNORECASE)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_search_expression(text: str) -> Node:
    """Parse a pure search-term expression; raise LintError naming what the replay does not implement.

    Precedence as documented for the search command: parentheses, NOT, OR, then AND (explicit or implied by a space).
    """
    tokens: List[Tuple[str, Union[str, Term]]] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if not match or match.end() == position:
            raise LintError("not a pure search-term expression at {!r}".format(stripped[position:position + 40]))
        position = match.end()
        lpar, rpar, name, qvalue, bvalue, phrase, word = match.groups()
        if lpar or rpar:
            tokens.append((lpar or rpar or "", ""))
        elif name is not None:
            value = _unescape(qvalue) if qvalue is not None else (bvalue or "")
            if qvalue is None and _REFUSED_IN_TERMS.search(value):
                raise LintError("{}={}: only field=value comparisons are supported".format(name, value))
            tokens.append(("term", Term(name, value, qvalue is not None)))
        elif phrase is not None:
            tokens.append(("term", Term(None, _unescape(phrase), True)))
        elif word in ("AND", "OR", "NOT"):
            tokens.append((word, ""))
        else:
            assert word is not None
            if _REFUSED_IN_TERMS.search(word) or stripped[position:position + 1] == "(":
                raise LintError("{!r}: comparisons other than field=value, subsearches, pipes and macros are not "
                                "part of a pure search-term expression".format(word))
            tokens.append(("term", Term(None, word, False)))
    if not tokens:
        raise LintError("empty search expression")
    index = 0

    def peek() -> str:
        return tokens[index][0] if index < len(tokens) else ""

    def parse_and() -> Node:
        nonlocal index
        children = [parse_or()]
        while peek() not in ("", ")"):
            if peek() == "AND":
                index += 1
            children.append(parse_or())
        return children[0] if len(children) == 1 else BoolOp("AND", children)

    def parse_or() -> Node:
        nonlocal index
        children = [parse_not()]
        while peek() == "OR":
            index += 1
            children.append(parse_not())
        return children[0] if len(children) == 1 else BoolOp("OR", children)

    def parse_not() -> Node:
        nonlocal index
        kind = peek()
        if kind == "NOT":
            index += 1
            return BoolOp("NOT", [parse_not()])
        if kind == "(":
            index += 1
            inner = parse_and()
            if peek() != ")":
                raise LintError("missing ')' in {!r}".format(text))
            index += 1
            return inner
        if kind == "term":
            node = tokens[index][1]
            index += 1
            assert isinstance(node, Term)
            return node
        raise LintError("unexpected {!r} in {!r}".format(kind or "end of search", text))

    tree = parse_and()
    if index != len(tokens):
        raise LintError("unexpected {!r} in {!r}".format(tokens[index][0], text))
    return tree


def check_pure_definition(definition: str) -> Node:
    """What `--set` accepts for a data-scope macro: one expression, no pipe, backtick, bracket or newline."""
    for bad, what in (("|", "a pipe"), ("`", "a backtick"), ("[", "a bracket"), ("]", "a bracket"),
                      ("\n", "a newline"), ("\r", "a newline")):
        if bad in definition:
            raise LintError("{!r} contains {}; a data-scope macro must be a pure search-term expression".format(
                definition, what))
    return parse_search_expression(definition)


# ---------------------------------------------------------------- whole searches
@dataclass
class Knowledge:
    """What a search may reference: macros, our commands, lookups and eventtypes."""
    macros: Dict[str, Macro]
    commands: frozenset = frozenset()  # type: ignore[type-arg]
    lookups: frozenset = frozenset()  # type: ignore[type-arg]
    eventtypes: frozenset = frozenset()  # type: ignore[type-arg]
    external_macros: Tuple[str, ...] = ()


def command_name(pipe: str) -> Tuple[str, str]:
    match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*(.*)", pipe, re.DOTALL)
    if not match:
        raise LintError("empty or malformed pipe {!r}".format(pipe[:60]))
    return match.group(1).lower(), match.group(2)


def _outside_quotes(text: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)


def lint_search(spl: str, knowledge: Knowledge, subsearch: bool = False) -> List[str]:
    """Return the list of problems in one search (empty when it passes)."""
    problems: List[str] = []
    try:
        expanded = expand_macros(spl, knowledge.macros, knowledge.external_macros) if not subsearch else spl
        check_balance(expanded)
    except LintError as err:
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
            except LintError as err:
                problems.append(str(err))
                continue
        if name not in BUILTIN_COMMANDS and name not in knowledge.commands:
            problems.append("unknown command {!r}".format(name))
        if leading_pipe and position == 0 and name not in GENERATING_COMMANDS:
            problems.append("{!r} follows a leading pipe but is not a generating command".format(name))
        if position > 0 and name in GENERATING_COMMANDS and name != "search":
            if not (name in GENERATING_ANYWHERE_WITH_APPEND and re.search(r"\bappend\s*=\s*t(rue)?\b", args, re.I)):
                problems.append("generating command {!r} must come first, after a leading pipe".format(name))
        bare = _outside_quotes(args)
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
    return bool(re.search(r"(?<![\w.])index\s*=", _outside_quotes(definition), re.IGNORECASE))


# ---------------------------------------------------------------- scheduling and detection rules (docs/development.md section 1)
def cron_period_minutes(cron: str) -> int:
    """The interval between runs of a regular cron schedule; irregular ones are refused."""
    fields = cron.split()
    if len(fields) != 5:
        raise LintError("cron_schedule {!r} does not have five fields".format(cron))
    minute, hour, day, month, weekday = fields
    if (day, month, weekday) != ("*", "*", "*"):
        raise LintError("cron_schedule {!r}: the lint computes periods only for daily or shorter schedules".format(cron))
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
    raise LintError("cron_schedule {!r} is not a regular schedule the lint understands".format(cron))


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def relative_seconds(text: str) -> int:
    """Seconds before now of a relative time such as -70m@m (the snap is ignored; both ends snap alike)."""
    if text.strip() == "now":
        return 0
    match = re.fullmatch(r"-(\d+)(s|m|h|d)(?:@[smhd])?", text.strip())
    if not match:
        raise LintError("dispatch time {!r} is not of the form -<n><s|m|h|d>[@<unit>]".format(text))
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


def replay_plan(search: str, replay_pipes: int, macros: Mapping[str, Macro]) -> Tuple[str, List[str], List[str]]:
    """Split a detection's search into (expanded base search, replayed pipes, pipes after them, unexpanded)."""
    pipes = split_pipes(strip_comments(search).strip())
    if pipes and pipes[0] == "":
        raise LintError("a detection starts from its data-scope macro, not from a leading pipe")
    base = expand_macros(pipes[0], macros)
    if len(pipes) < 2 + replay_pipes:
        raise LintError("replay_pipes = {} but the search has only {} pipe(s) between its base search and its "
                        "filter macro".format(replay_pipes, max(0, len(pipes) - 2)))
    return base, pipes[1:1 + replay_pipes], pipes[1 + replay_pipes:]


def lint_detection(view: DetectionView, knowledge: Knowledge) -> List[str]:
    problems = ["search: " + p for p in lint_search(view.search, knowledge)]
    filter_call = "`{}`".format(filter_macro_name(view.slug))
    if split_pipes(strip_comments(view.search).strip())[-1] != filter_call:
        problems.append("the search must end with its own filter macro {}".format(filter_call))
    try:
        base, replayed, after = replay_plan(view.search, view.replay_pipes, knowledge.macros)
    except LintError as err:
        return problems + [str(err)]
    first = split_pipes(strip_comments(view.search).strip())[0]
    if not set(macro_references(first)) & set(view.data_scope):
        problems.append("the search must start from a data-scope macro ({})".format(", ".join(view.data_scope)))
    if has_index(expand_macros(view.search, knowledge.macros, knowledge.external_macros)):
        problems.append("the search names index= (admins set indexes in the data-scope macros)")
    try:
        parse_search_expression(base)
    except LintError as err:
        problems.append("the base search is not one the replay evaluates: {}".format(err))
    for pipe in replayed:
        name = command_name(expand_macros(pipe, knowledge.macros))[0]
        if not (name.startswith("escape") and name in knowledge.commands):
            problems.append("replayed pipe {!r} is not one of the add-on's escape<verb> commands: decisive logic "
                            "must live in the engine, where the replay runs it".format(pipe))
    for pipe in after[:-1]:
        name = command_name(pipe)[0] if not pipe.startswith("`") else "macro " + pipe
        if name not in PRESENTATION_COMMANDS:
            problems.append("{!r} sits after the replayed pipes: decisive logic (filtering, joins, thresholds, "
                            "lookups) must be inside the replayed part".format(pipe))
    problems.extend(lint_schedule(view, knowledge))
    return problems


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
    except LintError as err:
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
                            "at least cron period + time window = {} s".format(window, period + view.time_window_seconds))
        if "escape_chain_id" not in fields:
            problems.append("a chain detection suppresses on escape_chain_id (a chain seen by two runs alerts once)")
    if view.type == "threshold":
        if not any(re.fullmatch(r"escape_\w+_(period|window)", ref) for ref in macro_references(view.search)):
            problems.append("a threshold counts over a period set in a macro (escape_<what>_period or "
                            "escape_<what>_window), not over whatever the cron happens to be")
    return problems


# ---------------------------------------------------------------- everything the add-on ships
def knowledge_from(content_dir: Path, app_dir: Path) -> Knowledge:
    """Macros from content/ (as rendered), commands / lookups / eventtypes from the built (or source) app."""
    from tools import conffile, content
    macros = [Macro(stanza_name_of(m), str(m["definition"]), tuple(m.get("args") or ()))
              for m in content.macros(content_dir)]

    def stanzas(name: str) -> List[str]:
        path = app_dir / "default" / name
        return [s for s in conffile.parse(path) if s != "default"] if path.is_file() else []

    lookups = set()
    transforms = app_dir / "default" / "transforms.conf"
    for stanza, keys in (conffile.parse(transforms).items() if transforms.is_file() else []):
        if "filename" in keys and not (app_dir / "lookups" / keys["filename"]).is_file():
            continue  # a lookup without its CSV does not exist for Splunk either
        if "filename" in keys or "collection" in keys or "external_cmd" in keys:
            lookups.add(stanza)
    return Knowledge(macros=macro_table(macros), commands=frozenset(stanzas("commands.conf")),
                     lookups=frozenset(lookups), eventtypes=frozenset(stanzas("eventtypes.conf")))


def stanza_name_of(macro: Mapping[str, object]) -> str:
    return str(macro["name"])


def dashboard_searches(app_dir: Path) -> List[Tuple[str, str]]:
    """(view file, query) for every <query> of the app's Simple XML dashboards; $tokens$ become a placeholder."""
    import xml.etree.ElementTree as ElementTree
    found = []
    for view in sorted((app_dir / "default" / "data" / "ui" / "views").glob("*.xml")):
        for query in ElementTree.parse(str(view)).getroot().iter("query"):
            text = re.sub(r"\$[A-Za-z0-9_.:|-]+\$", "escape_token", query.text or "")
            if text.strip():
                found.append((view.name, text))
    return found


def lint_content(content_dir: Path, app_dir: Path) -> List[str]:
    """Every problem in the add-on's SPL: saved searches (with the project rules), macros and dashboards."""
    from tools import content
    knowledge = knowledge_from(content_dir, app_dir)
    problems: List[str] = []
    scope = tuple(content.data_scope_names(content_dir))
    time_window = int(content.tunable_specs(content_dir)["escape_time_window"].default)
    for macro in content.macros(content_dir):
        name = str(macro["name"])
        definition = str(macro["definition"])
        if has_index(definition):
            problems.append("macro {}: shipped macros never name index=".format(name))
        try:
            expand_macros(definition, knowledge.macros, knowledge.external_macros)
            check_balance(definition)
            if name in scope:
                check_pure_definition(definition)
        except LintError as err:
            problems.append("macro {}: {}".format(name, err))
    for detection in content.detections(content_dir):
        view = DetectionView(detection.slug, detection.type, detection.search, detection.replay_pipes,
                             content.saved_search(detection), scope, time_window)
        problems.extend("{}: {}".format(detection.stanza, p) for p in lint_detection(view, knowledge))
    for maintenance in content.maintenance_searches(content_dir):
        stanza = content.maintenance_stanza(maintenance)
        problems.extend("{}: {}".format(stanza, p) for p in lint_search(str(maintenance["search"]), knowledge))
        if not str(maintenance["search"]).lstrip().startswith("`escape_"):
            problems.append("{}: a maintenance search starts from a data-scope macro".format(stanza))
    for view_name, query in dashboard_searches(app_dir):
        problems.extend("{}: {}".format(view_name, p) for p in lint_search(query, knowledge))
    return problems


if __name__ == "__main__":
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    found = lint_content(root / "content", root / "output" / "TA_escape_to_host")
    for problem in found:
        print(problem, file=sys.stderr)
    print("spllint: {} problem(s)".format(len(found)), file=sys.stderr)
    sys.exit(1 if found else 0)
