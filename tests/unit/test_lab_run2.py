"""lab-run2 (tests/data/lab-run2): every escape family of issue 20 replayed from its real capture with the audit
input only (no docker source), as the chain and the attempt detections run it (report=escapes, report=attempts).

Per step of labels.tsv: an escape, suspicious or attempt step alerts with its stated finding and severity and nothing
above it; a benign twin does not alert; a refused call that left no record (seccomp) gives no escape or suspicious
alert. The earlier lab capture's alerts are checked unchanged in test_correlate.py."""
import json
from typing import Dict, List

import pytest

from escape_engine.correlate import Correlator
from tests.unit.linux_lab import (
    capture_alerts,
    check_step_alerts,
    lab2_records,
    lab2_steps,
    lab2_times,
    outside_steps,
    rows_in,
)

STEPS = {step: (begin, end, labels) for begin, end, step, labels in lab2_steps()}


@pytest.fixture(scope="module")
def rows() -> List[Dict]:
    return capture_alerts([dict(r) for r in lab2_records()], lab2_times())


def _in(rows: List[Dict], step: str) -> List[Dict]:
    return rows_in(rows, STEPS, step)


@pytest.mark.parametrize("step", [s for s, (_, _, labels) in STEPS.items() if labels["finding"] != "-"])
def test_each_step_alerts_at_its_stated_severity(rows: List[Dict], step: str) -> None:
    check_step_alerts(rows, STEPS, step)


@pytest.mark.parametrize("step", [s for s, (_, _, labels) in STEPS.items() if labels["label"] == "benign"])
def test_benign_twins_stay_quiet(rows: List[Dict], step: str) -> None:
    assert not _in(rows, step), (step, [r["escape_summary"] for r in _in(rows, step)])


def test_a_call_seccomp_refused_leaves_no_escape_or_suspicious_alert(rows: List[Dict]) -> None:
    for step, (_, _, labels) in STEPS.items():
        if labels["label"] == "attempt-unseen":
            assert not {r["escape_category"] for r in _in(rows, step)} - {"attempt"}, step


def test_the_core_pattern_helper_is_tied_to_the_container_that_owns_its_file_system(rows: List[Dict]) -> None:
    """E10: the write through the container's own /proc left no record; the helper's open of the payload in the
    container's upperdir, and its host children, are tied to the E10 container (its shim's id), not to a layer."""
    chain = [r for r in _in(rows, "E10") if r["escape_finding"] == "core_pattern_host_exec"]
    assert len(chain) == 1
    row = chain[0]
    assert not row["escape_container"].startswith("layer:") and len(row["escape_container"]) == 64
    assert row["escape_attribution"].startswith("usermode_helper:")
    assert "/diff/cmd" in row["escape_attribution"]
    steps = " ".join(row["escape_steps"])
    assert "crashed" in steps and "/usr/bin/id" in steps and "/diff/core-out" in steps
    assert not row["escape_syscalls"] and not row["escape_tools"]  # no trigger was seen


def test_the_raw_device_chain_rests_on_successful_calls(rows: List[Dict]) -> None:
    """E12: every call succeeded (mknod, the block device open by debugfs): an escape, never a blocked attempt."""
    row = next(r for r in _in(rows, "E12") if r["escape_finding"] == "host_device_access")
    assert row["escape_category"] == "escape"
    assert {"mknodat", "openat"} <= set(row["escape_syscalls"]) or {"mknod", "openat"} <= set(row["escape_syscalls"])
    assert not [r for r in _in(rows, "E12") if r["escape_category"] == "attempt"]


def test_a_container_started_before_the_search_keeps_its_helper_by_the_persisted_layer() -> None:
    """The E10 container starts (its overlay mount) in one search; its crash and the helper come in the next, which
    knows the container only from the persisted lineage: the helper is still tied to it, not to a bare layer."""
    crash = 1796560589.333  # E10's ANOM_ABEND
    records = [dict(r) for r in lab2_records()]
    first = Correlator(report="all")
    first.feed([r for r in records if float(r["_time"]) < crash - 0.01])
    first.finish()
    state = json.loads(json.dumps(first.state()))  # what the KV store keeps
    assert state["labvm2"]["layers"]
    second = Correlator(report="escapes", state=state)
    second.feed([r for r in records if float(r["_time"]) >= crash - 0.01])
    rows = [r for r in second.finish() if r["escape_finding"] == "core_pattern_host_exec"]
    assert len(rows) == 1 and len(rows[0]["escape_container"]) == 64, rows[0]["escape_container"]
    assert "persisted state" not in rows[0]["escape_container"]


def test_nothing_outside_the_steps_alerts(rows: List[Dict]) -> None:
    """Image imports, container starts and the other sessions' processes on the VM between the steps stay quiet."""
    assert not outside_steps(rows, STEPS)
