"""The setup page's template (UCC 6.6.0's appserver/templates/base.html) holds no Mako code, which Splunk 10.4
deprecates: only the file's location is still flagged, as an AppInspect warning (README, "AppInspect warnings that
remain"). This fails when a UCC update brings Mako back or AppInspect raises the finding to a (future) failure."""
import json
import re
from pathlib import Path
from typing import Any, Iterator

from tests.conftest import ROOT

MAKO = re.compile(r"<%|%>|\$\{|^\s*%\s*(?:if|for|endif|endfor)\b", re.MULTILINE)


def _checks(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        if "name" in node and "result" in node:
            yield node
        for value in node.values():
            yield from _checks(value)
    elif isinstance(node, list):
        for value in node:
            yield from _checks(value)


def test_the_template_has_no_mako_code(built_app: Path) -> None:
    templates = list((built_app / "appserver" / "templates").glob("*"))
    assert [t.name for t in templates] == ["base.html"]
    assert not MAKO.search(templates[0].read_text())
    view = (built_app / "default" / "data" / "ui" / "views" / "configuration.xml").read_text()
    assert 'template="TA_escape_to_host:/templates/base.html"' in view


def test_appinspect_reports_the_template_location_as_a_warning_only(package_tarball: Path) -> None:
    report = json.loads((ROOT / "dist" / "appinspect.json").read_text())
    results = {c["name"]: c["result"] for c in _checks(report)}
    assert results["check_for_custom_mako_templates"] in ("warning", "success")
    assert results["check_for_existence_of_python_code_block_in_mako_template"] == "success"
