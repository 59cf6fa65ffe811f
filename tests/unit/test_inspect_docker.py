"""Docker side of the containers analytic on the lab-run1 captures: dockerd --debug create bodies and docker inspect."""
import csv
import gzip
import json
from typing import Any, Dict, List

import pytest

from escape_engine import docker, gojson
from escape_engine.inspect import Inspector, run
from tests.conftest import DATA, ROOT

LAB = DATA / "lab-run1"
ALLOWED = "/var/log,/etc/localtime,/usr/share/zoneinfo"
# Quirk 5 of lab-run1's README: labelled attack by name, default spec; only auditd sees their attempt.
SPEC_CLEAN_ATTACKS = {"esc06a-unshare", "esc07a-keyctl"}
# Privileged look-alikes (README "How to use"): a privileged container is a spec finding whatever it then runs.
PRIVILEGED_LOOKALIKES = {"test-priv", "ben14-priv-agent"}


def lab_lines() -> List[bytes]:
    # Bytes split on b"\n" only, as the project's rules require for captured logs.
    return gzip.open(LAB / "dockerd-debug.log.gz").read().split(b"\n")


def ground_truth() -> List[Dict[str, str]]:
    with (LAB / "ground-truth-dockerd.tsv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def records(lines: List[bytes], newest_first: bool = True) -> List[Dict[str, Any]]:
    result = [{"_raw": line.decode("utf-8"), "_cd": "0:{}".format(number), "host": "lab", "source": "dockerd"}
              for number, line in enumerate(lines, start=1) if line.strip()]
    return result[::-1] if newest_first else result


@pytest.fixture(scope="module")
def daemon_rows() -> List[Dict[str, Any]]:
    return list(run(records(lab_lines()), allowed_host_paths=ALLOWED))


def test_every_attack_create_body_fires_and_no_benign_one(daemon_rows: List[Dict[str, Any]]) -> None:
    fired = {r["escape_container"] for r in daemon_rows}
    for row in ground_truth():
        name = row["container"]
        if not row["api_call"].startswith("POST /v1.41/containers/create"):
            continue
        if row["label"] == "attack" and name not in SPEC_CLEAN_ATTACKS:
            assert name in fired, name
        elif name not in PRIVILEGED_LOOKALIKES:
            assert name not in fired, name
    assert PRIVILEGED_LOOKALIKES <= fired
    assert not SPEC_CLEAN_ATTACKS & fired


def test_body_is_joined_to_the_name_and_both_lines_are_evidence(daemon_rows: List[Dict[str, Any]]) -> None:
    truth = {r["container"]: int(r["line_in_file"]) for r in ground_truth()}
    by_name = {r["escape_container"]: r for r in daemon_rows}
    sock = by_name["esc04-sock"]
    form_line = truth["esc04-sock"]
    assert sock["escape_evidence_cd"] == ["0:{}".format(form_line), "0:{}".format(form_line - 1)]
    assert sock["escape_severity"] == "critical" and sock["escape_finding"] == "host_path"
    assert "docker.sock" in sock["escape_detail"]
    assert by_name["esc01b-nsenter-unpriv"]["escape_finding"] == "host_pid"
    assert by_name["esc01b-nsenter-unpriv"]["escape_severity"] == "high"
    assert sorted(by_name["esc09-capsysadmin"]["escape_finding"]) == ["capability", "seccomp_unconfined"]
    assert by_name["esc08-shocker"]["escape_finding"] == "capability"
    assert by_name["esc02-chroot"]["escape_workload"] == "docker:lab/esc02-chroot"


def test_oldest_first_and_chunked_input_give_the_same_rows(daemon_rows: List[Dict[str, Any]]) -> None:
    forward = list(run(records(lab_lines(), newest_first=False), allowed_host_paths=ALLOWED))
    assert sorted(r["escape_container"] for r in forward) == sorted(r["escape_container"] for r in daemon_rows)
    inspector = Inspector(allowed_host_paths=ALLOWED)
    chunked: List[Dict[str, Any]] = []
    stream = records(lab_lines())
    for start in range(0, len(stream), 7):   # pairs split across chunks
        chunked.extend(inspector.feed(stream[start:start + 7]))
    chunked.extend(inspector.flush())
    assert sorted((r["escape_container"], str(r["escape_evidence_cd"])) for r in chunked) == \
        sorted((r["escape_container"], str(r["escape_evidence_cd"])) for r in daemon_rows)


def test_a_create_without_its_body_is_a_data_health_record() -> None:
    form_line = next(int(r["line_in_file"]) for r in ground_truth() if r["container"] == "esc02-chroot")
    lines = lab_lines()
    assert b"form data" in lines[form_line - 1]
    lines = lines[:form_line - 1] + lines[form_line:]
    health = list(run(records(lines), allowed_host_paths=ALLOWED, mode="health"))
    assert [r["escape_container"] for r in health] == ["esc02-chroot"]
    assert health[0]["escape_finding"] == "create_body_missing"


def test_privileged_exec_body_is_reported() -> None:
    lines = [b'time="2026-11-29T03:43:31.412000000Z" level=debug msg="Calling POST /v1.41/containers/web/exec"',
             (b'time="2026-11-29T03:43:31.412400000Z" level=debug msg="form data: {\\"AttachStderr\\":true,'
             b'\\"Cmd\\":[\\"sh\\"],\\"Privileged\\":true,\\"User\\":\\"\\"}"')]
    rows = list(run(records(lines), allowed_host_paths=ALLOWED))
    assert rows[0]["escape_finding"] == "privileged" and rows[0]["escape_container"] == "web"
    assert rows[0]["escape_launch"] == "0"


def test_go_quoting_and_time_of_a_logrus_line() -> None:
    line = 'time="2026-11-29T03:43:44.707382126Z" level=debug msg="form data: {\\"a\\":\\"x\\\\u00e9\\\\n\\"}"'
    assert docker.message(line) == 'form data: {"a":"x\\u00e9\\n"}'
    assert docker.form_body(docker.message(line) or "") == gojson.Pairs([("a", "x\u00e9\n")])
    assert docker.line_time(line) == pytest.approx(1795923824.707382)
    assert docker.api_call("Calling POST /v1.41/containers/create?name=a%2Fb") == ("create", "a/b")
    assert docker.api_call("Calling POST /containers/create") == ("create", "")
    assert docker.api_call("Calling POST /v1.41/containers/abc/start") is None
    assert docker.api_call("Calling GET /v1.41/containers/create") is None


@pytest.mark.parametrize("escape", ["\\UFFFFFFFF", "\\U0011FFFF", "\\xZZ"])
def test_an_impossible_go_escape_makes_the_line_unreadable_not_a_crash(escape: str) -> None:
    line = 'time="2026-11-29T03:43:44.707382126Z" level=debug msg="form data: {}"'.format(escape)
    assert docker.message(line) is None
    rows = list(run([{"_raw": line, "_cd": "0:1", "host": "h"}], allowed_host_paths="/var/log"))
    assert rows == []


@pytest.mark.parametrize("host_config, finding, severity", [
    ({"Privileged": True}, "privileged", "critical"),
    ({"Binds": ["/:/host"]}, "host_path", "critical"),
    ({"Binds": ["/run/docker.sock:/var/run/docker.sock"]}, "host_path", "critical"),
    ({"Mounts": [{"Type": "bind", "Source": "/var/run/docker.sock", "Target": "/s"}]}, "host_path", "critical"),
    ({"Binds": ["/srv/app:/app"]}, "host_path", "high"),
    ({"PidMode": "host"}, "host_pid", "high"),
    ({"IpcMode": "host"}, "host_ipc", "high"),
    ({"NetworkMode": "host"}, "host_network", "medium"),
    ({"CapAdd": ["CAP_SYS_ADMIN"]}, "capability", "critical"),
    ({"SecurityOpt": ["apparmor:unconfined"]}, "apparmor_unconfined", "low"),
    ({"SecurityOpt": ["seccomp=unconfined"]}, "seccomp_unconfined", "low"),
    ({"Devices": [{"PathOnHost": "/dev/vda", "PathInContainer": "/dev/vda"}]}, "device", "critical"),
    ({"Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse"}]}, "device", "high"),
])
def test_docker_host_config_findings(host_config: Dict[str, Any], finding: str, severity: str) -> None:
    workload = docker.create_workload({"Image": "x", "HostConfig": host_config}, "c")
    from escape_engine.specrules import findings, parse_allowed_paths
    found = findings(workload, parse_allowed_paths(ALLOWED))
    assert [(f.finding, f.severity) for f in found] == [(finding, severity)]


