"""The setup page's template (UCC 6.6.0's appserver/templates/base.html) holds no Mako code, which Splunk 10.4
deprecates: only the file's location is still flagged, as an AppInspect warning (README, "AppInspect warnings that
remain"). This fails when a UCC update brings Mako back or AppInspect raises the finding to a (future) failure."""
import re
from pathlib import Path

from tests.conftest import ROOT
from tools import appinspect_summary

MAKO = re.compile(r"<%|%>|\$\{|^\s*%\s*(?:if|for|endif|endfor)\b", re.MULTILINE)


def test_the_template_has_no_mako_code(built_app: Path) -> None:
    templates = list((built_app / "appserver" / "templates").glob("*"))
    assert [t.name for t in templates] == ["base.html"]
    assert not MAKO.search(templates[0].read_text())
    view = (built_app / "default" / "data" / "ui" / "views" / "configuration.xml").read_text()
    assert 'template="TA_escape_to_host:/templates/base.html"' in view


def test_appinspect_reports_the_template_location_as_a_warning_only(package_tarball: Path) -> None:
    by_result = appinspect_summary.findings(str(ROOT / "dist" / "appinspect.json"))
    results = {name: result for result, names in by_result.items() for name in names}
    assert results["check_for_custom_mako_templates"] in ("warning", "success")
    assert results["check_for_existence_of_python_code_block_in_mako_template"] == "success"
