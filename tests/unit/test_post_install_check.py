"""The Post-install Check dashboard covers every data source and every detection the package ships: one tstats count
per data-scope macro of content/macros/data_scope.yml, under that scope's label, and the scheduler runs of every saved
search named "Escape to Host - <title> - Rule"."""
import re
from xml.etree import ElementTree

from escape_engine.ground import saved_search_name
from tests.conftest import ROOT
from tools.setup_manifest import data_scope_entries, detections

VIEW = ROOT / "package" / "default" / "data" / "ui" / "views" / "escape_post_install.xml"
QUERIES = [q.text or "" for q in ElementTree.parse(str(VIEW)).getroot().iter("query")]


def test_one_count_per_data_scope_under_its_label() -> None:
    scopes = [(e["name"], e["scope"]["label"]) for e in data_scope_entries() if "scope" in e]
    found = re.findall(r'tstats count max\(_time\) as latest where earliest=-24h latest=now `(escape_[a-z_]+)` '
                       r'\| eval data_source="([^"]+)", scope="(escape_[a-z_]+)"', QUERIES[0])
    assert [(m, label) for m, label, _ in found] == scopes
    assert all(m == s for m, _, s in found)


def test_the_detection_panel_matches_every_shipped_saved_search_name() -> None:
    pattern = re.search(r'title="([^"]+)" disabled=0', QUERIES[1])
    assert pattern is not None
    wildcard = re.compile(re.escape(pattern.group(1)).replace(r"\*", ".*") + "$")
    assert all(wildcard.match(saved_search_name(d["title"])) for d in detections())
    assert 'savedsearch_name="{}"'.format(pattern.group(1)) in QUERIES[1]
