"""The built settings handler (splunktaucclib's AdminExternalHandler + ours) against a strict loopback splunkd.

Each request runs the built bin/TA_escape_to_host_rh_settings.py in its own process from an etc/apps/<app>/ path,
as splunkd does; splunk.admin is the stand-in in harness/splunk/. Tests with detections use fixture detections
(tests/unit/setup_fixtures.py) and regenerate the handler and manifest from them as the build would.
"""
from pathlib import Path
from typing import Dict, Iterator, Tuple

import pytest

from tests.conftest import BUILT_APP
from tests.integration.harness.setup_app import SettingsClient, make_app
from tests.integration.harness.splunkd import FakeSplunkd
from tests.unit.setup_fixtures import DETECTIONS, fixture_content, saved_search
from tests.unit.setup_literal import is_scope_expression, is_single_literal
from tools import conffile, spllint

TUNABLE_MACROS = ["escape_allowed_host_paths", "escape_privileged_threshold", "escape_syscall_allowlist",
                  "escape_time_window", "escape_restricted_host_dirs", "escape_allowed_kernel_modules"]
SCOPE_MACROS = ["escape_kube_audit", "escape_docker", "escape_auditd", "escape_sysmon_linux",
                "escape_windows_security", "escape_windows_sysmon", "escape_esxi", "escape_kube_cluster"]
CHAIN = saved_search(DETECTIONS[0])
CHAIN_SYSMON = saved_search(DETECTIONS[1])
KUBE = saved_search(DETECTIONS[2])
VALID = {"allowed_host_paths": "/var/log,/opt/data", "privileged_threshold": "7", "syscall_allowlist": "keyctl",
         "time_window": "600", "restricted_host_dirs": "C:\\Windows,\\\\fs01\\share", "allowed_kernel_modules": "nvme_pci"}


def built_confs() -> Dict[str, Dict[str, Dict[str, str]]]:
    return {"macros": conffile.parse(BUILT_APP / "default" / "macros.conf"),
            "ta_escape_to_host_settings": conffile.parse(BUILT_APP / "default" / "ta_escape_to_host_settings.conf")}


def fixture_saved_searches() -> Dict[str, Dict[str, str]]:
    return {saved_search(d): {"disabled": "1", "cron_schedule": str(d["schedule"]["cron"]),  # type: ignore[index]
                              "dispatch.earliest_time": str(d["schedule"]["earliest"])}  # type: ignore[index]
            for d in DETECTIONS}


@pytest.fixture(scope="module")
def plain_app(tmp_path_factory: pytest.TempPathFactory, built_app: Path) -> Path:
    """The built handler and manifest exactly as shipped."""
    return make_app(tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="module")
def fixture_app(tmp_path_factory: pytest.TempPathFactory, built_app: Path) -> Path:
    tmp = tmp_path_factory.mktemp("fixture")
    return make_app(tmp, fixture_content(tmp_path_factory.mktemp("content")))


def built_saved_searches() -> Dict[str, Dict[str, str]]:
    """The build's saved searches, once content/ renders them (none before)."""
    path = BUILT_APP / "default" / "savedsearches.conf"
    return {n: k for n, k in conffile.parse(path).items() if n != "default"} if path.is_file() else {}


@pytest.fixture
def shipped(plain_app: Path) -> Iterator[Tuple[FakeSplunkd, SettingsClient]]:
    with FakeSplunkd(built_confs(), built_saved_searches()) as fake:
        yield fake, SettingsClient(plain_app, fake.uri)


@pytest.fixture
def with_detections(fixture_app: Path) -> Iterator[Tuple[FakeSplunkd, SettingsClient]]:
    confs = built_confs()
    # What ucc-gen writes into ta_escape_to_host_settings.conf for the fixture's Analytics tab: one key per checkbox.
    confs["ta_escape_to_host_settings"]["analytics"] = {str(d["slug"]): "0" for d in DETECTIONS}
    with FakeSplunkd(confs, fixture_saved_searches()) as fake:
        yield fake, SettingsClient(fixture_app, fake.uri)