@pytest.mark.parametrize("host_config", [
    {"Binds": ["labdata:/data"]}, {"Binds": ["/srv/data:/data:ro"]}, {"Mounts": [{"Type": "volume", "Source": "v"}]},
    {"SecurityOpt": ["label=user:system_u"]}, {"NetworkMode": "default", "PidMode": "", "CapAdd": ["NET_BIND_SERVICE"]},
])
def test_docker_clean_host_configs(host_config: Dict[str, Any]) -> None:
    from escape_engine.specrules import findings, parse_allowed_paths
    assert findings(docker.create_workload({"Image": "x", "HostConfig": host_config}, "c"),
                    parse_allowed_paths(ALLOWED)) == []


def test_docker_inspect_lab_capture() -> None:
    items = json.loads((LAB / "docker-inspect.json").read_text(encoding="utf-8"))
    raws = [json.dumps(item) for item in items]
    rows = list(run(({"_raw": raw, "_cd": "1:{}".format(i), "host": "lab"} for i, raw in enumerate(raws)),
                    allowed_host_paths=ALLOWED))
    fired = {r["escape_container"] for r in rows}
    names = {item["Name"].lstrip("/") for item in items}
    attacks = {n for n in names if n.startswith("esc")} - SPEC_CLEAN_ATTACKS
    assert attacks <= fired
    assert fired - attacks <= PRIVILEGED_LOOKALIKES
    refused = {r["escape_container"]: r["escape_state"] for r in rows}
    assert refused["esc01-nsenter"] == "created"     # a refused start is a config-only attempt, still reported
    # the whole array in one event works too
    assert len(list(run([{"_raw": json.dumps(items)}], allowed_host_paths=ALLOWED))) == len(rows)


