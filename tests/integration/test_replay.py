"""The replay (./build.sh replay): inputs, event breaking, base search, commands over SCP v2, alert rows, errors.

The fixture detections use test-only commands (tests/integration/harness/commands/); the last test replays the
samples of every real detection in content/detections/, so each detection that lands is covered automatically.
"""
import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from tests.conftest import DATA, ROOT, tools_env
from tests.integration.harness.replay_fixture import PROPS, detection, make_app, make_content
from tools import content, replay
from tools.inputs import InputSpec, load_events

AUDIT = DATA / "lab-run1" / "audit-session1.log.gz"
RHEL7 = DATA / "public" / "linux_auditd" / "go-libaudit_audit-rhel7.log"
DOCKERD = DATA / "lab-run1" / "dockerd-debug.log.gz"
EVENTS = DATA / "lab-run1" / "docker-events.jsonl"
KUBE = DATA / "public" / "kube_apiserver"
WINDOWS = DATA / "public" / "wineventlog"
ALERT_KEYS = ["analytic", "detection", "time", "host", "severity", "summary", "evidence"]


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A slice of the lab's raw audit log (gzipped, 0x1D kept): its first 2500 records plus every nsenter record."""
    lines = gzip.decompress(AUDIT.read_bytes()).split(b"\n")
    keep = [line for n, line in enumerate(lines) if line.strip() and (n < 2500 or b"nsenter" in line)]
    path = tmp_path_factory.mktemp("audit") / "audit-slice.log.gz"
    path.write_bytes(gzip.compress(b"\n".join(keep) + b"\n"))
    return path


