"""The replay as a detection engineer meets it (issue 19): every macro the docs say to edit can be --set, output a
person reads (--format, --fields), plain diagnostics (inputs nothing matched, binary or untimed files, one line per
repeated message, silence without input, progress), and the host of each event as Splunk would set it."""
import csv
import gzip
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import pytest

from tests.conftest import DATA, ROOT
from tools import content, replay
from tools.inputs import InputSpec, ReplayError, load_events, parse_input

KUBE = DATA / "public" / "kube_apiserver"
PRIVILEGED_POD = KUBE / "falco_create_nginx_pod_privileged.json"
SAMPLES = ROOT / "tests" / "knowledge" / "samples"
LINUX_CHAIN = SAMPLES / "linux_audit_lab-run1.log"
SYSMON = "XmlWinEventLog,source=XmlWinEventLog:Microsoft-Windows-Sysmon/Operational"


def run(built_app: Path, inputs: Sequence[str], only: Sequence[str] = (), settings: Sequence[str] = (),
        fields: Sequence[str] = ()) -> List[Dict[str, Any]]:
    extra: Dict[str, Any] = {"fields": fields} if fields else {}
    return replay.replay([parse_input(i) for i in inputs], content.CONTENT, built_app, settings, None, only, **extra)


def main(built_app: Path, capsys: pytest.CaptureFixture[str], *args: str) -> Tuple[int, str, str]:
    code = replay.main(["--app", str(built_app)] + list(args))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- 1. --set: every macro a user is told to edit
def documented_macros() -> List[str]:
    """The macros docs/tunables.md lists (tunables, other macros, filter hooks): the ones a user is told to edit."""
    text = (ROOT / "docs" / "tunables.md").read_text(encoding="utf-8")
    return sorted(set(re.findall(r"^\| `(escape_[a-z0-9_]+)`", text, re.MULTILINE)))


def test_set_accepts_every_documented_macro_with_its_shipped_value() -> None:
    names = documented_macros()
    assert "escape_allowed_workloads" in names and "escape_windows_hostprocess" in names and len(names) > 30
    shipped = {str(m["name"]): str(m["definition"]) for m in content.macros()}
    specs = content.tunable_specs()
    for name in names:
        value = specs[name].default if name in specs else shipped[name]
        rendered = replay.validate_overrides(["{}={}".format(name, value)], content.CONTENT)[name]
        assert rendered == shipped[name], name  # the shipped value is accepted and renders to itself


@pytest.mark.parametrize("setting, message", [
    ("escape_allowed_workloads=kube-system=calico", "must be namespace/serviceaccount=image[need;need...]"),
    ('escape_allowed_workloads="a/b=x" | delete', "is not allowed"),
    ("escape_windows_hostprocess=maybe", "use one of record, alert"),
    ("escape_esxi_vmx_crash_period=0", "whole number of 1 or more"),
    ("escape_kube_cluster=cluster name", "is not a field name"),
    ("escape_time_window=0", "out of range"),  # the setup page's own check
    ("escape_no_such=1", "unknown macro (the replay sets: escape_allowed_host_paths"),
])
def test_set_refuses_what_the_macro_cannot_hold_and_names_what_is_allowed(setting: str, message: str) -> None:
    with pytest.raises(ReplayError, match=re.escape(message)):
        replay.validate_overrides([setting], content.CONTENT)


def test_the_workload_allowlist_and_the_hostprocess_knob_reach_the_commands(built_app: Path) -> None:
    pod = "kube:apiserver-audit={}".format(PRIVILEGED_POD)
    assert len(run(built_app, [pod], ["kube_workload_host_access"])) == 1
    # An entry names what the workload needs (privileged here); without the need it would still alert in full.
    assert run(built_app, [pod], ["kube_workload_host_access"],
               ["escape_allowed_workloads=default/default=nginx[privileged]"]) == []
    sample = "{}={}".format(SYSMON, SAMPLES / "windows_sysmon_hostprocess_record.xml")
    only = ["windows_container_restricted_dir_write", "windows_container_restricted_dir_exec"]
    assert {a["severity"] for a in run(built_app, [sample], only)} == {"low"}
    alerting = run(built_app, [sample], only, ["escape_windows_hostprocess=alert"])
    assert len(alerting) == 2 and "low" not in {a["severity"] for a in alerting}


