"""Each rule of the SPL lint (tools/spllint.py) catches a seeded mistake and passes the correct form."""
from pathlib import Path
from typing import Any, Dict, List

import pytest

from tests.integration.harness.replay_fixture import detection, make_bare_app, make_content
from tools import contentlint, searchterms, spl, spllint
from tools.spl import Macro, SplError, macro_table
from tools.spllint import Knowledge

MACROS = macro_table([
    Macro("escape_auditd", '(sourcetype="linux:audit" OR sourcetype="auditd")'),
    Macro("escape_window", "300"),
    Macro("escape_pair", "host=$a$ OR host=$b$", ("a", "b")),
    Macro("escape_outer", "`escape_pair(x, y)` `escape_auditd`"),
    Macro("escape_loop", "`escape_loop`"),
])
KNOWLEDGE = Knowledge(MACROS, commands=frozenset({"escapeinspect"}), lookups=frozenset({"escape_paths"}),
                      eventtypes=frozenset({"escape_auditd_syscall"}))


def problems(spl: str) -> List[str]:
    return spllint.lint_search(spl, KNOWLEDGE)


def test_a_correct_search_passes() -> None:
    assert problems('`escape_auditd` eventtype=escape_auditd_syscall | escapeinspect allowed="/a,/b" '
                    '| eval x=if(match(_raw, "a|b"), 1, 0) | stats count(eval(x>0)) AS n, perc95(x) by host '
                    '| lookup escape_paths path OUTPUT rating | where n > `escape_window` ``` a comment | here ```') == []


def test_macros_expand_with_arguments_recursively() -> None:
    assert spl.expand_macros("`escape_outer`", MACROS) == \
        'host=x OR host=y (sourcetype="linux:audit" OR sourcetype="auditd")'


@pytest.mark.parametrize("spl, message", [
    ("`escape_nosuch` | stats count", "unknown macro `escape_nosuch`"),
    ("`escape_pair(x)`", "unknown macro `escape_pair(1)`"),
    ("`escape_loop`", "deeper than 20"),
    ("`escape_auditd", "unbalanced backtick"),
])
def test_macro_mistakes(spl: str, message: str) -> None:
    assert any(message in p for p in problems(spl)), problems(spl)


@pytest.mark.parametrize("spl, message", [
    ('search "unclosed | stats count', "unclosed double quote"),
    ("search (a OR b | stats count", "unclosed '('"),
    ("search a) | stats count", "unbalanced ')'"),
    ("search a | append [search b", "unclosed '['"),
    ("search a ``` unclosed comment", "unclosed ``` comment"),
])
def test_unbalanced_structure(spl: str, message: str) -> None:
    assert any(message in p for p in problems(spl)), problems(spl)


def test_pipes_split_only_at_top_level() -> None:
    assert spl.split_pipes('a "x|y" | eval z=if(a,"|",b) | append [search c | head 1] | head 2') == \
        ['a "x|y"', 'eval z=if(a,"|",b)', "append [search c | head 1]", "head 2"]
    assert problems("search a ``` | nosuchcommand ``` | head 1") == []


@pytest.mark.parametrize("spl, message", [
    ("search a | statz count", "unknown command 'statz'"),
    ("search a | escapenosuch", "unknown command 'escapenosuch'"),
    ("search a | append [search b | nosuchsub]", "unknown command 'nosuchsub'"),
])
def test_unknown_commands(spl: str, message: str) -> None:
    assert message in problems(spl)


@pytest.mark.parametrize("spl, message", [
    ("| stats count", "'stats' follows a leading pipe but is not a generating command"),
    ("search a | makeresults", "generating command 'makeresults' must come first"),
    ("search a | inputlookup escape_paths", "generating command 'inputlookup' must come first"),
])
def test_generating_commands_come_first(spl: str, message: str) -> None:
    assert any(message in p for p in problems(spl)), problems(spl)


def test_generating_commands_in_their_place_pass() -> None:
    assert problems("| makeresults count=1 | eval a=1") == []
    assert problems("| inputlookup escape_paths | inputlookup append=t escape_paths") == []
    assert problems("| tstats count where index=* by host") == []