def macro_posts(fake: FakeSplunkd) -> Dict[str, str]:
    return {p.split("/")[-1]: params["definition"] for p, params in fake.posts("configs/conf-macros/")}


def test_list_shows_the_macros_current_definitions_not_the_stored_settings(shipped) -> None:
    fake, client = shipped
    fake.confs["macros"]["escape_time_window"]["definition"] = "120"              # an admin's direct edit
    fake.confs["macros"]["escape_allowed_host_paths"]["definition"] = '"/srv/data"'
    values = client.list("tunables")
    assert values["time_window"] == "120" and values["allowed_host_paths"] == "/srv/data"
    assert fake.confs["ta_escape_to_host_settings"]["tunables"]["time_window"] == "300"
    assert fake.posts() == []


def test_saving_the_page_as_loaded_overwrites_no_direct_edit(shipped) -> None:
    fake, client = shipped
    fake.confs["macros"]["escape_time_window"]["definition"] = "120"
    values = client.list("tunables")
    result = client.edit("tunables", values)
    assert "error" not in result, result
    assert macro_posts(fake) == {}
    assert fake.macro("escape_time_window") == "120"


def test_valid_save_rewrites_every_changed_tunable_macro_with_the_schema_renderer(shipped) -> None:
    fake, client = shipped
    result = client.edit("tunables", VALID)
    assert "error" not in result, result
    assert macro_posts(fake) == {
        "escape_allowed_host_paths": '"/var/log,/opt/data"', "escape_privileged_threshold": "7",
        "escape_syscall_allowlist": '"keyctl"', "escape_time_window": "600",
        "escape_restricted_host_dirs": '"C:/Windows,//fs01/share"', "escape_allowed_kernel_modules": '"nvme_pci"'}
    assert all(set(params) == {"definition", "output_mode"} for _, params in fake.posts("configs/conf-macros/"))
    assert all(is_single_literal(fake.macro(m)) for m in TUNABLE_MACROS)
    answered = result["entries"]["tunables"]
    assert answered["restricted_host_dirs"] == "C:/Windows,//fs01/share" and answered["time_window"] == "600"
    assert client.list("tunables")["allowed_host_paths"] == "/var/log,/opt/data"


@pytest.mark.parametrize("field, value, message", [
    ("allowed_host_paths", "var/log", "'var/log' is not an absolute Unix path"),
    ("allowed_host_paths", '/var/log" | delete', "the character '\"' is not allowed"),
    ("allowed_host_paths", "/var/`escape_auditd`", "the character '`' is not allowed"),
    ("restricted_host_dirs", "Windows\\System32", "'Windows\\\\System32' is not a Windows directory: it has no drive letter (C:\\Windows)"),
    ("restricted_host_dirs", "C:Windows", "a drive letter must be followed by \\ or / (C:\\Windows)"),
    ("restricted_host_dirs", "\\\\fs01\\", "is not a UNC directory: it needs a server and a share"),
    ("allowed_host_paths", "/var/my logs", "'/var/my logs' contains a space, which is not allowed in a path"),
    ("syscall_allowlist", "execve", "'execve' is not one of the inspected syscalls"),
    ("allowed_kernel_modules", "mod[1]", "the character '[' is not allowed"),
    ("privileged_threshold", "100001", "100001 is out of range; use 0 to 100000"),
    ("time_window", "0", "0 is out of range; use 1 to 86400"),
    ("time_window", "300\n| delete", "the character '\\n' is not allowed"),
    ("allowed_host_paths", "/\u00e9t\u00e9", "is not allowed"),
    ("allowed_kernel_modules", "m" * 5000, "at most 4096 are allowed"),
])
def test_an_invalid_value_is_refused_with_what_is_allowed_and_nothing_is_written(shipped, field: str, value: str,
                                                                                  message: str) -> None:
    fake, client = shipped
    before = {m: fake.macro(m) for m in TUNABLE_MACROS + SCOPE_MACROS}
    result = client.edit("tunables", dict(VALID, **{field: value}))
    assert "REST Error [400]" in result.get("error", ""), result
    assert message in result["error"]
    assert fake.posts() == []   # neither a macro nor the settings stanza
    assert {m: fake.macro(m) for m in before} == before


