"""The built app ships our two dashboards beside UCC's generated views and nav, which stay UCC's."""
from pathlib import Path

from tests.conftest import ROOT

VIEWS = ROOT / "package" / "default" / "data" / "ui" / "views"
DASHBOARDS = ("escape_overview.xml", "escape_data_health.xml")


def test_built_app_keeps_ucc_views_and_nav_and_adds_ours(built_app: Path) -> None:
    views = built_app / "default" / "data" / "ui" / "views"
    assert (views / "configuration.xml").is_file()  # UCC's, not replaced
    for name in DASHBOARDS:
        assert (views / name).read_bytes() == (VIEWS / name).read_bytes()
    nav = (built_app / "default" / "data" / "ui" / "nav" / "default.xml").read_text(encoding="utf-8")
    assert 'name="configuration"' in nav  # UCC generates the nav; package/ ships none that would replace it
    assert not (ROOT / "package" / "default" / "data" / "ui" / "nav").exists()
