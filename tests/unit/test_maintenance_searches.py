"""Maintenance searches (content/baselines/) ship as enabled scheduled searches that feed state to a detection."""
from datetime import datetime, timezone

from tests.conftest import ROOT
from tools import conffile, content, contentlint
from tools.inputs import read_auditd


def test_the_esxi_module_baseline_ships_enabled_and_scheduled() -> None:
    stanzas = conffile.parse_text(content.render_savedsearches_conf())
    baseline = stanzas["Escape to Host - ESXi Module Baseline Update"]
    assert baseline["disabled"] == "0" and baseline["is_scheduled"] == "1"
    assert baseline["search"].splitlines()[-1] == "| escapeesxi mode=baseline"
    assert baseline["realtime_schedule"] == "0"
    assert not [k for k in baseline if k.startswith(("alert.", "action."))], "a maintenance search never alerts"


def test_detections_still_ship_disabled() -> None:
    stanzas = conffile.parse_text(content.render_savedsearches_conf())
    rules = [name for name in stanzas if name.endswith(" - Rule")]
    assert rules and all(stanzas[name]["disabled"] == "1" for name in rules)


def test_the_lint_reads_maintenance_searches(tmp_path) -> None:
    folder = tmp_path / "content"
    (folder / "baselines").mkdir(parents=True)
    for path in (content.CONTENT).glob("*.yml"):
        (folder / path.name).write_text(path.read_text())
    (folder / "macros").mkdir()
    for path in (content.CONTENT / "macros").glob("*.yml"):
        (folder / "macros" / path.name).write_text(path.read_text())
    (folder / "baselines" / "broken.yml").write_text(
        "slug: broken\ntitle: Broken\nsearch: |\n  index=main | notacommand | escapeesxi mode=baseline\n"
        "schedule: {cron: '1 * * * *', earliest: '-70m@m', latest: '-10m@m'}\ndescription: x\n")
    problems = contentlint.lint_content(folder, ROOT / "package")
    assert any("Escape to Host - Broken" in p and "notacommand" in p for p in problems), problems
    assert any("starts from a data-scope macro" in p for p in problems), problems


def test_ausearch_two_digit_years_are_read() -> None:
    sample = ROOT / "tests" / "knowledge" / "samples" / "auditd_ausearch-i_lab-run1.log"
    records = read_auditd(sample.read_bytes())
    first = next(r for r in records if "11/29/26 03:42:07.362" in r[0])
    assert first[1] == datetime(2026, 11, 29, 3, 42, 7, 362000, tzinfo=timezone.utc).timestamp()
    assert all(r[1] is not None for r in records)
