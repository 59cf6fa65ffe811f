"""content/detections/*.yml: validation, rendering into savedsearches.conf and macros.conf, the lint over the real
content, samples with provenance, and upgrade safety (released names never vanish without a deprecation entry)."""
import re
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from tests.conftest import ROOT
from tests.integration.harness.replay_fixture import detection, make_content
from tools import conffile, content, contentlint, spllint

DETECTIONS = content.detections()
PROVENANCE = (ROOT / "tests" / "knowledge" / "samples" / "PROVENANCE.md").read_text(encoding="utf-8")


# ---------------------------------------------------------------- the real content
def test_real_content_passes_the_spl_lint() -> None:
    # The source app (package/) holds the hand-written commands, transforms, eventtypes, lookups and views.
    assert contentlint.lint_content(content.CONTENT, ROOT / "package") == []


@pytest.mark.parametrize("item", DETECTIONS, ids=[d.slug for d in DETECTIONS])
def test_samples_exist_and_have_provenance(item: content.Detection) -> None:
    for kind in ("fires", "silent"):
        for sample in item.samples[kind]:
            path = (ROOT / sample["path"]).resolve()
            assert path.is_file(), "{}: samples.{} {} is missing".format(item.slug, kind, sample["path"])
            samples_dir = ROOT / "tests" / "knowledge" / "samples"
            if samples_dir in path.parents:
                assert "| {} |".format(path.relative_to(samples_dir)) in PROVENANCE, path.name


def test_no_released_name_disappears_without_a_deprecation_entry() -> None:
    assert content.upgrade_problems() == []


def test_every_detection_has_its_filter_macro_shipped_as_search_star() -> None:
    stanzas = conffile.parse_text(content.render_macros_conf())
    for item in DETECTIONS:
        assert stanzas[item.filter_macro]["definition"] == "search *"


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("changes, message", [
    ({"slug": "fixture_nsenter"}, "is not <source>_<behaviour>"),
    ({"title": "T" * 58}, "title must be 1-57 characters"),
    ({"analytic": "macos"}, "analytic must be one of"),
    ({"severity": "severe"}, "severity must be one of"),
    ({"type": "sequence"}, "type must be one of"),
    ({"replay_pipes": 0}, "replay_pipes must be a whole number >= 1"),
    ({"schedule": {"cron": "7 * * * *"}}, "schedule must have exactly cron, earliest and latest"),
    ({"suppress": {"fields": [], "period": "24h"}}, "suppress must have fields"),
    ({"suppress": {"fields": ["host"], "period": "a day"}}, "suppress.period must look like"),
    ({"mitre_attack": ["1611"]}, "mitre_attack must be"),
    ({"samples": {"fires": [], "silent": []}}, "samples.fires must list at least one sample"),
    ({"samples": {"fires": [{"path": "x"}], "silent": [{"sourcetype": "a", "path": "b"}]}}, "each sample is"),
    ({"how_to_tune": ""}, "how_to_tune must be non-empty text"),
    ({"tuning": "x"}, "unknown keys: tuning"),
])
def test_validation_names_the_mistake(tmp_path: Path, changes: Dict[str, Any], message: str) -> None:
    folder = make_content(tmp_path / "content")
    data = detection(**changes)
    (folder / "detections" / "linux_fixture_nsenter.yml").write_text(yaml.safe_dump(data))
    with pytest.raises(content.DetectionError, match=re.escape(message)):
        content.detections(folder)


def test_missing_keys_and_wrong_file_name_are_refused(tmp_path: Path) -> None:
    folder = make_content(tmp_path / "content")
    data = detection()
    del data["known_false_positives"]
    (folder / "detections" / "linux_fixture_nsenter.yml").write_text(yaml.safe_dump(data))
    with pytest.raises(content.DetectionError, match="missing keys: known_false_positives"):
        content.detections(folder)
    (folder / "detections" / "linux_fixture_nsenter.yml").rename(folder / "detections" / "linux_other.yml")
    (folder / "detections" / "linux_other.yml").write_text(yaml.safe_dump(detection()))
    with pytest.raises(content.DetectionError, match="file name must be linux_fixture_nsenter.yml"):
        content.detections(folder)


