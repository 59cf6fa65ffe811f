"""Deterministic: escapecorrelate's state does not grow with 4x (and 8x) the events over one window.

Input: lab-run1 records from 25 s of real activity (E01r3's host shell through nsenter and E03r3's host-disk mount),
then the same window with every audit event four and eight times (fresh serials, times 0.1 ms apart: the same
processes producing more events, as a busier host does). The alerts must be the same, the persisted state must not
grow, and neither must the memory the command needs: it runs as escapecorrelate.py does (each chunk encoded and
spooled to a sorted run file by escape_io.spool.Spool, the runs merged into Correlator.replay), and the peak of the
Python memory it allocates is counted with tracemalloc (sizes are counted, not timed). Last, the same window copied
later in time (a longer search range): the chain items the engine holds at once must not grow.
"""
import json
import re
import tempfile
import tracemalloc
from typing import Dict, List, Tuple

import pytest

from escape_engine import correlate
from escape_engine.chains import Clusters
from escape_engine.correlate import Correlator
from escape_io.spool import Spool
from tests.unit.linux_lab import lab_records

WINDOW = (1795923925.0, 1795923950.0)
STAMP = re.compile(r"msg=audit\(([\d.]+):(\d+)\)")
CHUNK = 5000


def _records(factor: int) -> List[Dict[str, str]]:
    base = [r for r in lab_records() if WINDOW[0] <= float(r["_time"]) < WINDOW[1]]
    out = []
    for record in base:
        for copy in range(factor):
            raw = STAMP.sub(lambda m, copy=copy: "msg=audit(%.4f:%d)" % (float(m.group(1)) + copy * 0.0001,
                                                              int(m.group(2)) + copy * 1000000), record["_raw"], 1)
            out.append(dict(record, _raw=raw, _cd="%d:%s" % (copy, record["_cd"].split(":")[1])))
    out.sort(key=lambda r: float(r["_time"]), reverse=True)
    return out


def _run(factor: int) -> Tuple[List[Tuple[str, str]], int, int]:
    """(alerts as (finding, container), persisted state size in bytes, peak bytes allocated while correlating)."""
    records = _records(factor)
    chunks = [records[start:start + CHUNK] for start in range(0, len(records), CHUNK)]
    del records
    engine = Correlator(window=300.0)
    spool = Spool()
    tracemalloc.start()
    try:
        for chunk in chunks:
            spool.add_chunk(engine.encode(chunk))
        engine.replay(spool.merged())
        rows = engine.finish()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = len(json.dumps(engine.state(), sort_keys=True))
    return sorted((str(r["escape_finding"]), str(r["escape_container"])) for r in rows), size, peak


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Dict[int, Tuple[List[Tuple[str, str]], int, int]]:
    saved = tempfile.tempdir
    tempfile.tempdir = str(tmp_path_factory.mktemp("dispatch"))  # what splunklib does with the dispatch directory
    try:
        _run(1)  # warm-up: module caches (re, json) are not the command's working state
        return {factor: _run(factor) for factor in (1, 4, 8)}
    finally:
        tempfile.tempdir = saved


def test_the_window_holds_escapes_so_the_comparison_means_something(runs: Dict[int, Tuple]) -> None:
    alerts, size, _peak = runs[1]
    assert {"nsenter_host_exec", "host_device_mount"} <= {finding for finding, _ in alerts}
    assert size > 1000


def test_four_times_the_events_give_the_same_alerts(runs: Dict[int, Tuple]) -> None:
    assert runs[4][0] == runs[1][0]


def test_persisted_state_does_not_grow_with_four_times_the_events_over_one_window(runs: Dict[int, Tuple]) -> None:
    one, four = runs[1][1], runs[4][1]
    assert four <= one * 1.05, "persisted lineage grew from {} to {} bytes with 4x the events".format(one, four)


def test_four_and_eight_times_the_events_give_the_same_alerts(runs: Dict[int, Tuple]) -> None:
    assert runs[8][0] == runs[1][0]


def test_working_memory_does_not_grow_with_twice_the_events_over_one_window(runs: Dict[int, Tuple]) -> None:
    # From 4x on, a chunk is full (CHUNK records) and each pid's image history (lineage.HISTORY_PER_PID) is full, so
    # doubling the events again must not need more memory. Holding every event until finish, as the engine did
    # before it spooled, needs about twice as much.
    four, eight = runs[4][2], runs[8][2]
    assert four > 100000, "the measure holds the chunk and the lineage ({} bytes)".format(four)
    assert eight <= four * 1.10, "peak memory grew from {} to {} bytes with twice the events".format(four, eight)


class _CountingClusters(Clusters):
    """Counts the most chain items the engine holds at once (the open clusters of its containers)."""

    peak_items = 0

    def add(self, host, key, item) -> None:  # type: ignore[no-untyped-def]
        super().add(host, key, item)
        self.peak_items = max(self.peak_items, self.held())


def _later_copies(copies: int, gap: float) -> List[Dict[str, str]]:
    """The lab window `copies` times, each copy `gap` seconds after the previous one (a longer search range)."""
    base = [r for r in lab_records() if WINDOW[0] <= float(r["_time"]) < WINDOW[1]]
    out = []
    for copy in range(copies):
        for record in base:
            raw = STAMP.sub(lambda m, copy=copy: "msg=audit(%.3f:%d)" % (float(m.group(1)) + copy * gap,
                                                             int(m.group(2)) + copy * 1000000), record["_raw"], 1)
            out.append(dict(record, _raw=raw, _time="%.3f" % (float(record["_time"]) + copy * gap),
                            _cd="%d:%s" % (copy, record["_cd"].split(":")[1])))
    out.sort(key=lambda r: float(r["_time"]), reverse=True)
    return out


def test_chain_items_held_do_not_grow_with_the_search_range(monkeypatch: pytest.MonkeyPatch) -> None:
    # Spec: memory is bounded by the window and the persisted state, not by the search range. Four copies of the
    # window, each 1,000 s after the previous (more than the 300 s window), give four times the alerts while the
    # engine holds no more chain items at once than for one copy.
    monkeypatch.setattr(correlate, "Clusters", _CountingClusters)
    peaks, alerts = {}, {}
    for copies in (1, 4):
        engine = Correlator(window=300.0)
        engine.feed(_later_copies(copies, 1000.0))
        alerts[copies] = sorted(str(r["escape_finding"]) for r in engine.finish())
        clusters = engine._clusters
        assert isinstance(clusters, _CountingClusters)
        peaks[copies] = clusters.peak_items
    assert alerts[1] and alerts[4] == sorted(alerts[1] * 4)
    assert 0 < peaks[4] <= peaks[1], "held chain items grew from {} to {}".format(peaks[1], peaks[4])
