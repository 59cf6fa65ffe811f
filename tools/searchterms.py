"""The one parser and evaluator of *pure search-term expressions*: sourcetype / source / host / field=value with *
wildcards, quoted or bare terms, AND, OR, NOT and parentheses.

Three callers read search terms through it, each with the refusals it needs:
- the replay: a detection's base search (macros expanded), the filter hook `search <terms>`, and what `--set`
  accepts for a data-scope or filter macro (check_pure_definition);
- the SPL lint: a base search must be one the replay evaluates;
- the search-time evaluator (tools/searchtime.py): eventtype searches, which may not name the fields that
  eventtypes themselves make (eventtype, tag) or that are no event fields (index, earliest, latest).

Anything else (comparisons other than `=`, subsearches, pipes, macros, TERM() / CASE()) raises SplError naming it.
Matching is case-insensitive like Splunk's: a bare term or phrase matches whole segments of _raw between Splunk's
major and minor breakers; field=value matches a whole value, `*` matching anything.
"""
import re
from dataclasses import dataclass, field
from typing import FrozenSet, List, Mapping, Set, Tuple, Union

from escape_engine.ground import Value
from tools.spl import SplError

Node = Union["Term", "BoolOp"]


@dataclass
class Term:
    field: Union[str, None]  # None: a term (or quoted phrase) matched against _raw
    value: str
    quoted: bool


@dataclass
class BoolOp:
    op: str  # AND | OR | NOT
    children: List[Node] = field(default_factory=list)


@dataclass(frozen=True)
class Refusals:
    """What one caller refuses beyond what no caller evaluates: field names, and bare (unquoted) words."""
    fields: FrozenSet[str] = frozenset()
    words: FrozenSet[str] = frozenset()


NO_REFUSALS = Refusals()

_TOKEN = re.compile(r'\s*(?:(\()|(\))'                                                # parentheses
                    r'|([A-Za-z_][A-Za-z0-9_.{}-]*)=(?:"((?:[^"\\]|\\.)*)"|([^\s()"]+))'  # field="value" | field=value
                    r'|"((?:[^"\\]|\\.)*)"'                                             # "a phrase"
                    r'|([^\s()"=]+))')                                                  # a bare word
_REFUSED_IN_TERMS = re.compile(r"[|`\[\]<>!]|^(?:TERM|CASE)\(", re.IGNORECASE)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _tokens(text: str, refusals: Refusals) -> List[Tuple[str, Union[str, Term]]]:
    tokens: List[Tuple[str, Union[str, Term]]] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if not match or match.end() == position:
            raise SplError("not a pure search-term expression at {!r}".format(stripped[position:position + 40]))
        position = match.end()
        lpar, rpar, name, qvalue, bvalue, phrase, word = match.groups()
        if lpar or rpar:
            tokens.append((lpar or rpar or "", ""))
        elif name is not None:
            value = _unescape(qvalue) if qvalue is not None else (bvalue or "")
            if qvalue is None and _REFUSED_IN_TERMS.search(value):
                raise SplError("{}={}: only field=value comparisons are supported".format(name, value))
            if name in refusals.fields:
                raise SplError("{}= is not implemented here".format(name))
            tokens.append(("term", Term(name, value, qvalue is not None)))
        elif phrase is not None:
            tokens.append(("term", Term(None, _unescape(phrase), True)))
        elif word in ("AND", "OR", "NOT"):
            tokens.append((word, ""))
        else:
            assert word is not None
            if _REFUSED_IN_TERMS.search(word) or stripped[position:position + 1] == "(":
                raise SplError("{!r}: comparisons other than field=value, subsearches, pipes and macros are not "
                               "part of a pure search-term expression".format(word))
            if word.upper() in refusals.words:
                raise SplError("{!r} is not implemented here".format(word))
            tokens.append(("term", Term(None, word, False)))
    return tokens


def parse_search_expression(text: str, refusals: Refusals = NO_REFUSALS) -> Node:
    """Parse a pure search-term expression; raise SplError naming what is not implemented.

    Precedence as documented for the search command: parentheses, NOT, OR, then AND (explicit or implied by a space).
    """
    tokens = _tokens(text, refusals)
    if not tokens:
        raise SplError("empty search expression")
    index = 0

    def peek() -> str:
        return str(tokens[index][0]) if index < len(tokens) else ""

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
                raise SplError("missing ')' in {!r}".format(text))
            index += 1
            return inner
        if kind == "term":
            node = tokens[index][1]
            index += 1
            assert isinstance(node, Term)
            return node
        raise SplError("unexpected {!r} in {!r}".format(kind or "end of search", text))

    tree = parse_and()
    if index != len(tokens):
        raise SplError("unexpected {!r} in {!r}".format(tokens[index][0], text))
    return tree


def check_pure_definition(definition: str) -> Node:
    """What `--set` accepts for a data-scope macro: one expression, no pipe, backtick, bracket or newline."""
    for bad, what in (("|", "a pipe"), ("`", "a backtick"), ("[", "a bracket"), ("]", "a bracket"),
                      ("\n", "a newline"), ("\r", "a newline")):
        if bad in definition:
            raise SplError("{!r} contains {}; a data-scope macro must be a pure search-term expression".format(
                definition, what))
    return parse_search_expression(definition)


# ---------------------------------------------------------------- evaluation
# Splunk's major and minor breakers (segmenters.conf): a bare term matches whole segments of _raw between them.
BREAKERS = r"\s\[\]<>(){}|!;,'\"*&?+=/:@.\-$#%\\_"
DEFAULT_FIELDS = frozenset({"_raw", "_time", "_cd", "index", "sourcetype", "source", "host"})


def wildcard(value: str, bounded: bool) -> "re.Pattern[str]":
    """A search value with `*` wildcards as a case-insensitive pattern: bounded by breakers for a term in _raw
    (use .search), or a whole field value (use .match)."""
    body = ".*".join(re.escape(part) for part in value.split("*"))
    if bounded:  # a term matches whole segments of _raw (Splunk's major and minor breakers)
        body = r"(?:^|(?<=[{0}])){1}(?=$|[{0}])".format(BREAKERS, body)
        return re.compile(body, re.IGNORECASE | re.DOTALL)
    return re.compile(body + r"\Z", re.IGNORECASE | re.DOTALL)


def fields_used(node: Node) -> Set[str]:
    """The fields an expression reads (_raw for bare terms)."""
    if isinstance(node, BoolOp):
        return set().union(*(fields_used(child) for child in node.children))
    return {node.field or "_raw"}


def matches(node: Node, event: Mapping[str, Value]) -> bool:
    """Evaluate a parsed expression on one event, case-insensitively like Splunk. `index=` always holds: every
    event the tools read is in scope, whatever index a data-scope macro names."""
    if isinstance(node, BoolOp):
        if node.op == "NOT":
            return not matches(node.children[0], event)
        results = (matches(child, event) for child in node.children)
        return all(results) if node.op == "AND" else any(results)
    if node.field is None:
        raw = event.get("_raw", "")
        return bool(wildcard(node.value, True).search(raw if isinstance(raw, str) else "\n".join(raw)))
    if node.field == "index":
        return True
    value = event.get(node.field)
    if value is None:
        return False
    pattern = wildcard(node.value, False)
    return any(pattern.match(v) for v in ([value] if isinstance(value, str) else value))
