"""Maintenance searches (content/baselines/): searches that feed state to a detection; a detection's companion ships
disabled and the setup page enables it with the detection."""
from datetime import datetime, timezone

from tests.conftest import ROOT
from tools import conffile, content, contentlint
from tools.inputs import read_auditd


def test_the_esxi_module_baseline_seed_ships_disabled_and_unscheduled() -> None:
    stanzas = conffile.parse_text(content.render_savedsearches_conf())
    baseline = stanzas["Escape to Host - ESXi Module Baseline Seed"]
    assert baseline["disabled"] == "1" and baseline["is_scheduled"] == "0"
    assert baseline["search"].splitlines()[-1] == "| escapeesxi mode=baseline"
    assert baseline["realtime_schedule"] == "0"
    assert not [k for k in baseline if k.startswith(("alert.", "action."))], "a maintenance search never alerts"


def test_the_seed_learns_nothing_the_detection_has_yet_to_judge() -> None:
    """The seed's latest time is its detection's earliest: whenever it runs, the detection's next run judges
    everything newer."""
    stanzas = conffile.parse_text(content.render_savedsearches_conf())
    for maintenance in content.maintenance_searches():
        if maintenance.companion_of and maintenance.run == "once":
            detection = next(d for d in content.detections() if d.slug == maintenance.companion_of)
            assert stanzas[maintenance.stanza]["dispatch.latest_time"] == \
                stanzas[detection.stanza]["dispatch.earliest_time"]


def test_the_setup_page_enables_a_companion_with_its_detection() -> None:
    from escape_setup import page
    from tools.setup_manifest import build_manifest
    manifest = page.Manifest(build_manifest())
    detection = next(d for d in manifest.detections if d.slug == "esxi_unexpected_module_load")
    assert detection.companions == ["Escape to Host - ESXi Module Baseline Seed"]
    everything_off = {name: True for name in page.managed_searches(manifest)}
    assert page.plan_analytics(manifest, {"esxi_unexpected_module_load": "1"}, everything_off) == [
        (detection.saved_search, "0"), ("Escape to Host - ESXi Module Baseline Seed", "0")]
    everything_on = {name: False for name in page.managed_searches(manifest)}
    assert page.plan_analytics(manifest, {"esxi_unexpected_module_load": "0"}, everything_on) == [
        (detection.saved_search, "1"), ("Escape to Host - ESXi Module Baseline Seed", "1")]


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
