"""Maintenance searches (content/baselines/) ship as enabled scheduled searches that feed state to a detection."""
from datetime import datetime, timezone
from pathlib import Path

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


def _copy_content(folder: Path) -> Path:
    for sub in ("detections", "baselines", "macros"):
        (folder / sub).mkdir(parents=True)
        for path in (content.CONTENT / sub).glob("*.yml"):
            (folder / sub / path.name).write_text(path.read_text())
    for path in content.CONTENT.glob("*.yml"):
        (folder / path.name).write_text(path.read_text())
    return folder


CORRELATION = "linux_escape_correlation.yml"
ATTEMPT = "linux_container_escape_attempt.yml"


def test_a_detection_reading_saved_results_needs_its_producer(tmp_path: Path) -> None:
    folder = _copy_content(tmp_path / "content")
    (folder / "baselines" / CORRELATION).unlink()
    problems = contentlint.lint_content(folder, ROOT / "package")
    assert sum("needs the maintenance search that saves them" in p for p in problems) == 2, problems


def test_the_producer_of_saved_results_passes_the_base_search_rules(tmp_path: Path) -> None:
    folder = _copy_content(tmp_path / "content")
    path = folder / "baselines" / CORRELATION
    path.write_text(path.read_text().replace("(`escape_auditd`) OR (`escape_sysmon_linux`)", "index=main audit"))
    problems = [p for p in contentlint.lint_content(folder, ROOT / "package") if "Blocked" in p]
    assert any("its maintenance search: the search must start from a data-scope macro" in p for p in problems)
    assert any("its maintenance search: the search names index=" in p for p in problems), problems


def test_a_leading_pipe_must_be_an_add_on_generating_command(tmp_path: Path) -> None:
    folder = _copy_content(tmp_path / "content")
    path = folder / "detections" / ATTEMPT
    path.write_text(path.read_text().replace("| escapefindings report=attempts", "| escapereduce"))
    problems = [p for p in contentlint.lint_content(folder, ROOT / "package") if "Blocked" in p]
    assert any("one generating escape<verb> command of the add-on" in p for p in problems), problems
    assert any("'escapereduce' follows a leading pipe but is not a generating command" in p for p in problems)
