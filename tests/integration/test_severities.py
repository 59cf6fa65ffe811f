"""README, docs/detections.md and the built savedsearches.conf name the same detections with the same severities, and
that severity is what the alerts carry: the highest escape_severity of the rows each detection emits on its samples."""
import re
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from tests.conftest import ROOT
from tools import conffile, content, replay

SEVERITIES = ("informational", "low", "medium", "high", "critical")
README_ROW = re.compile(r"^\| \[(?P<stanza>[^\]]+)\]\(docs/detections\.md#(?P<slug>[a-z0-9_]+)\) \| [^|]+ \| [^|]+ \| "
                        r"(?P<severity>[a-z]+) \|")


def readme_rows() -> Dict[str, Tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    rows = {}
    for line in text.splitlines():
        match = README_ROW.match(line)
        if match:
            assert match["stanza"] not in rows, "README lists {} twice".format(match["stanza"])
            rows[match["stanza"]] = (match["slug"], match["severity"])
    return rows


def docs_rows() -> Dict[str, str]:
    text = (ROOT / "docs" / "detections.md").read_text()
    rows = {}
    for section in re.split(r"^### ", text, flags=re.MULTILINE)[1:]:
        stanza = section.splitlines()[0].strip()
        found = re.findall(r"^\| highest severity \| ([a-z]+) \|$", section, flags=re.MULTILINE)
        assert len(found) == 1, "docs/detections.md: {} has {} severity rows".format(stanza, len(found))
        rows[stanza] = found[0]
    return rows


def built_rules(built_app: Path) -> Dict[str, Dict[str, str]]:
    stanzas = conffile.parse(built_app / "default" / "savedsearches.conf")
    return {name: keys for name, keys in stanzas.items() if keys.get("action.correlationsearch.enabled") == "1"}


def test_readme_docs_and_savedsearches_name_the_same_detections_with_the_same_severity(built_app: Path) -> None:
    rules = built_rules(built_app)
    readme, docs = readme_rows(), docs_rows()
    assert set(readme) == set(rules), set(readme) ^ set(rules)
    assert set(docs) == set(rules), set(docs) ^ set(rules)
    for stanza, keys in rules.items():
        severity = readme[stanza][1]
        assert docs[stanza] == severity, stanza
        assert keys["alert.severity"] == str(SEVERITIES.index(severity) + 2), stanza
        if "action.notable.param.severity" in keys:
            assert keys["action.notable.param.severity"] == severity, stanza


@pytest.mark.parametrize("members", replay.sample_groups(), ids=lambda m: "+".join(d.slug for d in m))
def test_the_declared_severity_is_the_highest_an_alert_row_carries(members: List[content.Detection],
                                                                    built_app: Path) -> None:
    alerts = replay.replay(replay.sample_specs(members[0], "fires"), content.CONTENT, built_app,
                           only=[d.slug for d in members])
    for detection in members:
        seen = {str(a["severity"]) for a in alerts if a["detection"] == detection.stanza}
        assert seen, detection.slug
        highest = max(seen, key=SEVERITIES.index)
        assert highest == detection.severity, "{}: alerts carry {}, the detection declares {}".format(
            detection.slug, sorted(seen, key=SEVERITIES.index), detection.severity)