@pytest.fixture(scope="module")
def app(built_app: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_app(built_app, tmp_path_factory.mktemp("app"))


def run(tmp_path: Path, app: Path, inputs: List[str], *detections: Dict[str, Any], settings: List[str] = (),
        extra: List[str] = ()) -> "subprocess.CompletedProcess[str]":
    folder = make_content(tmp_path / "content", *(detections or (detection(),)))
    args = [sys.executable, "-m", "tools.replay", "--content", str(folder), "--app", str(app)]
    for spec in inputs:
        args += ["--input", spec]
    for setting in settings:
        args += ["--set", setting]
    return subprocess.run(args + list(extra), capture_output=True, text=True, cwd=ROOT, env=tools_env(), timeout=300)


def alerts_of(result: "subprocess.CompletedProcess[str]") -> List[Dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def audit_lines(path: Path) -> List[bytes]:
    return [line for line in gzip.decompress(path.read_bytes()).split(b"\n") if line.strip()]


def test_alert_rows_have_exactly_the_contract_fields_and_complete_raw_evidence(tmp_path: Path, app: Path, audit: Path) -> None:
    result = run(tmp_path, app, ["linux:audit={}".format(audit)])
    alerts = alerts_of(result)
    nsenter = [line.decode() for line in audit_lines(audit) if b"nsenter" in line.lower()]
    assert len(alerts) == len(nsenter) > 10
    for alert in alerts:
        assert list(alert) == ALERT_KEYS
        assert alert["analytic"] == "linux" and alert["detection"] == "Escape to Host - Fixture Nsenter Seen - Rule"
        assert alert["severity"] == "critical"  # the row's escape_severity wins over the YAML default
        assert alert["host"] == "replay"
        assert alert["time"].endswith("Z") and alert["time"][:4] == "2026"
    # escape_evidence_cd holds this event and the one before it: both come back as complete _raw, 0x1D included.
    assert alerts[1]["evidence"][0] in nsenter and alerts[1]["evidence"][1] == alerts[0]["evidence"][0]
    assert any("\x1d" in e for a in alerts for e in a["evidence"])
    assert {e for a in alerts for e in a["evidence"]} == set(nsenter)
    assert "alert(s)" in result.stderr and result.stdout.count("\n") == len(alerts)


def test_events_reach_the_command_newest_first_in_chunks_of_one_process(tmp_path: Path, app: Path, audit: Path) -> None:
    everything = detection(search="`escape_auditd`\n| escapereplayprobe\n| `escape_linux_fixture_nsenter_filter`")
    alerts = alerts_of(run(tmp_path, app, ["linux:audit={}".format(audit)], everything))
    assert len(alerts) == len(audit_lines(audit)) > 2000
    times = [a["time"] for a in alerts]
    assert times == sorted(times, reverse=True)
    summaries = [a["summary"] for a in alerts]
    assert summaries[0].endswith("position=1 chunk=1")
    assert summaries[1000].endswith("position=1001 chunk=2")  # one process numbered records across chunks
    assert summaries[-1].endswith("position={} chunk={}".format(len(alerts), (len(alerts) + 999) // 1000))


def test_state_dir_reaches_the_commands(tmp_path: Path, app: Path, audit: Path) -> None:
    state = tmp_path / "state"
    alerts = alerts_of(run(tmp_path, app, ["linux:audit={}".format(audit)], extra=["--state", str(state)]))
    assert alerts and all(a["summary"].startswith("state={} ".format(state)) for a in alerts)
    fresh = alerts_of(run(tmp_path / "again", app, ["linux:audit={}".format(audit)]))
    assert "escape-replay-state-" in fresh[0]["summary"]


def test_set_renders_tunables_with_the_setup_page_code_and_overrides_filters(tmp_path: Path, app: Path, audit: Path) -> None:
    tuned = detection(search="`escape_auditd` nsenter\n| escapereplayprobe severity=`escape_time_window`\n"
                             "| `escape_linux_fixture_nsenter_filter`")
    base = alerts_of(run(tmp_path / "a", app, ["linux:audit={}".format(audit)], tuned, settings=["escape_time_window=0600"]))
    assert base and {a["severity"] for a in base} == {"600"}  # rendered ("0600" -> 600) and expanded in the arguments
    filtered = alerts_of(run(tmp_path / "b", app, ["linux:audit={}".format(audit)], tuned, settings=[
        'escape_linux_fixture_nsenter_filter=search NOT escape_severity=300']))
    assert filtered == []
    scoped = alerts_of(run(tmp_path / "c", app, ["linux:audit,host=node7={}".format(audit)], settings=[
        'escape_auditd=sourcetype="linux:audit" host=NODE*']))
    assert scoped and {a["host"] for a in scoped} == {"node7"}  # case-insensitive wildcard on host
    nothing = alerts_of(run(tmp_path / "d", app, ["linux:audit={}".format(audit)], settings=[
        'escape_auditd=sourcetype="auditd"']))
    assert nothing == []


@pytest.mark.parametrize("args, message", [
    (["--input", "nosuch:type=/dev/null"], "unknown sourcetype 'nosuch:type'"),
    (["--input", "linux:audit=/no/such/file.log"], "cannot read /no/such/file.log"),
    (["--input", "linux:audit"], "is not SOURCETYPE"),
    (["--input", "docker:daemon={}".format(DOCKERD), "--set", "escape_no_such_macro=1"], "escape_no_such_macro: unknown macro"),
    (["--input", "linux:audit={}".format(RHEL7), "--set", "escape_time_window=0"], "out of range"),
    (["--input", "linux:audit={}".format(RHEL7), "--set", 'escape_allowed_host_paths=/var/log"|delete'], "not allowed"),
    (["--input", "linux:audit={}".format(RHEL7), "--set", "escape_auditd=sourcetype=linux:audit | delete"], "a pipe"),
    (["--input", "linux:audit={}".format(RHEL7), "--set", "escape_auditd=`escape_docker`"], "a backtick"),
    (["--input", "linux:audit={}".format(RHEL7), "--set", "escape_auditd=count>5"], "not part of a pure"),
    (["--input", "linux:audit={}".format(RHEL7), "--set", "escape_linux_fixture_nsenter_filter=where 1=1"], "search <terms>"),
])
def test_errors_exit_non_zero_with_a_clear_message(tmp_path: Path, app: Path, args: List[str], message: str) -> None:
    folder = make_content(tmp_path / "content", detection())
    result = subprocess.run([sys.executable, "-m", "tools.replay", "--content", str(folder), "--app", str(app)] + args,
                            capture_output=True, text=True, cwd=ROOT, env=tools_env(), timeout=120)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and result.stdout == ""


def test_a_base_search_the_replay_does_not_implement_is_refused(tmp_path: Path, app: Path) -> None:
    bad = detection(search="`escape_auditd` count>5\n| escapereplayprobe\n| `escape_linux_fixture_nsenter_filter`")
    result = run(tmp_path, app, ["linux:audit={}".format(RHEL7)], bad)
    assert result.returncode == 2 and "count>5" in result.stderr


def test_a_failing_command_is_an_error_with_its_message(tmp_path: Path, app: Path, audit: Path) -> None:
    bad = detection(search="`escape_auditd` nsenter\n| escapepassthrough limit=zero\n| `escape_linux_fixture_nsenter_filter`")
    result = run(tmp_path, app, ["linux:audit={}".format(audit)], bad)
    assert result.returncode == 2 and "limit" in result.stderr


@pytest.mark.parametrize("props", ["add-on", "fixture"])
def test_owned_sourcetypes_break_and_stamp_through_props(tmp_path: Path, built_app: Path, props: str) -> None:
    app = make_app(built_app, tmp_path / "app", props=None if props == "add-on" else PROPS)
    creates = detection(search='`escape_docker` "containers/create"\n| escapereplayprobe\n'
                               "| `escape_linux_fixture_nsenter_filter`")
    alerts = alerts_of(run(tmp_path, app, ["docker:daemon={}".format(DOCKERD), "docker:events={}".format(EVENTS)], creates))
    lines = [line for line in gzip.decompress(DOCKERD.read_bytes()).decode().split("\n") if "containers/create" in line]
    assert sorted(e for a in alerts for e in a["evidence"][:1]) == sorted(lines)
    first = min(alerts, key=lambda a: a["time"])
    stamp = first["evidence"][0].split('"')[1]  # time="2026-11-29T03:42:...Z"
    assert first["time"] == stamp[:23] + "Z"


def test_base_searches_see_search_time_fields_eventtypes_and_tags(tmp_path: Path, app: Path) -> None:
    by_field = detection(search="`escape_docker` escape_docker_api_call=/containers/create\n| escapereplayprobe\n"
                                "| `escape_linux_fixture_nsenter_filter`")
    by_eventtype = detection(slug="linux_fixture_eventtype", title="Fixture Eventtype",
                             search="`escape_docker` eventtype=escape_docker_daemon_create_body tag=escape_to_host\n"
                                    "| escapereplayprobe\n| `escape_linux_fixture_eventtype_filter`")
    alerts = alerts_of(run(tmp_path, app, ["docker:daemon={}".format(DOCKERD)], by_field, by_eventtype))
    text = gzip.decompress(DOCKERD.read_bytes()).decode()
    calls = [a for a in alerts if a["detection"].endswith("Fixture Nsenter Seen - Rule")]
    bodies = [a for a in alerts if a["detection"].endswith("Fixture Eventtype - Rule")]
    assert len(calls) == text.count('msg="Calling POST /v1.41/containers/create') > 10
    assert len(bodies) == text.count('msg="form data: ') > 10


def test_an_owned_sourcetype_without_props_or_with_an_unknown_key_is_refused(
        tmp_path: Path, built_app: Path) -> None:
    bare = make_app(built_app, tmp_path / "bare", props="")
    result = run(tmp_path / "one", bare, ["docker:daemon={}".format(DOCKERD)])
    assert result.returncode == 2 and "has no [docker:daemon] stanza" in result.stderr
    sed = make_app(built_app, tmp_path / "sed", props="[docker:daemon]\nSHOULD_LINEMERGE = false\nSEDCMD-x = s/a/b/\n"
                                                        "TIME_FORMAT = %s\n")
    result = run(tmp_path / "two", sed, ["docker:daemon={}".format(DOCKERD)])
    assert result.returncode == 2 and "SEDCMD-x is not an index-time setting" in result.stderr


def test_documented_formats_of_borrowed_sourcetypes() -> None:
    kube = load_events([InputSpec("kube:apiserver-audit", KUBE / "falco_create_nginx_pod_privileged.json")],
                              ROOT / "output" / "TA_escape_to_host")
    assert len(kube) == 1 and kube[0]["_time"] == repr(1540476552.572676)  # requestReceivedTimestamp
    sysmon = load_events([InputSpec("XmlWinEventLog", WINDOWS / "splunk_attack_data_T1202_windows-sysmon.log")],
                                ROOT / "output" / "TA_escape_to_host")
    text = (WINDOWS / "splunk_attack_data_T1202_windows-sysmon.log").read_text()
    assert len(sysmon) == text.count("</Event>") > 0
    assert sysmon[0]["source"] == "XmlWinEventLog:Microsoft-Windows-Sysmon/Operational"
    assert sysmon[0]["host"] == "win-dc-emcginnis-47905-664.attackrange.local"
    classic = load_events([InputSpec("WinEventLog", WINDOWS / "splunk_attack_data_T1202_windows-security_4688.log",
                                                   host="dc1")], ROOT / "output" / "TA_escape_to_host")
    raw = (WINDOWS / "splunk_attack_data_T1202_windows-security_4688.log").read_text()
    assert len(classic) == raw.count("\nLogName=") + raw.startswith("LogName=") > 0
    assert all(e["_raw"].startswith("0") or e["_raw"][:2].isdigit() for e in classic)
    assert classic[0]["source"] == "WinEventLog:Security" and classic[0]["host"] == "dc1"


def test_a_pretty_printed_kube_event_is_one_event(tmp_path: Path) -> None:
    event = json.loads((KUBE / "falco_create_nginx_pod_privileged.json").read_text())
    path = tmp_path / "pretty.json"
    path.write_text(json.dumps(event, indent=2))
    events = load_events([InputSpec("kube:apiserver-audit", path)], ROOT / "output" / "TA_escape_to_host")
    assert len(events) == 1 and json.loads(str(events[0]["_raw"])) == event


def test_auditd_interpreted_events_split_on_dashes(tmp_path: Path) -> None:
    text = ("----\ntype=PROCTITLE msg=audit(11/29/2026 03:45:40.426:9727) : proctitle=nsenter\n"
            "type=SYSCALL msg=audit(11/29/2026 03:45:40.426:9727) : arch=x86_64 syscall=setns\n"
            "----\ntype=SYSCALL msg=audit(11/29/2026 03:45:41.000:9728) : arch=x86_64 syscall=execve\n")
    path = tmp_path / "ausearch.log.gz"
    path.write_bytes(gzip.compress(text.encode()))
    events = load_events([InputSpec("auditd", path)], ROOT / "output" / "TA_escape_to_host")
    assert [e["_raw"].count("\n") for e in events] == [1, 0]
    assert events[0]["_time"] == repr(1795923940.426)


# ---------------------------------------------------------------- every real detection, from its own samples
DETECTIONS = content.detections()


def check_samples(item: content.Detection, content_dir: Path, app_dir: Path) -> None:
    """Each sample file replayed alone through the real commands: every `fires` file gives at least one alert of the
    detection, every `silent` file none (a total over all of a detection's files hid a file that never fired)."""
    for kind in ("fires", "silent"):
        for spec in replay.sample_specs(item, kind):
            # Panther's vendor test cases (panther_k8s_cases_*.jsonl) carry no time: the check replays them at 0.
            alerts = [a for a in replay.replay([spec], content_dir, app_dir, only=[item.slug], require_time=False)
                      if a["detection"] == item.stanza]
            if kind == "fires":
                assert alerts, "{} did not fire on samples.fires {} replayed alone".format(item.slug, spec.path.name)
            else:
                assert not alerts, "{} fired on samples.silent {}: {}".format(item.slug, spec.path.name, alerts[:2])


# Detections whose samples show a real gap, found by this test and reported to their authors. Not strict: the entry
# shows as XPASS once fixed, and must then be removed.
KNOWN_GAPS: Dict[str, str] = {}


@pytest.mark.parametrize("item", [pytest.param(d, marks=pytest.mark.xfail(reason=KNOWN_GAPS[d.slug], strict=False))
                                  if d.slug in KNOWN_GAPS else d for d in DETECTIONS], ids=[d.slug for d in DETECTIONS])
def test_detection_fires_on_its_samples_and_stays_silent_on_its_benign_ones(item: content.Detection, built_app: Path) -> None:
    check_samples(item, content.CONTENT, built_app)


def test_the_sample_check_fails_when_a_benign_sample_fires(tmp_path: Path, app: Path, audit: Path) -> None:
    quiet = detection(samples={"fires": [{"sourcetype": "linux:audit", "path": str(audit)}],
                               "silent": [{"sourcetype": "linux:audit", "path": str(RHEL7)}]})
    folder = make_content(tmp_path / "content", quiet)
    check_samples(content.detections(folder)[0], folder, app)  # fires on the slice, silent on the RHEL 7 log
    noisy = detection(samples={"fires": [{"sourcetype": "linux:audit", "path": str(audit)}],
                               "silent": [{"sourcetype": "linux:audit", "path": str(audit)}]})
    folder = make_content(tmp_path / "noisy", noisy)
    with pytest.raises(AssertionError, match="fired on samples.silent"):
        check_samples(content.detections(folder)[0], folder, app)


def test_the_sample_check_fails_when_one_fires_file_gives_nothing_on_its_own(tmp_path: Path, app: Path,
                                                                          audit: Path) -> None:
    """A fires file that gives no alert replayed alone fails, even when another fires file of the detection fires."""
    mixed = detection(samples={"fires": [{"sourcetype": "linux:audit", "path": str(audit)},
                                         {"sourcetype": "linux:audit", "path": str(RHEL7)}],
                               "silent": [{"sourcetype": "linux:audit", "path": str(RHEL7)}]})
    folder = make_content(tmp_path / "mixed", mixed)
    with pytest.raises(AssertionError, match="did not fire on samples.fires {} replayed alone".format(RHEL7.name)):
        check_samples(content.detections(folder)[0], folder, app)


def test_the_build_ships_the_rendered_savedsearches_conf(built_app: Path) -> None:
    path = built_app / "default" / "savedsearches.conf"
    if DETECTIONS:
        assert path.read_text(encoding="utf-8") == content.render_savedsearches_conf()
    else:
        assert not path.exists()


def test_build_sh_replay_prints_only_alerts_on_stdout(tmp_path: Path) -> None:
    result = subprocess.run(["./build.sh", "replay", "--input", "linux:audit={}".format(RHEL7)], capture_output=True,
                            text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    assert all(json.loads(line)["detection"] for line in result.stdout.splitlines())
    assert "alert(s)" in result.stderr
    bad = subprocess.run(["./build.sh", "replay", "--input", "linux:audit=/no/such"], capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    assert bad.returncode == 2 and "cannot read /no/such" in bad.stderr and bad.stdout == ""


def test_plan_lists_replayed_pipes_and_what_only_splunk_confirms(tmp_path: Path) -> None:
    tail = detection(search="`escape_auditd` nsenter\n| escapereplayprobe\n| fields host\n"
                            "| `escape_linux_fixture_nsenter_filter`")
    text = replay.plan(make_content(tmp_path / "content", tail))
    assert "| Escape to Host - Fixture Nsenter Seen - Rule | `` escapereplayprobe `` | `` fields host ``; dispatch" in text


def test_commands_get_every_field_unless_they_declare_required_fields(app: Path) -> None:
    events: List[Dict[str, Any]] = [{"_raw": "a b", "_time": "2.0", "_cd": "0:1", "host": "h", "sourcetype": "s",
                                     "escape_extra": "x"}]
    asked: List[Any] = []

    def rows(required: Any) -> List[Dict[str, Any]]:
        asked.append(required)
        return replay.project(events, required)

    everything = replay.run_pipe("escapepassthrough", rows, {}, app, None, "t")
    assert asked == [None] and everything[0]["escape_extra"] == "x" and everything[0]["sourcetype"] == "s"
    declared = replay.run_pipe("escapefieldsprobe", rows, {}, app, None, "t")
    assert asked[1] == ["_raw", "host"]
    assert declared[0]["escape_summary"] == "_cd,_raw,_time,host"
