"""Replay acceptance of the Linux analytic through tools/replay.py (what ./build.sh replay runs): lab-run1's passes 2
and 3 per step (pass 1 is covered by the engine tests and by the generic sample replay of the whole capture), benign
and runtime records silent, and two runs sharing --state where the second needs the first's lineage."""
import gzip
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

from tests.unit.linux_lab import LAB, ground_truth, stamp_serial
from tools import replay
from tools.inputs import InputSpec

CHAIN = "linux_container_escape_chain"
ATTEMPT = "linux_container_escape_attempt"
ESCAPE_STEPS = {"E01r3", "E04r2", "E05r2", "E03r3"}
ATTEMPT_STEPS = {"E01r2", "E03r2"}
PASSES_2_3 = (1795923885.0, 1795923950.0)
SPLIT = 1795923940.415  # E01r3's container and first shell start before, its nsenter after


def _slice(tmp: Path, name: str, low: float, high: float) -> Path:
    lines = gzip.decompress((LAB / "audit-session1.log.gz").read_bytes()).split(b"\n")
    kept = [line for line in lines if line and stamp_serial(line) and low <= float(stamp_serial(line)[0]) < high]
    path = tmp / name
    path.write_bytes(b"\n".join(kept) + b"\n")
    return path


def _keys(alert: Dict) -> Set[Tuple[str, str]]:
    keys = set()
    for raw in alert["evidence"]:
        key = stamp_serial(raw.encode())
        if key:
            keys.add(key)
    return keys


@pytest.fixture(scope="module")
def alerts(built_app: Path, tmp_path_factory: pytest.TempPathFactory) -> List[Dict]:
    path = _slice(tmp_path_factory.mktemp("lab"), "passes-2-3.log", *PASSES_2_3)
    return replay.replay([InputSpec("linux:audit", path)], app_dir=built_app, only=[CHAIN, ATTEMPT])


def _steps_of(alert: Dict) -> Set[str]:
    by_key = {(r["epoch"], r["serial"]): r for r in ground_truth()}
    return {by_key[k]["step"] for k in _keys(alert) if k in by_key and by_key[k]["indicator"] == "yes"}


def test_replay_alerts_every_escape_step_and_every_attempt_separately(alerts: List[Dict]) -> None:
    chain = [a for a in alerts if a["detection"].endswith("Container Escape Chain on Linux Host - Rule")]
    attempt = [a for a in alerts if a["detection"].endswith("Blocked Container Escape Attempt on Linux Host - Rule")]
    chain_steps = set().union(*(_steps_of(a) for a in chain))
    attempt_steps = set().union(*(_steps_of(a) for a in attempt))
    assert ESCAPE_STEPS | {"E06br2", "E07br2", "E09"} <= chain_steps
    assert ATTEMPT_STEPS <= attempt_steps
    assert not ATTEMPT_STEPS & chain_steps and not ESCAPE_STEPS & attempt_steps
    assert all(a["analytic"] == "linux" and a["summary"] and a["evidence"] for a in alerts)
    critical = set().union(*(_steps_of(a) for a in chain if a["severity"] == "critical"))
    assert {"E01r3", "E04r2", "E05r2"} <= critical


def test_replay_evidence_never_holds_benign_or_runtime_records(alerts: List[Dict]) -> None:
    labels = {(r["epoch"], r["serial"]): r for r in ground_truth()}
    for alert in alerts:
        for key in _keys(alert):
            row = labels.get(key)
            if row is None:
                continue
            assert row["label"] not in ("benign", "benign-runtime", "lab-harness", "lab-test"), (row["step"], row["comm"])
            if row["label"] == "benign-background":
                assert row["step"] == "E05r2" and row["where"] == "host-other"  # README quirk 2: the helper's payload


def test_replay_second_run_alerts_from_the_state_of_the_first(built_app: Path, tmp_path: Path) -> None:
    first = _slice(tmp_path, "first.log", 1795923930.0, SPLIT)
    second = _slice(tmp_path, "second.log", SPLIT, 1795923950.0)
    state = tmp_path / "state"
    replay.replay([InputSpec("linux:audit", first)], app_dir=built_app, state_dir=state, only=[CHAIN])
    assert (state / "escape_linux_lineage.json").is_file()
    later = replay.replay([InputSpec("linux:audit", second)], app_dir=built_app, state_dir=state, only=[CHAIN])
    nsenter = [a for a in later if "nsenter_host_exec" in a["summary"]]
    assert len(nsenter) == 1 and nsenter[0]["severity"] == "critical"
    assert "persisted state" in nsenter[0]["summary"]
    fresh = replay.replay([InputSpec("linux:audit", second)], app_dir=built_app, state_dir=tmp_path / "empty",
                          only=[CHAIN])
    assert all("persisted state" not in a["summary"] for a in fresh)
