"""escapecorrelate's engine on the labelled lab-run1 capture, the public auditd files and small engine tables."""
import json
from typing import Dict, List, Set

import pytest

from escape_engine.correlate import Correlator, run
from tests.unit.linux_lab import (
    HOST,
    PUBLIC_AUDITD,
    event_cds,
    ground_truth,
    interpreted_records,
    lab_lines,
    lab_records,
    public_text,
    to_records,
)

# Steps whose only trace is the tool's execve or a failed call (lab-run1 README: seccomp EPERM, EACCES on /proc/1/ns,
# the VM refusing /dev/vda, the socket child refused at runc create): attempts, not escapes.
ATTEMPT_STEPS = {"E01b", "E01r2", "E03r2", "E06a", "E07a", "E04"}
# Steps that reached the host: a host binary or the usermode helper ran from the container's lineage.
ESCAPE_STEPS = {"E01r3", "E02", "E04r2", "E05r2"}
BENIGN_LABELS = {"benign", "benign-runtime", "lab-harness", "lab-test"}


@pytest.fixture(scope="module")
def lab_rows() -> List[Dict]:
    correlator = Correlator(report="all")
    records = list(lab_records())
    for start in range(0, len(records), 5000):  # chunks, newest first, as Splunk hands them
        correlator.feed(records[start:start + 5000])
    rows = correlator.finish()
    assert correlator.summary["out_of_order"] == 0
    assert correlator.summary["malformed"] == 0
    return rows


def _evidence(rows: List[Dict]) -> Set[str]:
    return {cd for row in rows for cd in row["escape_evidence_cd"]}


def _steps_with_indicators() -> Dict[str, List[Dict[str, str]]]:
    steps: Dict[str, List[Dict[str, str]]] = {}
    for row in ground_truth():
        if row["indicator"] == "yes":
            steps.setdefault(row["step"], []).append(row)
    return steps


def _rows_for(rows: List[Dict], gt_rows: List[Dict[str, str]]) -> List[Dict]:
    wanted = {cd for r in gt_rows for cd in event_cds(r)}
    return [row for row in rows if wanted & set(row["escape_evidence_cd"])]


@pytest.mark.parametrize("step", sorted(_steps_with_indicators()))
def test_every_attack_step_with_indicators_alerts(lab_rows: List[Dict], step: str) -> None:
    matching = _rows_for(lab_rows, _steps_with_indicators()[step])
    assert matching, "no alert rests on an indicator record of " + step
    categories = {row["escape_category"] for row in matching}
    if step in ATTEMPT_STEPS:
        assert categories == {"attempt"}, (step, categories)
        assert {row["escape_severity"] for row in matching} <= {"low", "medium"}
    else:
        assert "attempt" not in categories, (step, categories)
    if step in ESCAPE_STEPS:
        assert any(row["escape_category"] == "escape" and row["escape_severity"] == "critical" for row in matching)


@pytest.mark.parametrize("step, finding", [("E01r3", "nsenter_host_exec"), ("E02", "chroot_host_exec"),
                                           ("E04r2", "runtime_socket_escape"), ("E05r2", "release_agent_host_exec"),
                                           ("E03r3", "host_device_mount"), ("E08", "host_file_handle"),
                                           ("E07br2", "host_keyring_access")])
def test_findings_name_the_technique(lab_rows: List[Dict], step: str, finding: str) -> None:
    matching = _rows_for(lab_rows, _steps_with_indicators()[step])
    assert finding in {row["escape_finding"] for row in matching}


def test_every_alert_names_its_attribution_and_a_stable_chain_id(lab_rows: List[Dict]) -> None:
    for row in lab_rows:
        assert row["escape_attribution"] and row["escape_attribution"] != "unknown", row
        assert row["escape_container"]
        assert row["escape_summary"] and row["escape_finding"]
        assert len(row["escape_chain_id"]) == 20
    assert len({row["escape_chain_id"] for row in lab_rows}) == len(lab_rows)


