"""content/detections/*.yml: validation, rendering into savedsearches.conf and macros.conf, the lint over the real
content, samples with provenance, and upgrade safety (released names never vanish without a deprecation entry)."""
import re
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from escape_engine import ground
from tests.conftest import ROOT
from tests.integration.harness.replay_fixture import detection, make_content
from tools import conffile, content, contentlint, model, release, spllint

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
    assert release.upgrade_problems() == []


def test_every_detection_has_its_filter_macro_shipped_as_search_star() -> None:
    stanzas = conffile.parse_text(content.render_macros_conf())
    for item in DETECTIONS:
        assert stanzas[item.filter_macro]["definition"] == "search *"


# ---------------------------------------------------------------- validation (tools/model.py)
def _refused(tmp_path: Path, data: Dict[str, Any], message: str, name: str = "linux_fixture_nsenter.yml") -> None:
    folder = make_content(tmp_path / "content")
    (folder / "detections" / name).write_text(yaml.safe_dump(data))
    with pytest.raises(content.DetectionError, match="^" + re.escape(name + ": " + message)):
        content.detections(folder)


@pytest.mark.parametrize("changes, message", [
    ({"slug": "fixture_nsenter"}, "slug: must look like <source>_<behaviour>"),
    ({"title": "T" * 58}, "title: must be 1-57 characters"),
    ({"analytic": "macos"}, "analytic: must be one of container, linux, windows, esxi, not 'macos'"),
    ({"severity": "severe"}, "severity: must be one of informational, low, medium, high, critical"),
    ({"type": "sequence"}, "type: must be one of"),
    ({"schedule": {"cron": "7 * * * *"}}, "schedule: must have exactly cron, earliest and latest"),
    ({"suppress": {"fields": [], "period": "24h"}}, "suppress.fields: must be a list of at least 1 item"),
    ({"suppress": {"fields": ["host"], "period": "a day"}}, "suppress.period: must look like 24h, 30m, 1d"),
    ({"mitre_attack": ["1611"]}, "mitre_attack[0]: must look like a technique id like T1611"),
    ({"samples": {"fires": [], "silent": []}}, "samples.fires: must be a list of at least 1 item"),
    ({"samples": {"fires": [{"path": "x"}], "silent": [{"sourcetype": "a", "path": "b"}]}},
     "samples.fires[0]: missing keys: sourcetype"),
    ({"samples": {"fires": [{"sourcetype": "a", "path": "b", "index": "main"}], "silent": []}},
     "samples.fires[0]: unknown keys: index"),
    ({"how_to_tune": ""}, "how_to_tune: must be non-empty text"),
    ({"tuning": "x"}, "unknown keys: tuning"),
    ({"es": {"risk_score": 101}}, "es: es.risk_score must be a whole number from 0 to 100"),
    # ESCU's identity keys
    ({"id": "not-a-uuid"}, "id: must be a UUID"),
    ({"id": "00000000-0000-4000-8000-00000000000A"}, "id: must be a UUID in lower-case"),
    ({"version": 0}, "version: must be a whole number >= 1"),
    ({"version": "1"}, "version: must be a whole number >= 1"),
    ({"date": "2026-13-01"}, "date: must be an ISO date"),
    ({"date": "06.12.2026"}, "date: must be an ISO date"),
    ({"references": []}, "references: must be a list of at least 1 item"),
    ({"references": ["attack.mitre.org/techniques/T1611/"]}, "references[0]: must be an https:// URL"),
    ({"references": ["https://attack.mitre.org/techniques/T1611/"] * 2}, "references: lists an item twice"),
    ({"data_source": ["Kubernetes Audit Logs"]}, "data_source[0]: must be one of Kubernetes Audit, Docker Daemon"),
    # tool settings stay out of the content files: the replayed pipes are derived from the search
    ({"replay_pipes": 1}, "unknown keys: replay_pipes"),
    ({"search": "`escape_auditd` nsenter\n| where x=1\n| escapereplayprobe\n| `escape_linux_fixture_nsenter_filter`"},
     "search: the base search must be followed by at least one escape<verb> command"),
    ({"search": "`escape_auditd` nsenter\n| head 5\n| `escape_linux_fixture_nsenter_filter`"},
     "search: the base search must be followed by at least one escape<verb> command"),
])
def test_validation_names_the_file_and_the_key(tmp_path: Path, changes: Dict[str, Any], message: str) -> None:
    _refused(tmp_path, detection(**changes), message)


