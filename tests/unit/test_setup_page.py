"""The setup page in globalConfig.json agrees with content/, with the handler copy, and with the README."""
import json
import re
from pathlib import Path
from typing import Dict, List

import pytest

from tests.conftest import ROOT
from tests.unit.setup_fixtures import DETECTIONS, fixture_content
from tools import setup_page

CONFIG = json.loads((ROOT / "globalConfig.json").read_text(encoding="utf-8"))
TABS = {t.get("name", t.get("type")): t for t in CONFIG["pages"]["configuration"]["tabs"]}


def test_global_config_tabs_agree_with_content() -> None:
    assert setup_page.main(["--check"]) == 0, "run ./build.sh setup-page"
    assert list(TABS) == ["tunables", "data_sources", "analytics", "loggingTab"]


def test_the_check_fails_when_a_detection_is_added_without_rewriting_the_page(tmp_path: Path) -> None:
    wanted = setup_page.expected(CONFIG, fixture_content(tmp_path))
    assert setup_page.render(wanted) != setup_page.render(CONFIG)
    analytics = next(t for t in wanted["pages"]["configuration"]["tabs"] if t["name"] == "analytics")
    assert [(e["type"], e["field"], e["label"]) for e in analytics["entity"]] == sorted(
        ("checkbox", d["slug"], d["title"]) for d in DETECTIONS)
    assert all(e["defaultValue"] is False for e in analytics["entity"])


def test_writing_admins_only() -> None:
    caps = CONFIG["pages"]["configuration"]["capabilities"]
    assert caps == {"post": "admin_all_objects", "put": "admin_all_objects", "delete": "admin_all_objects"}


def test_the_committed_handler_is_ucc_generated_code_plus_our_tail(tmp_path: Path) -> None:
    ours = setup_page.HANDLER.read_text(encoding="utf-8")
    generated = setup_page.generated_handler(CONFIG, tmp_path)
    assert ours[:ours.index(setup_page.MARKER)] == generated[:generated.index("if __name__ == '__main__':")], \
        "globalConfig.json changed: run ./build.sh setup-page"
    assert ours == setup_page.handler_text(CONFIG, tmp_path)
    assert "handler=EscapeSettingsHandler" in ours[ours.index(setup_page.MARKER):]


def _readme_tables() -> Dict[str, List[List[str]]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Setup page"):]
    section = section[:section.index("\n## ", 5)]
    tables: Dict[str, List[List[str]]] = {}
    current = ""
    for line in section.splitlines():
        if line.startswith("### "):
            current = line[4:].strip()
        elif line.startswith("| ") and not line.startswith("|---"):
            tables.setdefault(current, []).append([c.strip() for c in line.strip("|").split("|")])
    return tables


@pytest.mark.parametrize("tab, title", [("tunables", "Tunables"), ("data_sources", "Data sources")])
def test_readme_lists_the_page_field_for_field(tab: str, title: str) -> None:
    rows = _readme_tables()[title]
    assert rows[0][:2] == ["label", "field"]
    listed = [(r[0], r[1].strip("`")) for r in rows[1:]]
    assert listed == [(e["label"], e["field"]) for e in TABS[tab]["entity"]]


def test_readme_describes_analytics_and_logging() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(r"### Analytics\nOne checkbox per detection \(field = its slug, label = its title\)", text)
    assert "### Logging\nThe add-on's log level (`loglevel`)." in text