# ---------------------------------------------------------------- rendering
def test_savedsearches_conf_renders_every_required_key(tmp_path: Path) -> None:
    folder = make_content(tmp_path / "content", detection(mitre_attack=["T1611", "T1068"]))
    text = content.render_savedsearches_conf(folder)
    assert text.startswith(content.GENERATED_HEADER)
    stanza = conffile.parse_text(text)["Escape to Host - Fixture Nsenter Seen - Rule"]
    assert stanza["search"].replace(" \n", "\n") == "`escape_auditd` nsenter\n| escapereplayprobe severity=critical\n" \
                               "| `escape_linux_fixture_nsenter_filter`"
    assert "\\\n| escapereplayprobe" in text  # one pipe per line, continued with a trailing backslash
    assert stanza["description"] == ("Experimental. A fixture: every audit record that mentions nsenter. How to tune: "
                                     "Override escape_linux_fixture_nsenter_filter. Known false positives: Admins "
                                     "running nsenter.")
    expected = {
        "disabled": "1", "is_scheduled": "1", "cron_schedule": "7 * * * *", "dispatch.earliest_time": "-70m@m",
        "dispatch.latest_time": "-10m@m", "realtime_schedule": "0", "counttype": "number of events",
        "relation": "greater than", "quantity": "0", "alert.digest_mode": "0", "alert.suppress": "1",
        "alert.suppress.fields": "host", "alert.suppress.period": "24h", "alert.track": "1", "alert.severity": "5",
        "action.correlationsearch.enabled": "1",
        "action.correlationsearch.label": "Escape to Host - Fixture Nsenter Seen - Rule",
        "action.correlationsearch.annotations": '{"mitre_attack": ["T1611", "T1068"]}',
    }
    assert {k: stanza[k] for k in expected} == expected
    es_keys = {k for k in stanza if k.startswith(("action.notable", "action.risk"))}  # tools/es.py, tests/unit/test_es.py
    assert set(stanza) == set(expected) | {"search", "description"} | es_keys


def test_macros_conf_gets_the_filter_hook_and_macros_with_arguments(tmp_path: Path) -> None:
    folder = make_content(tmp_path / "content", detection())
    (folder / "macros" / "extra.yml").write_text(
        "macros:\n  - {name: escape_fixture_pair, args: [a, b], definition: 'host=$a$ OR host=$b$', description: d}\n")
    stanzas = conffile.parse_text(content.render_macros_conf(folder))
    assert stanzas["escape_linux_fixture_nsenter_filter"]["definition"] == "search *"
    assert "local/macros.conf" in stanzas["escape_linux_fixture_nsenter_filter"]["description"]
    assert stanzas["escape_fixture_pair(2)"] == {"args": "a, b", "definition": "host=$a$ OR host=$b$", "description": "d"}


def test_write_generated_writes_both_confs_only_when_there_are_detections(tmp_path: Path) -> None:
    app = tmp_path / "app"
    written = content.write_generated(app, make_content(tmp_path / "with", detection()))
    assert sorted(p.name for p in written) == ["macros.conf", "savedsearches.conf"]
    written = content.write_generated(app, make_content(tmp_path / "without"))
    assert [p.name for p in written] == ["macros.conf"] and not (app / "default" / "savedsearches.conf").exists()


def test_alert_severity_follows_splunks_numbering() -> None:
    assert content.ALERT_SEVERITY == {"informational": 2, "low": 3, "medium": 4, "high": 5, "critical": 6}


# ---------------------------------------------------------------- upgrade safety, seeded
def _released(folder: Path, macros: Any, saved: Any = ()) -> None:
    (folder / "released.yml").write_text(yaml.safe_dump({"version": "0.1.0", "macros": list(macros),
                                                         "saved_searches": list(saved)}))


def test_a_vanished_released_name_fails_until_it_is_deprecated(tmp_path: Path) -> None:
    folder = make_content(tmp_path / "content", detection())
    _released(folder, ["escape_auditd", "escape_old_scope"], ["Escape to Host - Old Rule - Rule"])
    assert content.upgrade_problems(folder) == [
        "released saved search 'Escape to Host - Old Rule - Rule' disappeared without an entry in content/deprecations.yml",
        "released macro 'escape_old_scope' disappeared without an entry in content/deprecations.yml",
    ]
    (folder / "deprecations.yml").write_text(yaml.safe_dump({"deprecations": [
        {"name": "escape_old_scope", "kind": "macro", "replaced_by": "escape_auditd", "since": "0.2.0", "reason": "r"},
        {"name": "Escape to Host - Old Rule - Rule", "kind": "saved_search", "replaced_by": None, "since": "0.2.0",
         "reason": "removed"},
    ]}))
    assert content.upgrade_problems(folder) == []
    (folder / "deprecations.yml").write_text(yaml.safe_dump({"deprecations": [
        {"name": "escape_old_scope", "kind": "macro", "replaced_by": "escape_nowhere", "since": "0.2.0", "reason": "r"}]}))
    assert "replaced by 'escape_nowhere', which does not exist" in " ".join(content.upgrade_problems(folder))


def test_record_release_keeps_old_names_and_adds_new_ones(tmp_path: Path) -> None:
    folder = make_content(tmp_path / "content", detection())
    _released(folder, ["escape_gone"])
    content.record_release("0.2.0", folder)
    data = yaml.safe_load((folder / "released.yml").read_text())
    assert data["version"] == "0.2.0" and data["macros"][0] == "escape_gone"
    assert "escape_linux_fixture_nsenter_filter" in data["macros"]
    assert data["saved_searches"] == ["Escape to Host - Fixture Nsenter Seen - Rule"]