def test_missing_keys_and_wrong_file_name_are_refused(tmp_path: Path) -> None:
    data = detection()
    del data["known_false_positives"]
    del data["id"]
    _refused(tmp_path / "a", data, "missing keys: id, known_false_positives")
    _refused(tmp_path / "b", detection(), "slug: the file name must be linux_fixture_nsenter.yml", "linux_other.yml")


def test_two_detections_with_one_id_are_refused(tmp_path: Path) -> None:
    first = detection()
    second = detection(slug="linux_fixture_other", title="Fixture Other", id=first["id"],
                       search="`escape_auditd` x\n| escapereplayprobe\n| `escape_linux_fixture_other_filter`")
    folder = make_content(tmp_path / "content", first, second)
    with pytest.raises(content.DetectionError, match="linux_fixture_other.yml: id: {} is also used by "
                                                     "linux_fixture_nsenter.yml".format(first["id"])):
        content.detections(folder)


def test_an_unquoted_yaml_date_is_read_as_its_iso_text(tmp_path: Path) -> None:
    folder = make_content(tmp_path / "content")
    text = yaml.safe_dump(detection()).replace("date: '2026-12-06'", "date: 2026-12-06")
    assert "date: 2026-12-06" in text
    (folder / "detections" / "linux_fixture_nsenter.yml").write_text(text)
    assert content.detections(folder)[0].date == "2026-12-06"


@pytest.mark.parametrize("item", DETECTIONS, ids=[d.slug for d in DETECTIONS])
def test_real_detections_carry_escu_identity_and_attack_references(item: content.Detection) -> None:
    assert item.version >= 1 and item.data_source
    for technique in item.mitre_attack:
        assert "https://attack.mitre.org/techniques/{}/".format(technique.replace(".", "/")) in item.references
    assert "https://attack.mitre.org/detectionstrategies/DET0219/" in item.references
    assert "replay_pipes" not in item.path.read_text(encoding="utf-8")


@pytest.mark.parametrize("item", DETECTIONS, ids=[d.slug for d in DETECTIONS])
def test_replayed_pipes_are_the_escape_commands_after_the_base_search(item: content.Detection) -> None:
    pipes = spllint.split_pipes(item.search.strip())
    replayed = pipes[1:1 + item.replay_pipes]
    assert replayed and all(spllint.command_name(p)[0].startswith("escape") for p in replayed)
    assert not re.match(r"escape[a-z]+\b", pipes[1 + item.replay_pipes])  # the next pipe is not a command of ours
    assert model.escape_pipes("`m` a\n| escapeinspect x=1\n| escapethreshold y=2\n| `escape_f`") == 2


# ---------------------------------------------------------------- rendering
def test_savedsearches_conf_renders_every_required_key(tmp_path: Path) -> None:
    folder = make_content(tmp_path / "content", detection(mitre_attack=["T1611", "T1068"]))
    text = content.render_savedsearches_conf(folder)
    assert text.startswith("# GENERATED by tools/content.py from content/. Do not edit")
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
    # tools/es.py, tests/unit/test_es.py
    es_keys = {k for k in stanza if k.startswith(("action.notable", "action.risk"))}
    assert set(stanza) == set(expected) | {"search", "description"} | es_keys


def test_macros_conf_gets_the_filter_hook_and_macros_with_arguments(tmp_path: Path) -> None:
    folder = make_content(tmp_path / "content", detection())
    (folder / "macros" / "extra.yml").write_text(
        "macros:\n  - {name: escape_fixture_pair, args: [a, b], definition: 'host=$a$ OR host=$b$', description: d}\n")
    stanzas = conffile.parse_text(content.render_macros_conf(folder))
    assert stanzas["escape_linux_fixture_nsenter_filter"]["definition"] == "search *"
    assert "local/macros.conf" in stanzas["escape_linux_fixture_nsenter_filter"]["description"]
    assert stanzas["escape_fixture_pair(2)"] == {"args": "a, b", "definition": "host=$a$ OR host=$b$",
                                                 "description": "d"}