@pytest.mark.parametrize("spl, message", [
    ("search a | eval x=iff(a, 1, 2)", "eval: unknown function iff()"),
    ("search a | where lenght(x) > 1", "where: unknown function lenght()"),
    ("search a | stats cuont(x)", "stats: unknown function cuont()"),
    ("search a | timechart span=1h avgg(x)", "timechart: unknown function avgg()"),
])
def test_unknown_functions(spl: str, message: str) -> None:
    assert message in problems(spl)


@pytest.mark.parametrize("spl, message", [
    ("search a | lookup escape_missing x", "lookup: unknown lookup 'escape_missing'"),
    ("| inputlookup escape_missing", "inputlookup: unknown lookup 'escape_missing'"),
    ("search eventtype=escape_missing", "unknown eventtype 'escape_missing'"),
])
def test_unknown_knowledge_objects(spl: str, message: str) -> None:
    assert message in problems(spl)


def test_pure_search_expressions_parse_with_splunk_precedence() -> None:
    tree = searchterms.parse_search_expression('a b OR c NOT d sourcetype="x y" f=v*')
    assert isinstance(tree, searchterms.BoolOp) and tree.op == "AND"  # OR binds tighter than the implied AND
    assert [type(c).__name__ for c in tree.children] == ["Term", "BoolOp", "BoolOp", "Term", "Term"]
    assert tree.children[1].op == "OR" and tree.children[2].op == "NOT"


@pytest.mark.parametrize("definition, message", [
    ("sourcetype=a | delete", "a pipe"), ("`escape_auditd`", "a backtick"), ("[search a]", "a bracket"),
    ("sourcetype=a\nOR b", "a newline"), ("count>5", "not part of a pure"), ("x!=1", "not part of a pure"),
    ("(a OR b", "missing ')'"), ("a OR", "unexpected 'end of search'"), ("TERM(x)", "not part of a pure"),
])
def test_data_scope_definitions_must_be_pure_expressions(definition: str, message: str) -> None:
    with pytest.raises(SplError, match=message.replace("(", r"\(").replace(")", r"\)")):
        searchterms.check_pure_definition(definition)


def test_index_is_detected_outside_quotes_only() -> None:
    assert spllint.has_index("index=main sourcetype=x") and spllint.has_index("(INDEX = main)")
    assert not spllint.has_index('sourcetype=x "index=main"') and not spllint.has_index("escape_index=1")


# ---------------------------------------------------------------- detection and scheduling rules (whole content)
def lint(tmp_path: Path, *detections: Dict[str, Any], macros: str = "") -> List[str]:
    folder = make_content(tmp_path / "content", *detections)
    if macros:
        (folder / "macros" / "extra.yml").write_text(macros)
    return contentlint.lint_content(folder, make_bare_app(tmp_path / "app"))


def test_the_fixture_detection_passes(tmp_path: Path) -> None:
    assert lint(tmp_path, detection()) == []


SEARCH_TAIL = "\n| `escape_linux_fixture_nsenter_filter`"


