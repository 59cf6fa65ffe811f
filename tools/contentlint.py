"""The SPL lint over everything the add-on ships: the rendered saved searches with the project rules, the macros
and the dashboards' queries (tests/unit/test_detections_content.py, tests/unit/test_dashboards.py).

    .venv/bin/python -m tools.contentlint     after ./build.sh; exit 1 and one line per problem on stderr

It sits above the content model (it reads content/ through tools/content.py) and uses the lint (tools/spllint.py)
and the search-term parser (tools/searchterms.py) below it.
"""
import re
import sys
from pathlib import Path
from typing import List, Mapping, Set, Tuple
from xml.etree import ElementTree

from tools import commands, conffile, content
from tools.searchterms import check_pure_definition
from tools.spl import (
    Macro,
    SplError,
    check_balance,
    expand_macros,
    macro_references,
    macro_table,
    split_pipes,
    strip_comments,
)
from tools.spllint import DetectionView, Knowledge, has_index, lint_detection, lint_search


def knowledge_from(content_dir: Path, app_dir: Path) -> Knowledge:
    """Macros from content/ (as rendered), commands / lookups / eventtypes from the built (or source) app."""
    macros = [Macro(stanza_name_of(m), str(m["definition"]), tuple(m.get("args") or ()))
              for m in content.macros(content_dir)]

    def stanzas(name: str) -> List[str]:
        path = app_dir / "default" / name
        return [s for s in conffile.parse(path) if s != "default"] if path.is_file() else []

    lookups: Set[str] = set()
    transforms = app_dir / "default" / "transforms.conf"
    for stanza, keys in (conffile.parse(transforms).items() if transforms.is_file() else []):
        if "filename" in keys and not (app_dir / "lookups" / keys["filename"]).is_file():
            continue  # a lookup without its CSV does not exist for Splunk either
        if "filename" in keys or "collection" in keys or "external_cmd" in keys:
            lookups.add(stanza)
    return Knowledge(macros=macro_table(macros), commands=frozenset(stanzas("commands.conf")),
                     lookups=frozenset(lookups), eventtypes=frozenset(stanzas("eventtypes.conf")),
                     generating=frozenset(c.name for c in commands.commands() if c.generating))


def stanza_name_of(macro: Mapping[str, object]) -> str:
    return str(macro["name"])


def dashboard_searches(app_dir: Path) -> List[Tuple[str, str]]:
    """(view file, query) for every <query> of the app's Simple XML dashboards; $tokens$ become a placeholder."""
    found = []
    for view in sorted((app_dir / "default" / "data" / "ui" / "views").glob("*.xml")):
        for query in ElementTree.parse(str(view)).getroot().iter("query"):
            text = re.sub(r"\$[A-Za-z0-9_.:|-]+\$", "escape_token", query.text or "")
            if text.strip():
                found.append((view.name, text))
    return found


def lint_content(content_dir: Path, app_dir: Path) -> List[str]:
    """Every problem in the add-on's SPL: saved searches (with the project rules), macros and dashboards."""
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
        except SplError as err:
            problems.append("macro {}: {}".format(name, err))
    for detection in content.detections(content_dir):
        view = DetectionView(detection.slug, detection.type, detection.search, detection.replay_pipes,
                             content.saved_search(detection), scope, time_window,
                             content.producer_search(detection, content_dir))
        problems.extend("{}: {}".format(detection.stanza, p) for p in lint_detection(view, knowledge))
    maintenance_slugs = {m.slug for m in content.maintenance_searches(content_dir)}
    for maintenance in content.maintenance_searches(content_dir):
        stanza = content.maintenance_stanza(maintenance)
        if maintenance.feeds and maintenance.feeds not in maintenance_slugs:
            problems.append("{}: feeds {!r} is no maintenance search".format(stanza, maintenance.feeds))
        problems.extend("{}: {}".format(stanza, p) for p in lint_search(str(maintenance["search"]), knowledge))
        first = split_pipes(strip_comments(str(maintenance["search"])).strip())[0]
        if not set(macro_references(first)) & set(scope):
            problems.append("{}: a maintenance search starts from a data-scope macro".format(stanza))
    for view_name, query in dashboard_searches(app_dir):
        problems.extend("{}: {}".format(view_name, p) for p in lint_search(query, knowledge))
    return problems


def main() -> int:
    found = lint_content(content.CONTENT, content.ROOT / "output" / "TA_escape_to_host")
    for problem in found:
        print(problem, file=sys.stderr)
    print("spllint: {} problem(s)".format(len(found)), file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
