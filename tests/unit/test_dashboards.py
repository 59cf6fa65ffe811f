"""The Simple XML dashboards (package/default/data/ui/views/*.xml): every element and attribute is one Splunk documents
for Simple XML (Splunk "Simple XML Reference", dashboards version 1.1), every token a query uses is set by an input,
every <query> passes tools/spllint.py after macro expansion, and every eventtype, lookup and macro it names exists."""
import re
from pathlib import Path
from typing import Dict, List
from xml.etree import ElementTree

import pytest

from tests.conftest import ROOT
from tools import content, contentlint, spllint

VIEWS = ROOT / "package" / "default" / "data" / "ui" / "views"
DASHBOARDS = tuple(sorted(p.name for p in VIEWS.glob("*.xml")))

_VISUAL_CHILDREN = frozenset({"title", "search", "option", "drilldown", "format", "fields", "selection"})
_VISUAL_ATTRS = frozenset({"id", "depends", "rejects"})
_TEXT = frozenset()  # type: FrozenSet[str]

# element -> (allowed attributes, allowed child elements), from the Simple XML Reference. Only what the reference
# documents for dashboards; Splunk-internal or Dashboard Studio elements are refused.
SCHEMA: Dict[str, tuple] = {
    "dashboard": (frozenset({"version", "theme", "script", "stylesheet", "hideAppBar", "hideChrome", "hideEdit",
                             "hideExport", "hideFilters", "hideSplunkBar", "hideTitle", "isDashboard", "isVisible",
                             "onunloadCancelJobs", "refresh"}),
                  frozenset({"label", "description", "fieldset", "row", "search", "init"})),
    "label": (_TEXT, _TEXT),
    "description": (_TEXT, _TEXT),
    "title": (_TEXT, _TEXT),
    "fieldset": (frozenset({"submitButton", "autoRun"}), frozenset({"input", "html"})),
    "input": (frozenset({"type", "token", "searchWhenChanged", "id", "depends", "rejects"}),
              frozenset({"label", "default", "initialValue", "choice", "search", "fieldForLabel", "fieldForValue",
                         "prefix", "suffix", "valuePrefix", "valueSuffix", "delimiter", "change",
                         "selectFirstChoice", "allowCustomValues", "showClearButton"})),
    "default": (_TEXT, frozenset({"earliest", "latest"})),
    "initialValue": (_TEXT, frozenset({"earliest", "latest"})),
    "choice": (frozenset({"value"}), _TEXT),
    "row": (frozenset({"id", "depends", "rejects"}),
            frozenset({"panel", "html", "chart", "table", "single", "event", "map", "viz"})),
    "panel": (frozenset({"id", "ref", "depends", "rejects"}),
              frozenset({"title", "description", "input", "chart", "table", "single", "event", "map", "viz",
                         "html", "search"})),
    "chart": (_VISUAL_ATTRS, _VISUAL_CHILDREN),
    "table": (_VISUAL_ATTRS, _VISUAL_CHILDREN),
    "single": (_VISUAL_ATTRS, _VISUAL_CHILDREN),
    "event": (_VISUAL_ATTRS, _VISUAL_CHILDREN),
    "search": (frozenset({"id", "base", "ref", "depends", "rejects"}),
               frozenset({"query", "earliest", "latest", "refresh", "refreshType", "sampleRatio", "done",
                          "progress", "cancelled", "error", "fail", "finalized"})),
    "query": (_TEXT, _TEXT),
    "earliest": (_TEXT, _TEXT),
    "latest": (_TEXT, _TEXT),
    "option": (frozenset({"name"}), _TEXT),
    "drilldown": (frozenset({"target"}), frozenset({"link", "set", "unset", "condition", "eval"})),
    "link": (frozenset({"target", "field"}), _TEXT),
}
INPUT_TYPES = frozenset({"time", "dropdown", "radio", "multiselect", "text", "checkbox", "link"})
VISUALS = frozenset({"chart", "table", "single", "event", "map", "viz"})
# Tokens Splunk sets itself: drilldown row/click values, and the search job's own tokens.
BUILTIN_TOKEN_PREFIXES = ("row.", "click.", "result.", "job.", "env:")


def check_view(path: Path) -> List[str]:
    """Every problem with one Simple XML view (empty when it is valid)."""
    try:
        root = ElementTree.parse(str(path)).getroot()
    except ElementTree.ParseError as err:
        return ["not well-formed XML: {}".format(err)]
    problems: List[str] = []
    if root.tag != "dashboard":
        problems.append("root element is <{}>, not <dashboard> (forms are not used here)".format(root.tag))
    if root.get("version") != "1.1":
        problems.append('<dashboard> must say version="1.1" (jQuery 3.5 dashboards)')
    if root.find("label") is None or not (root.findtext("label") or "").strip():
        problems.append("<dashboard> has no <label>")
    tokens = set()
    for element in root.iter("input"):
        if element.get("type") not in INPUT_TYPES:
            problems.append("<input type={!r}> is not a documented input type".format(element.get("type")))
        if element.get("token"):
            tokens.add(element.get("token"))
    for element in root.iter():
        if element.tag not in SCHEMA:
            problems.append("<{}> is not a Simple XML element this validator knows".format(element.tag))
            continue
        attrs, children = SCHEMA[element.tag]
        for attribute in element.attrib:
            if attribute not in attrs:
                problems.append("<{}> has undocumented attribute {!r}".format(element.tag, attribute))
        for child in element:
            if child.tag not in children:
                problems.append("<{}> may not contain <{}>".format(element.tag, child.tag))
        if element.tag == "option" and not element.get("name"):
            problems.append("<option> without name")
        if element.tag in VISUALS and element.find("search") is None:
            problems.append("<{}> has no <search>".format(element.tag))
        if element.tag == "search" and element.get("base") is None and element.get("ref") is None \
                and not (element.findtext("query") or "").strip():
            problems.append("<search> without a <query>")
    for element in root.iter():
        if element.tag not in ("query", "earliest", "latest", "link"):
            continue
        text = (element.text or "").replace("$$", "")
        for token in re.findall(r"\$([^$\s]+)\$", text):
            name = token.split("|")[0]
            if name.startswith(BUILTIN_TOKEN_PREFIXES):
                if element.tag != "link":
                    problems.append("<{}> uses drilldown token ${}$ outside a drilldown".format(element.tag, token))
                continue
            if name.split(".")[0] not in tokens:
                problems.append("<{}> uses token ${}$ that no input sets".format(element.tag, token))
    return problems