# ---------------------------------------------------------------- 2. output a person reads
def test_json_stays_the_default_and_fields_show_the_alert_rows_own_fields(
        built_app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--input", "kube:apiserver-audit={}".format(PRIVILEGED_POD), "--detection", "kube_workload_host_access")
    code, out, _ = main(built_app, capsys, *args)
    alerts = run(built_app, [args[1]], ["kube_workload_host_access"])
    assert code == 0 and out == "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in alerts)
    assert list(json.loads(out)) == ["analytic", "detection", "time", "host", "severity", "summary", "evidence"]
    code, out, _ = main(built_app, capsys, *args, "--fields", "escape_namespace,escape_workload")
    shown = json.loads(out)["fields"]
    assert code == 0 and shown["escape_namespace"] == "default" and shown["escape_workload"]


def test_table_and_csv_formats(built_app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--input", "kube:apiserver-audit={}".format(PRIVILEGED_POD), "--detection", "kube_workload_host_access",
            "--fields", "escape_namespace")
    code, out, _ = main(built_app, capsys, *args, "--format", "table")
    header, row = out.splitlines()
    assert code == 0 and header.split() == ["time", "severity", "host", "detection", "escape_namespace", "summary"]
    assert row.startswith("2018-10-25T14:09:12.572Z") and "Pod or Workload Spec Breaks Host Isolation" in row
    assert "Escape to Host -" not in row and row[header.index("escape_namespace"):].startswith("default ")
    code, out, _ = main(built_app, capsys, *args, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 1 and rows[0]["escape_namespace"] == "default"
    assert rows[0]["evidence"] == PRIVILEGED_POD.read_text().strip() and rows[0]["severity"]


# ---------------------------------------------------------------- 3. diagnostics
def test_an_input_no_base_search_matched_is_named(built_app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = main(built_app, capsys, "--input", "kube:apiserver-audit={}".format(PRIVILEGED_POD),
                          "--detection", "docker_container_host_access")
    assert code == 0 and out == ""
    assert "{}: 0 of 1 events matched the base search of the detection replayed: is the sourcetype " \
           "(kube:apiserver-audit) right?".format(PRIVILEGED_POD) in err


@pytest.mark.parametrize("data", [os.urandom(4096), bytes(range(128, 256)) * 32, b"MZ\x90\x00\x03" + bytes(500)],
                         ids=["random", "high-bytes", "nul"])
def test_binary_input_exits_2(built_app: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                              data: bytes) -> None:
    path = tmp_path / "blob.log"
    path.write_bytes(data)
    code, out, err = main(built_app, capsys, "--input", "vmw-syslog={}".format(path))
    assert code == 2 and out == "" and "is binary" in err


def test_a_file_without_any_timestamp_exits_2_and_never_gives_1970(
        built_app: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = main(built_app, capsys, "--input", "docker:daemon={}".format(PRIVILEGED_POD))
    assert code == 2 and out == "" and "none of its 1 event(s) has a timestamp" in err and "sourcetype" in err
    broken = tmp_path / "broken.json"
    broken.write_text('{"kind":"Event","verb":"create","objectRef":{"resource":"pods"\n')
    code, _, err = main(built_app, capsys, "--input", "kube:apiserver-audit={}".format(broken))
    assert code == 2 and "none of its 1 event(s) has a timestamp" in err
    untimed_first = tmp_path / "untimed_first.jsonl"
    event = json.loads(PRIVILEGED_POD.read_text())
    stamp = event.pop("requestReceivedTimestamp")
    for key in ("stageTimestamp", "timestamp"):
        event.pop(key, None)
    late = dict(event, requestReceivedTimestamp=stamp, auditID="later")
    untimed_first.write_text(json.dumps(event) + "\n" + json.dumps(late) + "\n")
    alerts = run(built_app, ["kube:apiserver-audit={}".format(untimed_first)], ["kube_workload_host_access"])
    assert len(alerts) == 2 and {a["time"] for a in alerts} == {"2018-10-25T14:09:12.572Z"}


def test_repeated_messages_are_shown_once_and_commands_without_input_stay_silent(
        built_app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rhel7 = DATA / "public" / "linux_auditd" / "go-libaudit_audit-rhel7.log"
    code, _, err = main(built_app, capsys, "--input", "linux:audit={}".format(rhel7))
    assert code == 0
    malformed = [line for line in err.splitlines() if "records were malformed" in line]
    # both Linux detections read the one correlation pass (issue 17): its warning is shown once, under its name
    assert len(malformed) == 1 and malformed[0].startswith("replay: linux_escape_correlation | escapereduce: WARN")
    code, _, err = main(built_app, capsys, "--input", "kube:apiserver-audit={}".format(PRIVILEGED_POD))
    assert code == 0 and "escapecorrelate" not in err and "records=0" not in err


def test_a_long_run_shows_progress(built_app: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay.Progress, "AFTER", 0.0)
    monkeypatch.setattr(replay.Progress, "EVERY", 0.5)
    code, _, err = main(built_app, capsys, "--input", "linux:audit={}".format(LINUX_CHAIN))
    assert code == 0
    progress = [line for line in err.splitlines() if line.startswith("replay: progress: ")]
    assert any(re.match(r"replay: progress: 23 events read, [\d,.]+ events/s, \d+ s elapsed; now: \S+ \| ", line)
               for line in progress), progress


# ---------------------------------------------------------------- 4. the host of each event
def esxi_syslog(tmp_path: Path, hosts: Sequence[str]) -> Path:
    """The bulk VM kill sample as a syslog server receives it: `<PRI>TIME HOST program[pid]: ...`, hosts in turn."""
    lines = (SAMPLES / "esxi_bulk_vm_kill_attack.log").read_text().splitlines()
    out = []
    for n, line in enumerate(line for line in lines if line.strip()):
        stamp, rest = line.split(" ", 1)
        out.append("<166>{} {} {}".format(stamp, hosts[n % len(hosts)], rest))
    path = tmp_path / "esxi-syslog.log"
    path.write_text("\n".join(out) + "\n")
    return path


def test_esxi_syslog_header_host_is_the_host_and_thresholds_count_per_host(built_app: Path, tmp_path: Path) -> None:
    one = run(built_app, ["vmw-syslog={}".format(esxi_syslog(tmp_path, ["esxi01.lab"]))], ["esxi_bulk_vm_kill"])
    assert len(one) == 1 and one[0]["host"] == "esxi01.lab"
    two = esxi_syslog(tmp_path, ["esxi01.lab", "esxi02.lab"])  # 3 kills each: below the threshold on either host
    assert run(built_app, ["vmw-syslog={}".format(two)], ["esxi_bulk_vm_kill"]) == []
    forced = run(built_app, ["vmw-syslog,host=esx={}".format(two)], ["esxi_bulk_vm_kill"])
    assert len(forced) == 1 and forced[0]["host"] == "esx"  # host= on --input still overrides


def test_local_esxi_files_and_syslog_prefixes_name_no_host(tmp_path: Path) -> None:
    path = tmp_path / "local.log"
    path.write_text("2026-11-21T07:00:00.100Z cpu6:2106001)UserDump: 3113: vmx: Dumping\n"
                    "2026-11-29T03:56:20.300Z info hostd[2099454] [Originator@6876 sub=Vim] Task\n"
                    "2026-11-29T03:55:01.120Z In(182) vmkernel: cpu2:2097610)Loading module lab_drv ...\n"
                    "2026-11-29T03:55:00.871Z esx7 In(14) shell[2101234]: [root]: esxcli\n"
                    "Nov 29 03:55:02 esx8.lab vmkernel: cpu2:2097610)Loading module\n")
    events = load_events([InputSpec("vmw-syslog", path)], ROOT / "output" / "TA_escape_to_host")
    assert [e["host"] for e in events] == ["replay", "replay", "replay", "esx7", "esx8.lab"]


def test_dockerd_lines_from_the_journal_carry_their_host(tmp_path: Path) -> None:
    path = tmp_path / "dockerd.log"
    path.write_text('time="2026-11-29T03:42:07.103027157Z" level=debug msg="Calling GET /_ping"\n'
                    'Nov 29 03:42:08 node7 dockerd[811]: time="2026-11-29T03:42:08.000000000Z" level=debug msg="x"\n')
    events = load_events([InputSpec("docker:daemon", path)], ROOT / "output" / "TA_escape_to_host")
    assert [e["host"] for e in events] == ["replay", "node7"]


def audit_of_two_hosts(tmp_path: Path) -> Path:
    """The lab's container escape chain, recorded identically by two hosts (auditd's node= names each)."""
    lines = [line for line in LINUX_CHAIN.read_bytes().split(b"\n") if line.strip()]  # 0x1D stays inside a line
    path = tmp_path / "two-hosts.log"
    path.write_bytes(b"".join(b"node=node%d %s\n" % (h, line) for h in (1, 2) for line in lines))
    return path


def test_audit_node_is_the_host_and_chains_stay_per_host(built_app: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = audit_of_two_hosts(tmp_path)
    events = load_events([InputSpec("linux:audit", path)], built_app)
    assert [e["host"] for e in events] == ["node1"] * 23 + ["node2"] * 23
    chains = run(built_app, ["linux:audit={}".format(path)], ["linux_container_escape_chain"])
    assert sorted(a["host"] for a in chains) == ["node1", "node2"]
    capsys.readouterr()
    forced = load_events([InputSpec("linux:audit", path, host="node7")], built_app)
    assert {e["host"] for e in forced} == {"node7"}  # host= on --input still overrides the host field
    assert "host=node7 overrides the 2 hosts its events name (node1, node2)" in capsys.readouterr().err


def test_several_hosts_without_node_are_warned_about(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = []
    for n in range(10):  # two hosts' serials (1000+ and 90000+) in one time order, as an export of all hosts gives
        for host_serial in (1000 + n, 90000 + n):
            lines.append("type=SYSCALL msg=audit(1795923727.{:03d}:{}): syscall=59 success=yes".format(n, host_serial))
    path = tmp_path / "all-hosts.log.gz"
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    events = load_events([InputSpec("linux:audit", path)], ROOT / "output" / "TA_escape_to_host")
    assert len(events) == 20 and {e["host"] for e in events} == {"replay"}
    assert "look like several hosts'" in capsys.readouterr().err
    single = tmp_path / "one-host.log"
    single.write_text("\n".join(sorted(lines, key=lambda line: int(line.split(":")[1].split(")")[0]))[:10]))
    load_events([InputSpec("linux:audit", single)], ROOT / "output" / "TA_escape_to_host")
    assert "several hosts" not in capsys.readouterr().err