def test_chain_evidence_holds_every_record_of_the_indicator_events(lab_rows: List[Dict]) -> None:
    for step in ESCAPE_STEPS:
        gt = _steps_with_indicators()[step]
        matching = _rows_for(lab_rows, gt)
        evidence = _evidence(matching)
        for gt_row in gt:
            assert set(event_cds(gt_row)) <= evidence, (step, gt_row["syscall"])


def test_release_agent_payload_run_by_the_usermode_helper_is_part_of_the_chain(lab_rows: List[Dict]) -> None:
    # README quirk 2: the helper's children are labelled benign-background (host-other) but are the escape's result.
    payload = [r for r in ground_truth() if r["step"] == "E05r2" and r["where"] == "host-other" and r["syscall"] == "execve"]
    assert payload
    chains = [row for row in lab_rows if row["escape_finding"] == "release_agent_host_exec"]
    assert chains
    for gt_row in payload:
        assert set(event_cds(gt_row)) <= _evidence(chains)


def test_benign_runtime_and_harness_records_never_alert(lab_rows: List[Dict]) -> None:
    evidence = _evidence(lab_rows)
    for gt_row in ground_truth():
        label = gt_row["label"]
        benign = label in BENIGN_LABELS or (label == "benign-ambiguous" and gt_row["step"] == "B13") or (
            label == "benign-background" and not (gt_row["step"] == "E05r2" and gt_row["where"] == "host-other"))
        if benign:
            assert not set(event_cds(gt_row)) & evidence, (label, gt_row["step"], gt_row["comm"], gt_row["syscall"])


def test_host_only_activity_is_silent(lab_rows: List[Dict]) -> None:
    # debootstrap (real package-manager chroot and mounts), B09-B12 and the manual host nsenter are host processes.
    host_rows = [r for r in ground_truth() if r["where"] in ("host-lab", "host-other")
                 and r["syscall"] in ("mount", "chroot", "unshare", "setns", "keyctl", "add_key", "umount2")]
    assert len(host_rows) > 10
    evidence = _evidence(lab_rows)
    for gt_row in host_rows:
        assert not set(event_cds(gt_row)) & evidence, (gt_row["step"], gt_row["comm"], gt_row["syscall"])


@pytest.mark.parametrize("path", sorted(PUBLIC_AUDITD.iterdir()), ids=lambda p: p.name)
def test_public_auditd_samples_are_silent(path) -> None:
    lines = public_text(path)
    assert lines, path
    correlator = Correlator(report="all")
    correlator.feed(to_records(list(enumerate(lines)), host="public"))
    assert correlator.finish() == []
    assert correlator.summary["audit_events"] > 0


def test_chunking_and_arrival_order_do_not_change_the_result(lab_rows: List[Dict]) -> None:
    window = [r for r in lab_records() if 1795923885.0 <= float(r["_time"]) <= 1795923950.0]
    one = Correlator(report="all")
    one.feed(window)
    oldest_first = Correlator(report="all")
    for record in reversed(window):
        oldest_first.feed([record])
    first, second = one.finish(), oldest_first.finish()
    assert [r["escape_chain_id"] for r in first] == [r["escape_chain_id"] for r in second]
    assert len(first) >= 8
    assert one.summary["out_of_order"] == 0
    assert oldest_first.summary["out_of_order"] > 0  # counted and reported, not dropped


def test_malformed_events_are_counted_and_do_not_stop_the_search() -> None:
    records = list(lab_records()[:2000]) + [{"_raw": "not an audit record", "_cd": "9:1", "host": HOST},
                                             {"_raw": "", "_cd": "9:2"},
                                             {"_raw": "type=SYSCALL msg=audit(garbage", "_cd": "9:3", "host": HOST}]
    correlator = Correlator(report="all")
    correlator.feed(records)
    correlator.finish()
    assert correlator.summary["malformed"] == 3