@pytest.mark.parametrize("changes, message", [
    ({"search": "`escape_auditd` nsenter\n| escapereplayprobe"}, "must end with its own filter macro"),
    ({"search": "`escape_auditd` nsenter\n| escapereplayprobe" + SEARCH_TAIL + "\n| eval x=1"},
     "must end with its own filter macro"),
    ({"search": "sourcetype=linux:audit nsenter\n| escapereplayprobe" + SEARCH_TAIL}, "must start from a data-scope macro"),
    ({"search": "`escape_auditd` index=main nsenter\n| escapereplayprobe" + SEARCH_TAIL}, "names index="),
    ({"search": "`escape_auditd` nsenter\n| escapereplayprobe\n| stats count by host" + SEARCH_TAIL},
     "'stats count by host' sits after the replayed pipes"),
    ({"search": "`escape_auditd` nsenter\n| escapereplayprobe\n| lookup escape_x a" + SEARCH_TAIL}, "sits after the replayed"),
    ({"search": "`escape_auditd` nsenter\n| escapereplayprobe\n| search host=a" + SEARCH_TAIL}, "sits after the replayed"),
    ({"search": "`escape_auditd` count>5\n| escapereplayprobe" + SEARCH_TAIL}, "not one the replay evaluates"),
    ({"schedule": {"cron": "7 * * * *", "earliest": "-60m@m", "latest": "now"}}, "must lag behind now"),
    ({"schedule": {"cron": "7 * * * *", "earliest": "-80m@m", "latest": "-10m@m"}}, "must equal its cron period"),
    ({"schedule": {"cron": "7 1,5 * * *", "earliest": "-80m@m", "latest": "-10m@m"}}, "not a regular schedule"),
    ({"suppress": {"fields": ["count"], "period": "1h"}}, "'count' is not an entity field"),
    ({"type": "chain"}, "must overlap the previous run by escape_time_window"),
    ({"type": "chain", "schedule": {"cron": "*/15 * * * *", "earliest": "-30m@m", "latest": "-10m@m"}},
     "suppresses on escape_chain_id"),
    ({"type": "threshold"}, "counts over a period set in a macro"),
])
def test_detection_rules_catch_seeded_mistakes(tmp_path: Path, changes: Dict[str, Any], message: str) -> None:
    found = lint(tmp_path, detection(**changes))
    assert any(message in p for p in found), found


def test_chain_and_threshold_detections_in_the_right_shape_pass(tmp_path: Path) -> None:
    chain = detection(slug="linux_fixture_chain", title="Fixture Chain", type="chain",
                      search="`escape_auditd` nsenter\n| escapereplayprobe\n| `escape_linux_fixture_chain_filter`",
                      schedule={"cron": "*/15 * * * *", "earliest": "-30m@m", "latest": "-10m@m"},
                      suppress={"fields": ["escape_chain_id"], "period": "1h"})
    threshold = detection(slug="linux_fixture_threshold", title="Fixture Threshold", type="threshold",
                          search="`escape_auditd` nsenter\n| escapereplayprobe severity=`escape_fixture_period`\n"
                                 "| `escape_linux_fixture_threshold_filter`")
    extra = "macros:\n  - {name: escape_fixture_period, definition: '3600', description: Counting period.}\n"
    assert lint(tmp_path, chain, threshold, macros=extra) == []


def test_shipped_macros_never_name_an_index_and_scope_macros_are_pure(tmp_path: Path) -> None:
    extra = ("macros:\n  - {name: escape_bad_scope, definition: 'index=main sourcetype=x', description: d}\n")
    assert any("escape_bad_scope: shipped macros never name index=" in p for p in lint(tmp_path / "a", macros=extra))
    folder = make_content(tmp_path / "b" / "content")
    scope = folder / "macros" / "data_scope.yml"
    scope.write_text(scope.read_text().replace('definition: sourcetype="sysmon:linux"',
                                               'definition: sourcetype="sysmon:linux" | head 1'))
    found = contentlint.lint_content(folder, make_bare_app(tmp_path / "b" / "app"))
    assert any("escape_sysmon_linux" in p and "a pipe" in p for p in found), found


def test_dashboard_searches_are_linted(tmp_path: Path) -> None:
    app = make_bare_app(tmp_path / "app")
    views = app / "default" / "data" / "ui" / "views"
    views.mkdir(parents=True)
    (views / "escape_overview.xml").write_text(
        "<dashboard><row><panel><table><search><query>`escape_auditd` host=$host$ | statz count</query>"
        "</search></table></panel></row></dashboard>")
    found = contentlint.lint_content(make_content(tmp_path / "content"), app)
    assert found == ["escape_overview.xml: unknown command 'statz'"]


def test_cron_periods_and_relative_times() -> None:
    assert [spllint.cron_period_minutes(c) for c in ("7 * * * *", "*/15 * * * *", "3,33 * * * *", "5 */4 * * *",
                                                      "0 2 * * *")] == [60, 15, 30, 240, 1440]
    assert spllint.relative_seconds("-70m@m") == 4200 and spllint.relative_seconds("-1d@d") == 86400
    with pytest.raises(SplError):
        spllint.relative_seconds("@d")