@pytest.mark.parametrize("tab, data", [
    ("data_sources", {"auditd_indexes": 'os" OR index="*'}),
    ("data_sources", {"kube_cluster_field": "host | delete"}),
    ("data_sources", {"esxi_sourcetypes": "vmw-syslog`x`"}),
    ("data_sources", {"docker_indexes": "Main"}),
])
def test_hostile_data_source_values_are_refused(shipped, tab: str, data: Dict[str, str]) -> None:
    fake, client = shipped
    result = client.edit(tab, data)
    assert "REST Error [400]" in result.get("error", ""), result
    assert fake.posts() == []


def test_logging_tab_touches_no_macro(shipped) -> None:
    fake, client = shipped
    result = client.edit("logging", {"loglevel": "DEBUG"})
    assert "error" not in result, result
    assert fake.posts() == [("configs/conf-ta_escape_to_host_settings/logging", {"output_mode": "json",
                                                                                "loglevel": "DEBUG"})]
    assert not any("conf-macros" in path or "saved/" in path for _, path, _ in fake.log)


def settings_state(fake: FakeSplunkd) -> Tuple[Dict[str, str], Dict[str, Dict[str, str]], Dict[str, Dict[str, str]]]:
    """Everything a save may write: the macros, the settings stanzas and the saved searches."""
    return ({m: fake.macro(m) for m in TUNABLE_MACROS + SCOPE_MACROS},
            {n: dict(s) for n, s in fake.confs["ta_escape_to_host_settings"].items()},
            {n: dict(s) for n, s in fake.saved.items()})


def test_a_failed_macro_write_restores_everything_the_save_wrote_and_says_so(shipped) -> None:
    fake, client = shipped
    before = settings_state(fake)
    fake.fail[("POST", "configs/conf-macros/escape_time_window")] = (500, "disk full")
    result = client.edit("tunables", VALID)
    error = result.get("error", "")
    assert "entries" not in result and "REST Error [500]" in error, result
    assert error.endswith("Saving tunables failed: could not write escape_time_window (disk full). Nothing was "
                          "changed: escape_syscall_allowlist, escape_privileged_threshold, escape_allowed_host_paths "
                          "and the tab's stored settings restored to the values from before the save."), error
    assert settings_state(fake) == before
    assert client.list("tunables") == client.list("tunables") and client.list("tunables")["time_window"] == "300"


def test_a_restore_that_fails_too_is_named_as_still_changed(shipped) -> None:
    fake, client = shipped
    before = settings_state(fake)
    fake.fail[("POST", "configs/conf-macros/escape_time_window")] = (500, "disk full")
    fake.fail_after[("POST", "configs/conf-macros/escape_privileged_threshold")] = (1, 503, "splunkd restarting")
    error = client.edit("tunables", VALID).get("error", "")
    assert ("Restoring failed too, so these are still changed: escape_privileged_threshold (splunkd restarting). "
            "Restored: escape_syscall_allowlist, escape_allowed_host_paths and the tab's stored settings.") in error
    after = settings_state(fake)
    assert after[0]["escape_privileged_threshold"] == "7" and after[1] == before[1]
    assert {m: d for m, d in after[0].items() if m != "escape_privileged_threshold"} == \
        {m: d for m, d in before[0].items() if m != "escape_privileged_threshold"}


def test_a_failed_stanza_write_writes_no_macro(shipped) -> None:
    fake, client = shipped
    before = settings_state(fake)
    fake.fail[("POST", "configs/conf-ta_escape_to_host_settings/tunables")] = (500, "disk full")
    result = client.edit("tunables", VALID)
    assert "REST Error [500]" in result.get("error", ""), result
    assert macro_posts(fake) == {} and settings_state(fake) == before


def test_unknown_arguments_are_refused_before_anything_runs(shipped) -> None:
    fake, client = shipped
    result = client.edit("tunables", dict(VALID, search="| delete"))
    assert result == {"error": 'Argument "search" is not supported by this handler.'}
    assert fake.log == []


