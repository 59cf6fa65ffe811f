"""The setup page's decisions (escape_setup.page): what a save writes, what a load shows, which warnings apply."""
from typing import Dict

import pytest

from escape_setup import page
from tests.unit.setup_fixtures import DETECTIONS, fixture_content, saved_search
from tools import content, setup_manifest


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> page.Manifest:
    return page.Manifest(setup_manifest.build_manifest(fixture_content(tmp_path_factory.mktemp("content"))))


def shipped_definitions() -> Dict[str, str]:
    return {m["name"]: m["definition"] for m in content.macros()}


def test_the_real_content_has_a_manifest_even_without_detections() -> None:
    built = page.Manifest(setup_manifest.build_manifest())
    assert len(built.tunables) == 6 and len(built.scopes) == 8 and list(built.field_names) == ["escape_kube_cluster"]
    assert [d.slug for d in built.detections] == [p.stem for p in sorted((content.CONTENT / "detections").glob("*.yml"))]


def test_manifest_records_type_schedule_and_data_scope_of_each_detection(manifest: page.Manifest) -> None:
    by_slug = {d.slug: d for d in manifest.detections}
    chain = by_slug["linux_fixture_chain"]
    assert (chain.type, chain.cron, chain.earliest, chain.latest) == ("chain", "13 * * * *", "-75m@m", "-10m@m")
    assert chain.scopes == ["escape_auditd"] and chain.saved_search == "Escape to Host - Fixture Namespace Escape Chain - Rule"
    assert by_slug["kube_fixture_single"].scopes == ["escape_kube_audit"]


@pytest.mark.parametrize("cron, period", [
    ("7 * * * *", 3600), ("*/15 * * * *", 900), ("* * * * *", 60), ("21 */4 * * *", 14400), ("5 3 * * *", 86400)])
def test_cron_periods(cron: str, period: int) -> None:
    assert page.cron_period_seconds(cron) == period


@pytest.mark.parametrize("cron", ["7 * * * 1", "*/15 2 * * *", "7,37 * * * *", "@hourly", "7 * *"])
def test_irregular_crons_are_refused(cron: str) -> None:
    with pytest.raises(ValueError, match="cron schedule"):
        page.cron_period_seconds(cron)


@pytest.mark.parametrize("slug, window, earliest", [
    ("linux_fixture_chain", 300, "-75m@m"),           # 10 min lag + 60 min period + 5 min window
    ("linux_fixture_chain", 3600, "-130m@m"),
    ("linux_fixture_chain", 1, "-71m@m"),             # rounded up to whole minutes: the overlap is at least the window
    ("linux_fixture_chain_sysmon", 90, "-22m@m"),     # 5 + 15 + 1.5 -> 22 (rounded up)
])
def test_chain_dispatch_window_overlaps_consecutive_runs_by_the_window(manifest: page.Manifest, slug: str,
                                                                      window: int, earliest: str) -> None:
    detection = next(d for d in manifest.detections if d.slug == slug)
    assert page.chain_earliest(detection, window) == earliest
    span = page.relative_seconds(earliest) - page.relative_seconds(detection.latest)
    assert span - page.cron_period_seconds(detection.cron) >= window


def test_only_a_time_window_write_moves_the_chain_windows(manifest: page.Manifest) -> None:
    assert page.plan_chain_windows(manifest, [("escape_allowed_host_paths", '"/x"')]) == []
    moved = page.plan_chain_windows(manifest, [("escape_time_window", "600")])
    assert moved == [(saved_search(DETECTIONS[0]), "-80m@m"), (saved_search(DETECTIONS[1]), "-30m@m")]


def test_tunables_plan_writes_only_changed_macros(manifest: page.Manifest) -> None:
    current = shipped_definitions()
    same = {s.field: s.default for s in manifest.tunables.values()}
    assert page.plan_tunables(manifest, same, current) == []
    changed = dict(same, time_window="60", allowed_host_paths="/var/log/,/opt//data")
    assert page.plan_tunables(manifest, changed, current) == [
        ("escape_allowed_host_paths", '"/var/log,/opt/data"'), ("escape_time_window", "60")]