def test_the_syscall_allowlist_removes_keyring_findings(lab_rows: List[Dict]) -> None:
    allowed = list(run(lab_records(), allowlist="keyctl,add_key,request_key", report="all"))
    findings = {row["escape_finding"] for row in allowed}
    assert "host_keyring_access" not in findings
    assert "host_keyring_access" in {row["escape_finding"] for row in lab_rows}
    assert "nsenter_host_exec" in findings


def test_report_option_splits_escapes_from_attempts(lab_rows: List[Dict]) -> None:
    escapes = list(run(lab_records(), report="escapes"))
    attempts = list(run(lab_records(), report="attempts"))
    assert escapes and attempts
    assert {r["escape_category"] for r in attempts} == {"attempt"}
    assert "attempt" not in {r["escape_category"] for r in escapes}
    assert len(escapes) + len(attempts) == len(lab_rows)


@pytest.mark.parametrize("kwargs, message", [({"window": 0}, "window"), ({"report": "some"}, "report"),
                                             ({"allowlist": ["execve"]}, "allowlist"), ({"skew": -1}, "skew")])
def test_bad_options_raise_a_clear_error(kwargs: Dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Correlator(**kwargs)


# ---- two runs: containers start in the first, escape in the second ------------------------------------------------
SPLIT = 1795923940.415  # after E01r3's container and its first shell started, before its nsenter


def _split_runs(with_state: bool) -> List[Dict]:
    records = lab_records()
    first = Correlator(report="all")
    first.feed([r for r in records if float(r["_time"]) < SPLIT])
    first.finish()
    state = json.loads(json.dumps(first.state())) if with_state else None
    second = Correlator(report="all", state=state)
    second.feed([r for r in records if float(r["_time"]) >= SPLIT])
    return second.finish()


def test_second_run_attributes_and_alerts_from_the_persisted_state_only() -> None:
    gt = [r for r in ground_truth() if r["step"] == "E01r3" and r["indicator"] == "yes"]
    with_state = _rows_for(_split_runs(True), gt)
    assert [r["escape_finding"] for r in with_state] == ["nsenter_host_exec"]
    row = with_state[0]
    assert "persisted state" in row["escape_attribution"]
    assert row["escape_attribution"].startswith("lineage:")
    # The container id comes from the shim's command line, seen only in the first run.
    start_lines = [line for line in lab_lines() if b"containerd-shim" in line and b"type=EXECVE" in line
                   and row["escape_container"].encode() in line]
    assert any(float(line.split(b"msg=audit(")[1].split(b":")[0]) < SPLIT for line in start_lines)


def test_second_run_without_state_falls_back_to_evidence_that_needs_no_history() -> None:
    gt = [r for r in ground_truth() if r["step"] == "E01r3" and r["indicator"] == "yes"]
    without = _rows_for(_split_runs(False), gt)
    assert without, "the overlay device of nsenter still attributes it"
    assert all("persisted state" not in r["escape_attribution"] for r in without)
    assert all(r["escape_attribution"].startswith("exe_dev:anonymous") for r in without)


def test_state_is_bounded_by_the_ttl() -> None:
    correlator = Correlator(report="all", ttl=60.0)
    correlator.feed(lab_records())
    correlator.finish()
    state = correlator.state()[HOST]
    newest = state["max_time"]
    assert state["procs"] and all(p["last"] >= newest - 60.0 for p in state["procs"])
    assert len(state["procs"]) < len({r["pid"] for r in ground_truth()})


# ---- engine tables -------------------------------------------------------------------------------------------------
def _audit_event(serial: int, when: float, syscall: str, pid: int, ppid: int, comm: str, exe: str,
                 extra: List[str] = (), arch: str = "c000003e", success: str = "yes") -> List[str]:
    head = "type=SYSCALL msg=audit(%.3f:%d): arch=%s syscall=%s success=%s exit=0 a0=0 a1=0 items=1 ppid=%d pid=%d " \
           "auid=4294967295 uid=0 ses=4294967295 comm=\"%s\" exe=\"%s\" key=\"k\"" % (
               when, serial, arch, syscall, success, ppid, pid, comm, exe)
    return [head] + [line % {"m": "msg=audit(%.3f:%d):" % (when, serial)} for line in extra]


def _records(lines: List[str], host: str = "h1") -> List[Dict[str, str]]:
    return to_records([(i, line.encode()) for i, line in enumerate(lines)], host=host)


def _exec(serial: int, when: float, pid: int, ppid: int, comm: str, exe: str, dev: str, argv: List[str],
          title: str = "") -> List[str]:
    args = " ".join('a%d="%s"' % (i, a) for i, a in enumerate(argv))
    lines = ["type=EXECVE %%(m)s argc=%d %s" % (len(argv), args),
             'type=PATH %%(m)s item=0 name="%s" inode=5 dev=%s mode=0100755 nametype=NORMAL' % (exe, dev)]
    if title:
        lines.append("type=PROCTITLE %%(m)s proctitle=%s" % title)
    return _audit_event(serial, when, "59", pid, ppid, comm, exe, lines)


SHIM = _exec(1, 100.0, 50, 1, "containerd-shim", "/usr/bin/containerd-shim-runc-v2", "fe:00",
             ["/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id", "abc123", "-address", "/run/c.sock"])
LOGIND_MOUNT = _audit_event(10, 200.0, "165", 400, 1, "systemd-logind", "/usr/lib/systemd/systemd-logind", [
    'type=PATH %(m)s item=0 name="/run/user/1000" inode=9 dev=00:19 mode=040700 nametype=NORMAL'])


def test_a_host_daemon_mount_like_systemd_logind_is_silent() -> None:
    assert list(run(_records(SHIM + LOGIND_MOUNT), report="all")) == []


def test_a_host_module_load_is_silent_on_x86_64_and_aarch64() -> None:
    lines = _exec(20, 300.0, 600, 1, "modprobe", "/usr/bin/kmod", "08:01", ["modprobe", "nf_tables"]) + \
        _audit_event(21, 300.1, "313", 600, 1, "modprobe", "/usr/bin/kmod") + \
        _audit_event(22, 300.2, "273", 601, 1, "insmod", "/usr/bin/kmod", arch="c00000b7")
    assert list(run(_records(SHIM + lines), report="all")) == []


def test_the_same_mount_from_a_container_lineage_alerts() -> None:
    lines = SHIM + _exec(2, 101.0, 60, 50, "sh", "/bin/sh", "00:27", ["sh", "-c", "mount"], "72756E6300696E6974") + \
        _exec(3, 101.1, 61, 60, "mount", "/usr/bin/mount", "00:27", ["mount", "/dev/sda1", "/mnt"]) + \
        _audit_event(4, 101.2, "165", 61, 60, "mount", "/usr/bin/mount", [
            'type=PATH %(m)s item=0 name="/mnt" inode=9 dev=00:27 mode=040755 nametype=NORMAL',
            'type=PATH %(m)s item=1 name="/dev/sda1" inode=7 dev=00:05 mode=060660 rdev=08:01 nametype=NORMAL'])
    rows = list(run(_records(lines), report="all"))
    assert [r["escape_finding"] for r in rows] == ["host_device_mount"]
    assert rows[0]["escape_container"] == "abc123"
    assert rows[0]["escape_attribution"].startswith("lineage:containerd-shim-runc-v2")


def test_aarch64_syscall_numbers_are_read_per_architecture() -> None:
    lines = SHIM + _exec(2, 101.0, 60, 50, "unshare", "/usr/bin/unshare", "00:27", ["unshare", "-U", "id"],
                         "72756E6300696E6974") + \
        _audit_event(3, 101.1, "97", 60, 50, "unshare", "/usr/bin/unshare", arch="c00000b7")
    rows = list(run(_records(lines), report="all"))
    assert rows and rows[0]["escape_syscalls"] == ["unshare"]


def test_runtime_names_need_runtime_lineage() -> None:
    # A container process that calls itself runc:[2:INIT] is not excused; the real runc init (parent runc) is.
    runc = _exec(2, 101.0, 55, 50, "runc", "/usr/sbin/runc", "fe:00", ["runc", "--root", "/r", "create", "abc123"])
    real = _audit_event(3, 101.1, "165", 56, 55, "runc:[2:INIT]", "/")
    fake = SHIM + _exec(4, 102.0, 70, 50, "sh", "/bin/sh", "00:27", ["sh"], "72756E6300696E6974") + \
        _audit_event(5, 102.1, "165", 71, 70, "runc:[2:INIT]", "/")
    assert list(run(_records(SHIM + runc + real), report="all")) == []
    rows = list(run(_records(fake), report="all"))
    assert rows and rows[0]["escape_syscalls"] == ["mount"]


def _sysmon(eid: int, utc: str, pid: int, ppid: int, image: str, parent_image: str, command: str) -> str:
    data = {"UtcTime": utc, "ProcessId": str(pid), "Image": image, "CommandLine": command,
            "CurrentDirectory": "/", "ParentProcessId": str(ppid), "ParentImage": parent_image}
    body = "".join('<Data Name="%s">%s</Data>' % (k, v) for k, v in data.items())
    return ('Nov 29 03:43:47 node1 sysmon: <Event><System><Provider Name="Linux-Sysmon" '
            'Guid="{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"/><EventID>%d</EventID><Channel>Linux-Sysmon/Operational'
            '</Channel><Computer>node1</Computer></System><EventData>%s</EventData></Event>' % (eid, body))


def test_sysmon_chroot_into_host_root_is_an_escape_chain() -> None:
    events = [_sysmon(1, "2026-11-29 03:43:47.100", 70, 60, "/usr/sbin/chroot", "/usr/bin/containerd-shim-runc-v2",
                      "chroot /host /bin/bash"),
              _sysmon(1, "2026-11-29 03:43:47.140", 70, 60, "/host/usr/bin/bash", "/usr/sbin/chroot", "/bin/bash"),
              _sysmon(1, "2026-11-29 03:43:47.150", 71, 70, "/host/usr/bin/id", "/host/usr/bin/bash", "id")]
    records = [{"_raw": raw, "host": "node1", "_cd": "1:%d" % i, "_time": "1795923827.1", "sourcetype": "sysmon:linux"}
               for i, raw in enumerate(events)]
    rows = list(run(list(reversed(records)), report="all"))
    assert len(rows) == 1 and rows[0]["escape_category"] == "escape"
    assert "lineage:containerd-shim" in rows[0]["escape_attribution"]
    assert set(rows[0]["escape_evidence_cd"]) == {"1:0", "1:1", "1:2"}


def test_sysmon_stamping_the_first_process_early_still_forms_one_chain_with_auditd() -> None:
    # Sysmon stamps a container's first process ~0.4 s before auditd's execve of it (sysmon_linux_handwritten.log and the lab capture).
    sysmon = _sysmon(1, "2026-11-29 03:45:40.000", 60, 50, "/usr/bin/nsenter", "/usr/bin/containerd-shim-runc-v2",
                     "nsenter -t 1 -m -p -- /bin/sh")
    audit = _exec(2, 1795923940.4, 60, 50, "nsenter", "/usr/bin/nsenter", "00:27",
                  ["nsenter", "-t", "1", "-m", "-p", "--", "/bin/sh"], "72756E6300696E6974") + \
        _audit_event(3, 1795923940.41, "308", 60, 50, "nsenter", "/usr/bin/nsenter") + \
        _exec(4, 1795923940.42, 61, 60, "sh", "/usr/bin/dash", "fe:00", ["/bin/sh"])
    shim = _exec(1, 1795923939.0, 50, 1, "containerd-shim", "/usr/bin/containerd-shim-runc-v2", "fe:00",
                 ["/usr/bin/containerd-shim-runc-v2", "-id", "abc123"])
    records = _records(shim + audit, host="node1") + [
        {"_raw": sysmon, "host": "node1", "_cd": "1:0", "_time": "1795923940.0", "sourcetype": "sysmon:linux"}]
    records.sort(key=lambda r: float(r["_time"]), reverse=True)
    rows = list(run(records, report="all"))
    assert [r["escape_finding"] for r in rows] == ["nsenter_host_exec"]
    assert "1:0" in rows[0]["escape_evidence_cd"] and rows[0]["escape_container"] == "abc123"


def test_a_release_agent_write_seen_by_sysmon_arms_the_usermode_helper_trap() -> None:
    shim = _exec(1, 100.0, 50, 1, "containerd-shim", "/usr/bin/containerd-shim-runc-v2", "fe:00",
                 ["/usr/bin/containerd-shim-runc-v2", "-id", "abc123"])
    shell = _exec(2, 101.0, 60, 50, "sh", "/bin/sh", "00:27", ["sh", "-c", "x"], "72756E6300696E6974")
    helper_child = _exec(3, 103.0, 71, 70, "id", "/usr/bin/id", "fe:00", ["id"]) + ['type=CWD %(m)s cwd="/"']
    helper_child = helper_child[:1] + [line % {"m": "msg=audit(103.000:3):"} if "%(m)s" in line else line
                                       for line in helper_child[1:]]
    write = ('Nov 29 00:00:01 h1 sysmon: <Event><System><EventID>11</EventID><Computer>h1</Computer></System>'
             '<EventData><Data Name="UtcTime">1970-01-01 00:01:42.000</Data><Data Name="ProcessId">60</Data>'
             '<Data Name="Image">/bin/sh</Data><Data Name="TargetFilename">/tmp/cgrp/release_agent</Data></EventData>'
             '</Event>')
    records = _records(shim + shell + helper_child) + [
        {"_raw": write, "host": "h1", "_cd": "1:9", "_time": "102", "sourcetype": "sysmon:linux"}]
    records.sort(key=lambda r: float(r["_time"]), reverse=True)
    rows = list(run(records, report="all"))
    assert [r["escape_finding"] for r in rows] == ["release_agent_host_exec"]
    assert rows[0]["escape_host_binaries"] == ["/usr/bin/id"]
    assert "1:9" in rows[0]["escape_evidence_cd"]


def test_interpreted_ausearch_form_gives_the_same_chains_as_the_raw_log() -> None:
    from tests.conftest import ROOT
    interpreted = interpreted_records(ROOT / "tests" / "knowledge" / "samples" / "auditd_interpreted_lab-run1_pass3.log")
    raw = [r for r in lab_records() if 1795923939.0 <= float(r["_time"]) <= 1795923944.0]
    from_text = {(r["escape_finding"], r["escape_container"]) for r in run(interpreted, report="all")}
    from_raw = {(r["escape_finding"], r["escape_container"]) for r in run(raw, report="all")}
    assert from_text == from_raw
    assert {"nsenter_host_exec", "host_device_mount"} <= {finding for finding, _ in from_text}


def test_the_handwritten_sysmon_sample_fires() -> None:
    from tests.conftest import ROOT
    path = ROOT / "tests" / "knowledge" / "samples" / "sysmon_linux_handwritten.log"
    records = [{"_raw": line, "host": "labhost", "_cd": "2:%d" % i, "_time": "0", "sourcetype": "sysmon:linux"}
               for i, line in enumerate(path.read_text(encoding="utf-8").split("\n")) if line.strip()]
    rows = list(run(list(reversed(records)), report="all"))
    assert [r["escape_category"] for r in rows] == ["escape"]
    assert "lineage:containerd-shim" in rows[0]["escape_attribution"]