def test_data_sources_rewrite_the_scope_macros_and_cluster_field(shipped) -> None:
    fake, client = shipped
    values = client.list("data_sources")
    assert values["auditd_sourcetypes"] == "linux:audit,auditd" and values["auditd_indexes"] == ""
    values.update(auditd_indexes="os, linux", esxi_sourcetypes="vmw-syslog", kube_cluster_field="cluster_name",
                  scope_status="typed into the read-only box")
    result = client.edit("data_sources", values)
    assert "error" not in result, result
    assert macro_posts(fake) == {
        "escape_auditd": '((index="os" OR index="linux") (sourcetype="linux:audit" OR sourcetype="auditd"))',
        "escape_esxi": 'sourcetype="vmw-syslog"', "escape_kube_cluster": "cluster_name"}
    assert all(is_scope_expression(fake.macro(m)) for m in SCOPE_MACROS if m != "escape_kube_cluster")
    stored = [params for path, params in fake.posts("configs/conf-ta_escape_to_host_settings/")]
    assert len(stored) == 1 and "scope_status" not in stored[0]
    assert client.list("data_sources")["auditd_indexes"] == "os,linux"


def test_a_scope_edited_in_settings_is_shown_with_a_note(shipped) -> None:
    fake, client = shipped
    fake.confs["macros"]["escape_docker"]["definition"] = "index=containers sourcetype=docker*"
    values = client.list("data_sources")
    assert "NOTE: Docker daemon, events and inspect: the macro escape_docker was edited outside this page" \
        in values["scope_status"]


def test_no_warning_while_no_detection_is_enabled(with_detections) -> None:
    fake, client = with_detections
    assert client.list("data_sources")["scope_status"].startswith("Every enabled analytic's data scope")
    assert not any(path == "search/jobs" for _, path, _ in fake.log)


def test_warnings_while_an_enabled_analytics_scope_names_no_index_or_finds_no_events(with_detections) -> None:
    fake, client = with_detections
    result = client.edit("analytics", {"linux_fixture_chain": "1", "kube_fixture_single": "1"})
    assert "error" not in result, result
    fake.confs["macros"]["escape_kube_audit"]["definition"] = \
        '(index="k8s" (sourcetype="kube:apiserver-audit" OR source="kubernetes"))'
    fake.counts.update(escape_auditd=0, escape_kube_audit=4211)
    status = client.list("data_sources")["scope_status"]
    assert status.splitlines() == [
        ("WARNING: Linux auditd (escape_auditd, used by the enabled linux analytic) names no index; add the index "
        "that holds these events."),
        ("WARNING: Linux auditd (escape_auditd, used by the enabled linux analytic) found no events in the last 24 "
        "hours; check the indexes and sourcetypes.")]
    searches = sorted(params["search"] for method, path, params in fake.log if path == "search/jobs")
    assert searches == ["| tstats count where `escape_auditd` earliest=-24h latest=now",
                        "| tstats count where `escape_kube_audit` earliest=-24h latest=now"]
    fake.confs["macros"]["escape_auditd"]["definition"] = '(index="os" (sourcetype="linux:audit" OR sourcetype="auditd"))'
    fake.counts["escape_auditd"] = 93
    assert client.list("data_sources")["scope_status"].startswith("Every enabled analytic's data scope")


def test_analytics_enable_and_disable_saved_searches(with_detections) -> None:
    fake, client = with_detections
    assert client.list("analytics") == {**client.list("analytics"), "linux_fixture_chain": "0", "kube_fixture_single": "0"}
    result = client.edit("analytics", {"linux_fixture_chain": "1", "kube_fixture_single": "0",
                                       "esxi_fixture_threshold": "1", "linux_fixture_chain_sysmon": "0"})
    assert "error" not in result, result
    assert sorted((p.split("/")[-1], params["disabled"]) for p, params in fake.posts("saved/searches/")) == [
        (saved_search(DETECTIONS[3]), "0"), (CHAIN, "0")]
    assert fake.saved[CHAIN]["disabled"] == "0" and fake.saved[KUBE]["disabled"] == "1"
    assert result["entries"]["analytics"]["linux_fixture_chain"] == "1"
    assert not any("conf-macros" in path and method == "POST" for method, path, _ in fake.log)


