"""The built app ships our dashboards beside UCC's generated configuration view, and its navigation lists them.

The navigation is ours (package/default/data/ui/nav/default.xml): ucc-gen generates data/ui/nav/default.xml only when
package/ has none ("Skipping generating data/ui/nav/default.xml because file already exists"), and its own lists only
the configuration page and Search. Ours keeps those two, first and last, and adds every dashboard in between.
"""
from pathlib import Path
from xml.etree import ElementTree

from tests.conftest import ROOT

VIEWS = ROOT / "package" / "default" / "data" / "ui" / "views"
DASHBOARDS = tuple(sorted(p.name for p in VIEWS.glob("*.xml")))
SPLUNK_VIEWS = ("search",)  # Splunk's own views the navigation may name


def test_built_app_keeps_ucc_configuration_view_and_adds_our_dashboards(built_app: Path) -> None:
    views = built_app / "default" / "data" / "ui" / "views"
    assert (views / "configuration.xml").is_file()  # UCC's, not replaced
    assert len(DASHBOARDS) >= 3
    for name in DASHBOARDS:
        assert (views / name).read_bytes() == (VIEWS / name).read_bytes()


def test_navigation_lists_the_setup_page_every_dashboard_and_search(built_app: Path) -> None:
    nav_file = built_app / "default" / "data" / "ui" / "nav" / "default.xml"
    assert nav_file.read_bytes() == (ROOT / "package" / "default" / "data" / "ui" / "nav" / "default.xml").read_bytes()
    nav = ElementTree.parse(str(nav_file)).getroot()
    top = [(e.tag, e.get("name") or e.get("label")) for e in nav]
    assert top[0] == ("view", "configuration") and nav[0].get("default") == "true"
    assert top[-1] == ("view", "search")
    named = [e.get("name") for e in nav.iter("view")]
    assert sorted(n for n in named if n not in ("configuration",) + SPLUNK_VIEWS) == \
        sorted(name[:-len(".xml")] for name in DASHBOARDS)
    built_views = {p.stem for p in (built_app / "default" / "data" / "ui" / "views").glob("*.xml")}
    assert all(n in built_views or n in SPLUNK_VIEWS for n in named)