def test_committed_lab_samples_are_the_lab_lines() -> None:
    samples = ROOT / "tests" / "knowledge" / "samples"
    lab = set(lab_lines())
    for name in ("dockerd_debug_attack_creates.log", "dockerd_debug_benign_creates.log"):
        lines = [line for line in (samples / name).read_bytes().split(b"\n") if line]
        assert lines and all(line in lab for line in lines), name
    inspect_items = {json.dumps(i, sort_keys=True) for i in json.loads((LAB / "docker-inspect.json").read_text())}
    for name in ("docker_inspect_attack.jsonl", "docker_inspect_benign.jsonl"):
        lines = [line for line in (samples / name).read_text().split("\n") if line]
        assert lines and all(json.dumps(json.loads(line), sort_keys=True) in inspect_items for line in lines), name


def test_docker_events_are_lifecycle_only_and_skipped_quietly() -> None:
    raws = [line.decode("utf-8") for line in (LAB / "docker-events.jsonl").read_bytes().split(b"\n") if line.strip()]
    inspector = Inspector(allowed_host_paths=ALLOWED)
    assert list(inspector.feed({"_raw": raw} for raw in raws)) == []
    assert inspector.counts == {} and inspector.report() == []
    assert docker.is_event(raws[0]) and not docker.is_event('{"kind":"Event"}')