def test_one_invalid_tunable_plans_nothing_and_names_every_problem(manifest: page.Manifest) -> None:
    values = {"time_window": "60", "privileged_threshold": "100001", "syscall_allowlist": "execve"}
    with pytest.raises(ValueError) as err:
        page.plan_tunables(manifest, values, shipped_definitions())
    assert "Privileged container threshold: 100001 is out of range; use 0 to 100000" in str(err.value)
    assert "'execve' is not one of the inspected syscalls" in str(err.value)


def test_tunable_values_show_the_macros_and_flag_direct_edits(manifest: page.Manifest) -> None:
    current = dict(shipped_definitions(), escape_time_window="120", escape_allowed_host_paths="`my_paths`")
    values, notes = page.tunable_values(manifest, current)
    assert values["time_window"] == "120"
    assert values["allowed_host_paths"] == "`my_paths`"
    assert len(notes) == 1 and "Allowed host paths" in notes[0]


def test_a_quoted_value_an_older_version_stored_is_shown_without_its_quotes(manifest: page.Manifest) -> None:
    # Before drive roots were stored as C:/, the page wrote "C:"; it loads as C:, which the page's validator then
    # names ("each directory needs a drive letter and a slash"), instead of showing SPL quotes it refuses as such.
    current = dict(shipped_definitions(), escape_restricted_host_dirs='"C:"', escape_allowed_kernel_modules='"a" "b"')
    values, notes = page.tunable_values(manifest, current)
    assert values["restricted_host_dirs"] == "C:"
    assert values["allowed_kernel_modules"] == '"a" "b"'   # not one quoted string: shown as it is
    assert len(notes) == 2


def test_scope_plan_keeps_the_other_value_of_a_source(manifest: page.Manifest) -> None:
    current = shipped_definitions()
    plan = page.plan_scopes(manifest, {"auditd_indexes": "os", "kube_cluster_field": "host"}, current)
    assert plan == [("escape_auditd", '(index="os" (sourcetype="linux:audit" OR sourcetype="auditd"))')]
    with pytest.raises(ValueError, match="Kubernetes cluster field"):
        page.plan_scopes(manifest, {"auditd_indexes": "os", "kube_cluster_field": "host | delete"}, current)


def test_analytics_plan_flips_only_what_changes(manifest: page.Manifest) -> None:
    disabled = {saved_search(d): True for d in DETECTIONS}
    disabled[saved_search(DETECTIONS[2])] = False
    assert page.analytics_values(manifest, disabled)["kube_fixture_single"] == "1"
    plan = page.plan_analytics(manifest, {"linux_fixture_chain": "1", "kube_fixture_single": "0",
                                           "esxi_fixture_threshold": "0"}, disabled)
    assert plan == [(saved_search(DETECTIONS[2]), "1"), (saved_search(DETECTIONS[0]), "0")]  # manifest order: by slug
    with pytest.raises(ValueError, match="use 1 \\(enabled\\) or 0 \\(disabled\\)"):
        page.plan_analytics(manifest, {"linux_fixture_chain": "maybe"}, disabled)


def test_warnings_cover_enabled_analytics_only(manifest: page.Manifest) -> None:
    current = dict(shipped_definitions(),
                   escape_kube_audit='(index="k8s" (sourcetype="kube:apiserver-audit" OR source="kubernetes"))')
    disabled = {saved_search(d): True for d in DETECTIONS}
    assert page.scope_warnings(manifest, disabled, current, {}) == []
    disabled[saved_search(DETECTIONS[0])] = False   # linux chain on escape_auditd: no index, no events
    disabled[saved_search(DETECTIONS[2])] = False   # kube single on escape_kube_audit: index, events
    warnings = page.scope_warnings(manifest, disabled, current, {"escape_auditd": 0, "escape_kube_audit": 12})
    assert warnings == [
        ("WARNING: Linux auditd (escape_auditd, used by the enabled linux analytic) names no index; add the index "
        "that holds these events."),
        ("WARNING: Linux auditd (escape_auditd, used by the enabled linux analytic) found no events in the last 24 "
        "hours; check the indexes and sourcetypes.")]
    assert page.scope_status([], []) == page.SCOPE_OK