def queries(path: Path) -> List[str]:
    root = ElementTree.parse(str(path)).getroot()
    return [(q.text or "") for q in root.iter("query")]


KNOWLEDGE = contentlint.knowledge_from(content.CONTENT, ROOT / "package")


@pytest.mark.parametrize("name", DASHBOARDS)
def test_dashboard_uses_only_documented_simple_xml(name: str) -> None:
    assert check_view(VIEWS / name) == []


@pytest.mark.parametrize("name", DASHBOARDS)
def test_every_dashboard_query_passes_the_spl_lint(name: str) -> None:
    found = [q for view, q in contentlint.dashboard_searches(ROOT / "package") if view == name]
    assert len(found) == len(queries(VIEWS / name)) >= 3
    problems = [p for q in found for p in spllint.lint_search(q, KNOWLEDGE)]
    assert problems == []


@pytest.mark.parametrize("name", DASHBOARDS)
def test_every_eventtype_and_macro_a_dashboard_names_exists(name: str) -> None:
    for query in queries(VIEWS / name):
        # eventtypes tested with mvfind(eventtype, "^name$"), which the lint's eventtype=name check does not see
        for eventtype in re.findall(r'mvfind\(eventtype,\s*"\^([A-Za-z0-9_]+)\$"\)', query):
            assert eventtype in KNOWLEDGE.eventtypes, eventtype
        for macro in re.findall(r"`([A-Za-z0-9_]+)`", query):
            assert macro in KNOWLEDGE.macros, macro
        for quoted in re.findall(r'title(?:=| IN \()"?(escape_[a-z_]+)', query):
            assert quoted in KNOWLEDGE.macros, quoted


def test_data_health_covers_every_data_scope_macro() -> None:
    text = (VIEWS / "escape_data_health.xml").read_text(encoding="utf-8")
    for scope in content.data_scope_names():
        if scope == "escape_kube_cluster":
            continue
        assert "where index=* `{}`".format(scope) in text, scope


def test_overview_maps_every_detection_to_its_analytic() -> None:
    query = queries(VIEWS / "escape_overview.xml")[0]
    mapping = {}
    for names, analytic in re.findall(r'in\(ss_name, ((?:"[^"]+"(?:, )?)+)\), "(\w+)"', query):
        for name in re.findall(r'"([^"]+)"', names):
            mapping[name] = analytic
    assert mapping == {d.stanza: d.analytic for d in content.detections()}
    # every copy of the mapping in the view is the same
    for other in queries(VIEWS / "escape_overview.xml"):
        if "ss_name" in other and "case(in(ss_name" in other:
            assert other.split("\n")[1] == query.split("\n")[1]


def test_loadjob_panels_load_each_alert_job_once() -> None:
    """Per-result alerting (alert.digest_mode = 0) fires one alert per result row, every one with the job's sid: a map
    over fired alerts without dedup loads a job of n rows n times and counts each row n times."""
    for name in DASHBOARDS:
        for query in queries(VIEWS / name):
            if "loadjob" not in query:
                continue
            pipes = [p.strip().split(" ")[0] + (" " + p.strip().split(" ")[1] if p.strip().startswith("dedup") else "")
                     for p in query.split("\n| ")]
            assert "dedup sid" in pipes, "{}: a loadjob panel without | dedup sid".format(name)
            assert pipes.index("dedup sid") < pipes.index("head") < pipes.index("map"), name


def test_validator_refuses_unknown_elements_attributes_and_tokens(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text('<dashboard version="1.1" colour="red"><label>x</label><row><panel><table>'
                   '<search><query>`escape_auditd` host=$missing$</query></search><widget/></table>'
                   '</panel></row><row><panel><chart><option>x</option></chart></panel></row></dashboard>')
    problems = check_view(bad)
    assert any("undocumented attribute 'colour'" in p for p in problems)
    assert any("<widget>" in p for p in problems)
    assert any("$missing$" in p for p in problems)
    assert any("<chart> has no <search>" in p for p in problems)
    assert any("<option> without name" in p for p in problems)
    (tmp_path / "old.xml").write_text("<form><label>x</label></form>")
    assert any('version="1.1"' in p for p in check_view(tmp_path / "old.xml"))

