"""escapecorrelate through the real splunklib dispatcher over SCP v2: several chunks, newest first, persisted state."""
import json
import shutil
from pathlib import Path
from typing import Dict, List

import pytest

from tests.conftest import ROOT
from tests.integration.harness.scp import run_command
from tests.unit.linux_lab import event_cds, ground_truth, lab_records

SPLIT = 1795923940.415  # E01r3's container and first shell start before, its nsenter after


@pytest.fixture()
def command(built_app: Path, tmp_path: Path) -> Path:
    app = tmp_path / "TA_escape_to_host"
    shutil.copytree(built_app / "bin", app / "bin")
    (app / "lib").symlink_to(built_app / "lib")
    return app / "bin" / "escapecorrelate.py"


def _chunks(records: List[Dict[str, str]], size: int) -> List[List[Dict[str, str]]]:
    fields = ("_raw", "_time", "host", "_cd", "source", "sourcetype")
    slim = [{k: r[k] for k in fields} for r in records]
    return [slim[i:i + size] for i in range(0, len(slim), size)]


def _window(low: float, high: float) -> List[Dict[str, str]]:
    return [r for r in lab_records() if low <= float(r["_time"]) < high]  # already newest first


def test_getinfo_declares_a_search_head_command(command: Path, tmp_path: Path) -> None:
    run = run_command(command, [], [[]], state_dir=tmp_path / "state")
    assert run.getinfo["type"] == "stateful", run.stderr


def test_chains_over_several_chunks_newest_first_with_persisted_state(command: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = run_command(command, ["window=300", "report=all"], _chunks(_window(1795923885.0, SPLIT), 1500),
                        state_dir=state)
    assert first.returncode == 0, first.stderr
    assert len(first.chunk_replies) > 3
    assert all(not reply["_body"].strip() for reply in first.chunk_replies[:-1])  # rows come with the last chunk
    findings = {r["escape_finding"] for r in first.records}
    assert {"runtime_socket_escape", "release_agent_host_exec", "chroot_host_exec"} <= findings
    saved = {d["_key"]: json.loads(d["state"]) for d in json.loads((state / "escape_linux_lineage.json").read_text())}
    assert saved["labvm"]["procs"]
    assert any("escapecorrelate: " in text for level, text in first.messages if level == "INFO")

    second = run_command(command, ["report=escapes"], _chunks(_window(SPLIT, 1795923950.0), 400), state_dir=state)
    assert second.returncode == 0, second.stderr
    nsenter = [r for r in second.records if r["escape_finding"] == "nsenter_host_exec"]
    assert len(nsenter) == 1
    row = nsenter[0]
    assert "persisted state" in row["escape_attribution"]
    assert row["escape_severity"] == "critical" and row["escape_summary"]
    gt = [g for g in ground_truth() if g["step"] == "E01r3" and g["indicator"] == "yes"]
    evidence = row["escape_evidence_cd"]
    assert isinstance(evidence, list)
    assert {cd for g in gt for cd in event_cds(g)} <= set(evidence)


def test_malformed_events_are_reported_in_the_inspector(command: Path, tmp_path: Path) -> None:
    chunks = _chunks(_window(1795923940.0, 1795923941.0), 200)
    chunks.append([{"_raw": "garbage that is not audit", "_time": "1795923900", "host": "labvm", "_cd": "7:7",
                    "source": "x", "sourcetype": "linux:audit"}])
    run = run_command(command, ["state=none"], chunks, state_dir=tmp_path)
    assert run.returncode == 0, run.stderr
    assert any("1 records were malformed" in text for level, text in run.messages if level == "WARN")
    assert not (tmp_path / "escape_linux_lineage.json").exists()


def test_a_bad_option_is_refused_with_a_message(command: Path, tmp_path: Path) -> None:
    run = run_command(command, ["report=everything"], [[]], state_dir=tmp_path)
    assert run.errors() and "report" in " ".join(run.errors())
    assert run.returncode != 0


def test_the_search_time_range_bounds_event_times(command: Path, tmp_path: Path) -> None:
    # splunkd's searchinfo earliest_time / latest_time reach the engine: a Sysmon event dated 2099 is skipped and counted,
    # and the saved lineage keeps its processes (its newest time stays within the range plus the documented skew).
    sample = (ROOT / "tests" / "knowledge" / "samples" / "sysmon_linux_handwritten.log").read_text(encoding="utf-8")
    line = next(text for text in sample.split("\n") if "<EventID>1</EventID>" in text)
    start = line.index('<Data Name="UtcTime">') + len('<Data Name="UtcTime">')
    line = line[:start] + "2099-01-01 00:00:00.000" + line[line.index("</Data>", start):]
    sysmon = {"_raw": line, "_time": "1795923945", "host": "labvm", "_cd": "5:1", "source": "syslog",
              "sourcetype": "sysmon:linux"}
    chunks = [[sysmon]] + _chunks(_window(1795923930.0, 1795923950.0), 500)
    state = tmp_path / "state"
    run = run_command(command, ["report=all"], chunks, state_dir=state,
                      info={"earliest_time": "1795923600.000000", "latest_time": "1795924200.000000"})
    assert run.returncode == 0, run.stderr
    assert any("1 records carried a time" in text for level, text in run.messages if level == "WARN")
    saved = {d["_key"]: json.loads(d["state"]) for d in json.loads((state / "escape_linux_lineage.json").read_text())}
    assert saved["labvm"]["procs"] and saved["labvm"]["max_time"] < 1795924200.0 + 3600.0
    assert "nsenter_host_exec" in {r["escape_finding"] for r in run.records}


def test_the_escape_families_of_lab_run2_through_the_dispatcher(command: Path, tmp_path: Path) -> None:
    """lab-run2 (issue 20's families) in chunks, newest first, audit input only: the same findings as the engine."""
    from tests.unit.linux_lab import lab2_records
    run = run_command(command, ["report=escapes"], _chunks(list(lab2_records()), 5000), state_dir=tmp_path / "state")
    assert run.returncode == 0, run.stderr
    found = {(r["escape_finding"], r["escape_severity"]) for r in run.records}
    assert {("core_pattern_host_exec", "critical"), ("release_agent_host_exec", "critical"),
            ("host_device_access", "high"), ("host_process_injection", "high"), ("kernel_bpf_load", "high")} <= found
