"""Deterministic: escapecorrelate's state does not grow with 4x the events over one window.

Input: lab-run1 records from 25 s of real activity (E01r3's host shell through nsenter and E03r3's host-disk mount),
then the same window with every audit event four times (fresh serials, times 0.1 ms apart: the same processes
producing four times the events, as a busier host does). The alerts must be the same, and the state the engine keeps
must not grow. The engine is pure, so it runs in process: sizes are counted, not timed.
"""
import json
import re
from typing import Dict, List, Tuple

import pytest

from escape_engine.correlate import Correlator
from tests.unit.linux_lab import lab_records

WINDOW = (1795923925.0, 1795923950.0)
STAMP = re.compile(r"msg=audit\(([\d.]+):(\d+)\)")
CHUNK = 5000


def _records(factor: int) -> List[Dict[str, str]]:
    base = [r for r in lab_records() if WINDOW[0] <= float(r["_time"]) < WINDOW[1]]
    out = []
    for record in base:
        for copy in range(factor):
            raw = STAMP.sub(lambda m: "msg=audit(%.4f:%d)" % (float(m.group(1)) + copy * 0.0001,
                                                              int(m.group(2)) + copy * 1000000), record["_raw"], 1)
            out.append(dict(record, _raw=raw, _cd="%d:%s" % (copy, record["_cd"].split(":")[1])))
    out.sort(key=lambda r: float(r["_time"]), reverse=True)
    return out


def _run(factor: int) -> Tuple[List[Tuple[str, str]], int, int]:
    """(alerts as (finding, container), persisted state size in bytes, peak number of buffered events)."""
    engine = Correlator(window=300.0)
    records = _records(factor)
    peak = 0
    for start in range(0, len(records), CHUNK):
        engine.feed(records[start:start + CHUNK])
        peak = max(peak, len(engine._events))  # what the engine holds between chunks
    rows = engine.finish()
    size = len(json.dumps(engine.state(), sort_keys=True))
    return sorted((str(r["escape_finding"]), str(r["escape_container"])) for r in rows), size, peak


@pytest.fixture(scope="module")
def runs() -> Dict[int, Tuple[List[Tuple[str, str]], int, int]]:
    return {factor: _run(factor) for factor in (1, 4)}


def test_the_window_holds_escapes_so_the_comparison_means_something(runs: Dict[int, Tuple]) -> None:
    alerts, size, _peak = runs[1]
    assert {"nsenter_host_exec", "host_device_mount"} <= {finding for finding, _ in alerts}
    assert size > 1000


def test_four_times_the_events_give_the_same_alerts(runs: Dict[int, Tuple]) -> None:
    assert runs[4][0] == runs[1][0]


def test_persisted_state_does_not_grow_with_four_times_the_events_over_one_window(runs: Dict[int, Tuple]) -> None:
    one, four = runs[1][1], runs[4][1]
    assert four <= one * 1.05, "persisted lineage grew from {} to {} bytes with 4x the events".format(one, four)


@pytest.mark.xfail(strict=True, reason="escape_engine.correlate buffers every event of the search until finish() "
                   "to replay them in time order (Splunk hands them newest first), so its working set grows with the "
                   "events, not the window; see docs/performance.md. Remove this mark when the engine processes "
                   "incrementally.")
def test_working_state_does_not_grow_with_four_times_the_events_over_one_window(runs: Dict[int, Tuple]) -> None:
    one, four = runs[1][2], runs[4][2]
    assert four <= one * 1.05, "buffered events grew from {} to {} with 4x the events".format(one, four)
