"""The live escape lab: runs tests/lab/escape_lab.sh as root and replays its audit.log through the Linux analytic.

It changes the host (auditd, docker, iptables, loop devices), so it runs only with ESCAPE_LAB=1 on a disposable
Debian 12 VM, never in ./test.sh. ESCAPE_LAB_CAPTURE=<dir> replays an earlier capture instead of running the lab.
Assertions are per marker window and label (tests/lab/README.md), never on pids, serials or counts.
"""
import csv
import os
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from escape_engine.correlate import Correlator
from tests.unit.linux_lab import stamp_serial, to_records

LAB = Path(__file__).resolve().parent
LABELS = LAB.parent / "data" / "lab-run3" / "labels.tsv"  # lab-run2's steps and the runtime-socket steps
RUNTIME = ("dockerd", "containerd", "containerd-shim-runc-v2", "runc")

pytestmark = pytest.mark.skipif(
    os.environ.get("ESCAPE_LAB") != "1" and not os.environ.get("ESCAPE_LAB_CAPTURE"),
    reason="the live escape lab changes the host (auditd, docker, iptables): set ESCAPE_LAB=1 as root on a "
           "disposable Debian 12 VM to run it (see tests/lab/README.md)")


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("ESCAPE_LAB_CAPTURE")
    if given:
        return Path(given)
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    out = tmp_path_factory.mktemp("escape-lab")
    started = time.monotonic()
    proc = subprocess.run(["bash", str(LAB / "escape_lab.sh"), str(out)], capture_output=True, text=True, timeout=1800)
    print("escape lab: exit %d after %.0f s" % (proc.returncode, time.monotonic() - started))
    if proc.returncode == 77:
        pytest.skip(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "lab preconditions missing")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def replay(capture: Path) -> Tuple[List[Dict], Dict[str, float], List[Tuple[float, float, str, str]]]:
    lines = (capture / "audit.log").read_bytes().split(b"\n")  # bytes, split on \n only
    times: Dict[str, float] = {}
    comms: Dict[str, bytes] = {}
    for index, line in enumerate(lines):
        key = stamp_serial(line)
        if key:
            times["0:%d" % index] = float(key[0])
            comms["0:%d" % index] = line
    correlator = Correlator(report="all")
    records = to_records(list(enumerate(lines)), host="lab")
    for start in range(0, len(records), 2000):
        correlator.feed(records[start:start + 2000])
    rows = correlator.finish()
    assert correlator.summary["malformed"] == 0 and correlator.summary["out_of_order"] == 0
    steps = []
    begins: Dict[str, Tuple[float, str]] = {}
    for row in (capture / "timeline.tsv").read_text().splitlines():
        when, kind, step, label, _ = row.split("\t", 4)
        if kind == "BEGIN":
            begins[step] = (float(when), label)
        else:
            steps.append((begins[step][0], float(when), step, begins[step][1]))
    for row in rows:
        row["_times"] = [times[cd] for cd in row["escape_evidence_cd"] if cd in times]
        row["_lines"] = [comms[cd] for cd in row["escape_evidence_cd"] if cd in comms]
    return rows, times, steps


def _in_window(rows: List[Dict], begin: float, end: float) -> List[Dict]:
    return [row for row in rows if any(begin <= t <= end for t in row["_times"])]


def _steps(replay, label: str) -> List[Tuple[float, float, str, str]]:
    return [s for s in replay[2] if s[3] == label]


def test_every_successful_escape_step_alerts_as_an_escape(replay) -> None:
    rows = replay[0]
    for begin, end, step, _ in _steps(replay, "escape"):
        categories = {r["escape_category"] for r in _in_window(rows, begin, end)}
        assert "escape" in categories, (step, categories)


def test_every_suspicious_step_alerts(replay) -> None:
    rows = replay[0]
    for begin, end, step, _ in _steps(replay, "suspicious"):
        categories = {r["escape_category"] for r in _in_window(rows, begin, end)}
        assert categories & {"escape", "suspicious"}, (step, categories)


def test_every_blocked_attempt_alerts_as_an_attempt(replay) -> None:
    rows = replay[0]
    for begin, end, step, _ in _steps(replay, "attempt"):
        categories = {r["escape_category"] for r in _in_window(rows, begin, end)}
        assert categories == {"attempt"}, (step, categories)


def test_a_call_refused_before_the_audit_hook_gives_no_escape_or_suspicious_alert(replay) -> None:
    rows = replay[0]
    for begin, end, step, _ in _steps(replay, "attempt-unseen"):
        categories = {r["escape_category"] for r in _in_window(rows, begin, end)}
        assert not categories - {"attempt"}, (step, categories)


def test_the_family_steps_alert_at_the_severity_lab_run3_states(replay) -> None:
    """The escape families of issue 20: the finding and severity tests/data/lab-run3/labels.tsv states per step."""
    with LABELS.open(encoding="utf-8", newline="") as handle:
        labels = {row["step"]: row for row in csv.DictReader(handle, delimiter="\t") if row["family"] != "-"}
    rows = replay[0]
    for begin, end, step, _ in replay[2]:
        if step in labels and labels[step]["finding"] != "-":
            found = {(r["escape_finding"], r["escape_severity"]) for r in _in_window(rows, begin, end)}
            assert (labels[step]["finding"], labels[step]["severity"]) in found, (step, found)


def test_no_benign_step_alerts(replay) -> None:
    rows = replay[0]
    for begin, end, step, _ in _steps(replay, "benign"):
        assert not _in_window(rows, begin, end), step
    for begin, end, step, _ in _steps(replay, "benign-ambiguous"):  # reported, not asserted
        print("ambiguous", step, [r["escape_finding"] for r in _in_window(rows, begin, end)])


def test_runtime_noise_never_alerts(replay) -> None:
    for row in replay[0]:
        for line in row["_lines"]:
            if line.startswith(b"type=SYSCALL"):
                assert b'comm="runc:[' not in line, line[:300]
                assert not any(b'exe="/usr/sbin/%s"' % n.encode() in line or b'exe="/usr/bin/%s"' % n.encode() in line
                               for n in RUNTIME), line[:300]


def test_dockerd_logged_the_privileged_create_bodies(capture: Path) -> None:
    log = (capture / "dockerd.log").read_text(errors="replace")
    bodies = [line for line in log.splitlines() if "form data:" in line and "Privileged" in line]
    assert any('\\"Privileged\\":true' in line for line in bodies)