def test_a_new_time_window_moves_the_chain_detections_dispatch_window(with_detections) -> None:
    fake, client = with_detections
    result = client.edit("tunables", {"time_window": "900"})
    assert "error" not in result, result
    assert fake.macro("escape_time_window") == "900"
    assert fake.saved[CHAIN]["dispatch.earliest_time"] == "-85m@m"          # 10 min lag + 60 min period + 15 min
    assert fake.saved[CHAIN_SYSMON]["dispatch.earliest_time"] == "-35m@m"   # 5 min lag + 15 min period + 15 min
    assert fake.saved[KUBE]["dispatch.earliest_time"] == "-70m@m"           # single detections keep their window
    fake.log.clear()
    assert "error" not in client.edit("tunables", {"allowed_host_paths": "/var/log"})
    assert fake.posts("saved/searches/") == []


def test_a_failed_saved_search_write_restores_the_ones_written_before(with_detections) -> None:
    fake, client = with_detections
    before = settings_state(fake)
    fake.fail[("POST", "saved/searches/" + CHAIN)] = (403, "You do not have permission")
    result = client.edit("analytics", {"linux_fixture_chain": "1", "kube_fixture_single": "1"})
    error = result.get("error", "")
    assert "REST Error [403]" in error and "could not write {} (You do not have permission)".format(CHAIN) in error
    assert "Nothing was changed: {} and the tab's stored settings restored".format(KUBE) in error, error
    assert settings_state(fake) == before


def test_a_failed_window_move_restores_the_time_window_macro(with_detections) -> None:
    fake, client = with_detections
    before = settings_state(fake)
    fake.fail[("POST", "saved/searches/" + CHAIN_SYSMON)] = (500, "disk full")
    error = client.edit("tunables", {"time_window": "900"}).get("error", "")
    assert "could not write {} dispatch.earliest_time (disk full)".format(CHAIN_SYSMON) in error, error
    assert ("Nothing was changed: {} dispatch.earliest_time, escape_time_window and the tab's stored settings "
            "restored".format(CHAIN)) in error
    assert settings_state(fake) == before


def test_a_detection_whose_saved_search_is_not_installed_is_noted_not_fatal(with_detections) -> None:
    fake, client = with_detections
    del fake.saved[CHAIN_SYSMON]
    assert "NOTE: saved search {} is not installed".format(CHAIN_SYSMON) in client.list("data_sources")["scope_status"]
    assert client.list("analytics")["linux_fixture_chain_sysmon"] == "0"
    result = client.edit("tunables", {"time_window": "120"})
    assert "error" not in result, result
    assert [p.split("/")[-1] for p, _ in fake.posts("saved/searches/")] == [CHAIN]   # the installed chain only
    result = client.edit("analytics", {"linux_fixture_chain_sysmon": "1"})
    assert "REST Error [404]" in result.get("error", "") and "could not write " + CHAIN_SYSMON in result["error"]


CORRELATION = "Escape to Host - Linux Escape Correlation"  # the producer both chain detections read


def test_a_new_time_window_keeps_the_shipped_chain_correlation_overlapping_per_the_lint(shipped) -> None:
    """The chain detections read the one Linux correlation pass (issue 17): its search is the one whose window must
    cover a cron period plus the time window, so a new time window moves it and only it."""
    fake, client = shipped
    names = [CORRELATION]
    if not all(name in fake.saved for name in names):
        pytest.skip("the build renders no savedsearches.conf yet")

    def overlap_problems(name: str, window: int) -> list:
        view = spllint.DetectionView(slug=name, type="chain", search="", replay_pipes=0, stanza=fake.saved[name],
                                     data_scope=(), time_window_seconds=window)
        return [p for p in spllint.lint_schedule(view, None) if "overlap" in p]  # type: ignore[arg-type]

    assert names and all(overlap_problems(n, 3600) for n in names)   # the shipped windows are too short for 1 h
    result = client.edit("tunables", {"time_window": "3600"})
    assert "error" not in result, result
    assert set(names) <= {p.split("/")[-1] for p, _ in fake.posts("saved/searches/")}
    assert all(overlap_problems(n, 3600) == [] for n in names)
