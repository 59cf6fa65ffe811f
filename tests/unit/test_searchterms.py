"""tools/searchterms.py: the one parser and evaluator of pure search-term expressions, shared by the replay (base
search, filter hook, --set), the SPL lint and the search-time evaluator's eventtypes, each with its refusals."""
from pathlib import Path
from typing import Dict

import pytest

from tools import searchterms
from tools.searchterms import BoolOp, Refusals, Term, matches, parse_search_expression
from tools.searchtime import EVENTTYPE_REFUSALS, SearchTimeKnowledge, Unsupported
from tools.spl import SplError


def event(raw: str, **fields: str) -> Dict[str, str]:
    return dict(fields, _raw=raw, sourcetype=fields.get("sourcetype", "st"))


def test_terms_match_whole_segments_between_breakers_case_insensitively() -> None:
    tree = parse_search_expression("nsenter")
    assert matches(tree, event("exe=/usr/bin/NSENTER -t 1"))
    assert matches(tree, event("comm=\"nsenter_wrapper\""))  # _ is a minor breaker
    assert not matches(tree, event("comm=nsenterx"))
    assert matches(parse_search_expression('"dry run"'), event("a dry run here"))
    assert matches(parse_search_expression("run*"), event("x runc y"))


def test_field_values_match_whole_values_with_wildcards() -> None:
    tree = parse_search_expression('sourcetype="vmware:esxlog:*" verb=create')
    assert matches(tree, event("", sourcetype="vmware:esxlog:hostd", verb="CREATE"))
    assert not matches(tree, event("", sourcetype="vmware:esxlog:hostd", verb="created"))
    assert not matches(tree, event("", sourcetype="vmw-syslog", verb="create"))
    assert matches(parse_search_expression("index=anything"), event("x"))  # every replayed event is in scope
    assert matches(parse_search_expression("tag=a"), {"_raw": "", "tag": ["b", "a"]})  # multivalue: any value


def test_precedence_is_not_then_or_then_and() -> None:
    tree = parse_search_expression("a OR b c NOT d")
    assert isinstance(tree, BoolOp) and tree.op == "AND"
    assert [c.op if isinstance(c, BoolOp) else c.value for c in tree.children] == ["OR", "c", "NOT"]
    assert searchterms.fields_used(tree) == {"_raw"}
    assert searchterms.fields_used(parse_search_expression("host=h (x OR verb=v)")) == {"host", "_raw", "verb"}


@pytest.mark.parametrize("text, message", [
    ("a | stats count", "pipes"), ("`macro`", "macros"), ("[search a]", "subsearches"), ("count>5", "not part"),
    ("x!=1", "not part"), ("TERM(x)", "not part"), ("(a", "missing ')'"), ("", "empty search expression"),
])
def test_what_no_caller_evaluates_is_refused(text: str, message: str) -> None:
    with pytest.raises(SplError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_search_expression(text)


def test_a_caller_adds_its_own_refusals() -> None:
    assert isinstance(parse_search_expression("eventtype=x IN"), BoolOp)  # the replay may read these
    with pytest.raises(SplError, match="eventtype= is not implemented"):
        parse_search_expression("eventtype=x", EVENTTYPE_REFUSALS)
    with pytest.raises(SplError, match="'IN' is not implemented"):
        parse_search_expression("x IN", EVENTTYPE_REFUSALS)
    assert parse_search_expression('"IN"', Refusals(words=frozenset({"IN"}))) == Term(None, "IN", True)


def test_eventtype_searches_are_read_by_the_one_parser(tmp_path: Path) -> None:
    default = tmp_path / "default"
    default.mkdir()
    (default / "props.conf").write_text("[st]\nKV_MODE = none\n")
    (default / "eventtypes.conf").write_text('[escape_x]\nsearch = sourcetype="st" (verb=create OR nsenter)\n'
                                             '[escape_y]\nsearch = sourcetype=st code>5\n')
    with pytest.raises(Unsupported, match=r"eventtypes.conf \[escape_y\] search: not implemented: 'code>5'"):
        SearchTimeKnowledge.from_app(tmp_path)
    (default / "eventtypes.conf").write_text('[escape_x]\nsearch = sourcetype="st" (verb=create OR nsenter)\n')
    app = SearchTimeKnowledge.from_app(tmp_path)
    assert app.eventtype_searches["escape_x"] == parse_search_expression('sourcetype="st" (verb=create OR nsenter)')
    assert app.eventtypes(event("exec nsenter -t 1")) == ["escape_x"]