# ---- companions: the Linux correlation runs while either Linux detection is enabled (issue 17) -------------------
CHAIN = "Escape to Host - Container Escape Chain on Linux Host - Rule"
ATTEMPT = "Escape to Host - Blocked Container Escape Attempt on Linux Host - Rule"
CORRELATION = "Escape to Host - Linux Escape Correlation"
REGISTRY = "Escape to Host - Container Registry"  # feeds the correlation (issue 18): enabled with it


@pytest.fixture(scope="module")
def real_manifest() -> page.Manifest:
    return page.Manifest(setup_manifest.build_manifest())


def _all_disabled(manifest: page.Manifest) -> Dict[str, bool]:
    return {name: True for name in page.managed_searches(manifest)}


def test_the_linux_detections_share_their_companions_the_tab_manages(real_manifest: page.Manifest) -> None:
    by_slug = {d.slug: d for d in real_manifest.detections}
    assert by_slug["linux_container_escape_chain"].companions == [REGISTRY, CORRELATION]
    assert by_slug["linux_container_escape_attempt"].companions == [REGISTRY, CORRELATION]
    assert {CORRELATION, REGISTRY} <= set(page.managed_searches(real_manifest))
    # readers show the data scope of the search they depend on (scope warnings on the Data sources tab)
    assert by_slug["linux_container_escape_attempt"].scopes == ["escape_auditd", "escape_sysmon_linux"]


def test_enabling_either_linux_detection_enables_the_correlation(real_manifest: page.Manifest) -> None:
    disabled = _all_disabled(real_manifest)
    plan = page.plan_analytics(real_manifest, {"linux_container_escape_attempt": "1"}, disabled)
    assert plan == [(ATTEMPT, "0"), (REGISTRY, "0"), (CORRELATION, "0")]


def test_the_correlation_stays_on_while_one_detection_is_on(real_manifest: page.Manifest) -> None:
    disabled = dict(_all_disabled(real_manifest), **{CHAIN: False, ATTEMPT: False, CORRELATION: False,
                                                     REGISTRY: False})
    assert page.plan_analytics(real_manifest, {"linux_container_escape_chain": "0"}, disabled) == [(CHAIN, "1")]
    plan = page.plan_analytics(real_manifest, {"linux_container_escape_chain": "0",
                                               "linux_container_escape_attempt": "0"}, disabled)
    assert plan == [(ATTEMPT, "1"), (CHAIN, "1"), (REGISTRY, "1"), (CORRELATION, "1")]  # detections in slug order


def test_an_upgrade_with_a_detection_enabled_turns_its_new_companion_on_at_the_next_save(
        real_manifest: page.Manifest) -> None:
    # after an upgrade the local/ enabled detection stays enabled and the new correlation ships disabled: a save of
    # the tab (with nothing changed) turns it on (docs/install-upgrade-uninstall.md)
    disabled = dict(_all_disabled(real_manifest), **{CHAIN: False})
    values = page.analytics_values(real_manifest, disabled)
    assert page.plan_analytics(real_manifest, values, disabled) == [(REGISTRY, "0"), (CORRELATION, "0")]


def test_the_time_window_moves_the_correlation_earliest_time(real_manifest: page.Manifest) -> None:
    moved = dict(page.plan_chain_windows(real_manifest, [("escape_time_window", "600")]))
    assert moved[CORRELATION] == "-80m@m"  # -10m latest + 60 m period + 10 m window