def test_write_generated_writes_both_confs_only_when_there_are_detections(tmp_path: Path) -> None:
    app = tmp_path / "app"
    written = content.write_generated(app, make_content(tmp_path / "with", detection()))
    assert sorted(p.name for p in written) == ["macros.conf", "savedsearches.conf"]
    written = content.write_generated(app, make_content(tmp_path / "without"))
    assert [p.name for p in written] == ["macros.conf"] and not (app / "default" / "savedsearches.conf").exists()


def test_alert_severity_follows_splunks_numbering() -> None:
    assert {s: content.alert_severity(s) for s in ground.SEVERITIES} == {
        "informational": 2, "low": 3, "medium": 4, "high": 5, "critical": 6}


def test_saved_search_keys_are_read_back_from_the_template(tmp_path: Path) -> None:
    folder = make_content(tmp_path / "content", detection())
    stanzas = conffile.parse_text(content.render_savedsearches_conf(folder))
    keys = content.saved_search(content.detections(folder)[0])
    assert list(keys) == list(stanzas["Escape to Host - Fixture Nsenter Seen - Rule"])
    assert keys["search"] == "`escape_auditd` nsenter\n| escapereplayprobe severity=critical\n" \
                             "| `escape_linux_fixture_nsenter_filter`"


# ---------------------------------------------------------------- upgrade safety, seeded
def _released(folder: Path, macros: Any, saved: Any = ()) -> None:
    (folder / "released.yml").write_text(yaml.safe_dump({"version": "0.1.0", "macros": list(macros),
                                                         "saved_searches": list(saved)}))


def test_a_vanished_released_name_fails_until_it_is_deprecated(tmp_path: Path) -> None:
    folder = make_content(tmp_path / "content", detection())
    _released(folder, ["escape_auditd", "escape_old_scope"], ["Escape to Host - Old Rule - Rule"])
    assert release.upgrade_problems(folder) == [
        ("released saved search 'Escape to Host - Old Rule - Rule' disappeared without an entry in "
        "content/deprecations.yml"),
        "released macro 'escape_old_scope' disappeared without an entry in content/deprecations.yml",
    ]
    (folder / "deprecations.yml").write_text(yaml.safe_dump({"deprecations": [
        {"name": "escape_old_scope", "kind": "macro", "replaced_by": "escape_auditd", "since": "0.2.0", "reason": "r"},
        {"name": "Escape to Host - Old Rule - Rule", "kind": "saved_search", "replaced_by": None, "since": "0.2.0",
         "reason": "removed"},
    ]}))
    assert release.upgrade_problems(folder) == []
    (folder / "deprecations.yml").write_text(yaml.safe_dump({"deprecations": [
        {"name": "escape_old_scope", "kind": "macro", "replaced_by": "escape_nowhere", "since": "0.2.0",
         "reason": "r"}]}))
    assert "replaced by 'escape_nowhere', which does not exist" in " ".join(release.upgrade_problems(folder))


def test_record_release_keeps_old_names_and_adds_new_ones(tmp_path: Path) -> None:
    folder = make_content(tmp_path / "content", detection())
    _released(folder, ["escape_gone"])
    release.record_release("0.2.0", folder)
    data = yaml.safe_load((folder / "released.yml").read_text())
    assert data["version"] == "0.2.0" and data["macros"][0] == "escape_gone"
    assert "escape_linux_fixture_nsenter_filter" in data["macros"]
    assert data["saved_searches"] == ["Escape to Host - Fixture Nsenter Seen - Rule"]


def test_the_documented_example_is_a_valid_detection() -> None:
    text = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    section = text[text.index("## 1. Detections as data"):text.index("## 2. ")]
    example = yaml.safe_load(section.split("```yaml\n")[1].split("```")[0])
    item = content.validate_detection(example, Path("kube_privileged_pod.yml"))
    assert item.replay_pipes == 1 and item.data_source == ["Kubernetes Audit"]
    for kind in ("fires", "silent"):
        assert all((ROOT / s["path"]).is_file() for s in item.samples[kind])
