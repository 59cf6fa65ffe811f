"""escapecorrelate's input side: spool lines (their string order is the replay order, they survive any field text,
and the spooled path through escape_io.spool.Spool's run files gives what the in-memory path gives), and malformed
events that look almost valid (Unicode digits, empty Sysmon events), which are counted and never stop the search."""
import math
import re
import struct
import tempfile
from pathlib import Path
from typing import Dict, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escape_engine import intake, spoolline
from escape_engine.correlate import Correlator
from escape_io.spool import Spool
from tests.unit.linux_lab import lab_records

# Every text a field may hold, weighted towards the characters the line format depends on.
TEXT = st.text(alphabet=st.sampled_from(["a", "Z", "0", "\\", "\t", "\n", "\r", "\x00", "\x1d", "\x85", "\u2028",
                                         "é", "\udcff", "t", "n"]), max_size=12)
TIMES = st.floats(allow_nan=False) | st.sampled_from([0.0, -0.0, 1795923940.422, -1.5, math.inf, -math.inf])


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_escaped_text_holds_no_separator_and_comes_back_whole(text: str) -> None:
    escaped = spoolline.escape(text)
    assert not {"\t", "\n", "\r"} & set(escaped)
    assert spoolline.unescape(escaped) == text


@settings(max_examples=300, deadline=None)
@given(TIMES, TIMES)
def test_time_keys_sort_as_the_numbers_do_and_decode_exactly(a: float, b: float) -> None:
    ka, kb = spoolline.time_key(a), spoolline.time_key(b)
    assert len(ka) == len(kb) == 16
    assert (ka < kb) == (a < b) and (ka == kb) == (a == b)
    assert spoolline.time_value(ka) == a and struct.pack(">d", spoolline.time_value(ka)) != struct.pack(">d", -0.0)


def _audit(host: str, when: float, serial: str, cd: str) -> Dict[str, str]:
    return {"_raw": "node=%s type=SYSCALL msg=audit(%r:%s): arch=c000003e syscall=59 success=yes pid=1" % (
        host, when, serial), "_time": repr(when), "host": "fallback", "_cd": cd}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "ab", "a\\", "a\x01", "b", "é"]),
                          st.floats(min_value=0.0, max_value=intake.EPOCH_RANGE[1], exclude_max=True),
                          st.integers(min_value=0, max_value=10 ** 25).map(str) | st.sampled_from(["007", "0"])),
                min_size=1, max_size=40))
def test_string_order_of_lines_groups_hosts_and_orders_time_then_serial(events: List) -> None:
    engine = Correlator()
    lines = engine.encode([_audit(h, w, s, "1:%d" % i) for i, (h, w, s) in enumerate(events)])
    assert len(lines) == len(events)
    lines.sort()
    decoded = [spoolline.decode(line) for line in lines]
    hosts = [line.host for line in decoded]
    seen: List[str] = []
    for host in hosts:  # each host's lines are contiguous
        if not seen or seen[-1] != host:
            assert host not in seen
            seen.append(host)
    for host in seen:
        keys = [(line.time, int(line.serial)) for line in decoded if line.host == host]
        assert keys == sorted(keys)


def test_a_serial_that_python_calls_a_digit_but_int_refuses_is_counted_malformed() -> None:
    engine = Correlator(report="all")
    engine.feed([_audit("h", 1795923940.0, "\u00b2", "1:1"), _audit("h", 1795923941.0, "12", "1:2")])
    engine.finish()
    assert (engine.summary["malformed"], engine.summary["audit_events"]) == (1, 1)


def test_an_interpreted_stamp_reading_sysmon_is_an_audit_event_not_a_sysmon_one() -> None:
    # ausearch -i stamps are free text; the sysmon marker must not be something an audit stamp can spell.
    engine = Correlator(report="all")
    engine.feed([{"_raw": "type=SYSCALL msg=audit(sysmon:12) : arch=x86_64 syscall=execve success=yes pid=1",
                  "_time": "1795923940", "host": "h", "_cd": "1:1"}])
    engine.finish()
    assert (engine.summary["audit_events"], engine.summary["sysmon_events"], engine.summary["malformed"]) == (1, 0, 0)


def test_spool_files_give_back_every_line_in_order_whatever_the_text(tmp_path: Path) -> None:
    saved, tempfile.tempdir = tempfile.tempdir, str(tmp_path)
    try:
        spool = Spool()
        chunks = [["b\u2028x\x1dy\x85z", "a\rb", "a\udcffc", "c\\t"], ["a\x00", "b"], []]
        for chunk in chunks:
            spool.add_chunk(list(chunk))
        assert len(list(tmp_path.iterdir())) == 2
        assert list(spool.merged()) == sorted(line for chunk in chunks for line in chunk)
        assert list(tmp_path.iterdir()) == []  # run files are removed once read
    finally:
        tempfile.tempdir = saved


def test_more_runs_than_the_open_file_bound_are_merged_on_the_way(tmp_path: Path, monkeypatch) -> None:
    from escape_io import spool as spool_module
    monkeypatch.setattr(spool_module, "MAX_RUNS", 3)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    spool = Spool()
    expected = []
    for n in range(10):
        chunk = ["%03d" % ((n * 7 + k * 13) % 100) for k in range(5)]
        expected.extend(chunk)
        spool.add_chunk(list(chunk))
        assert len(list(tmp_path.iterdir())) <= 4
    assert list(spool.merged()) == sorted(expected)


@pytest.mark.parametrize("chunk", [997, 5000])
def test_the_spooled_path_gives_the_rows_and_counts_of_the_in_memory_path(tmp_path: Path, monkeypatch,
                                                                          chunk: int) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    records = [r for r in lab_records() if 1795923885.0 <= float(r["_time"]) <= 1795923950.0]
    memory, spooled = Correlator(report="all"), Correlator(report="all")
    spool = Spool()
    for start in range(0, len(records), chunk):
        memory.feed(records[start:start + chunk])
        spool.add_chunk(spooled.encode(records[start:start + chunk]))
    spooled.replay(spool.merged())
    rows = memory.finish()
    assert len(rows) >= 8
    assert spooled.finish() == rows
    assert spooled.summary == memory.summary and spooled.state() == memory.state()


@pytest.mark.parametrize("field", ["pid", "ppid", "syscall"])
def test_unicode_digits_in_numeric_audit_fields_do_not_stop_the_search(field: str) -> None:
    # Mutate every SYSCALL record of the lab window that holds the escapes: "²".isdigit() is True, int("²") raises.
    records = [r for r in lab_records() if 1795923885.0 <= float(r["_time"]) <= 1795923950.0]
    pattern = re.compile(r"(?<= %s=)\d+" % field)
    mutated = [dict(r, _raw=pattern.sub("\u00b2", r["_raw"], 1)) if "type=SYSCALL" in r["_raw"] else r
               for r in records]
    assert mutated != records
    engine = Correlator(report="all")
    engine.feed(mutated)
    engine.finish()
    assert engine.summary["audit_events"] > 1000


@pytest.mark.parametrize("raw", ["<Event><System><EventID>1</EventID></System></Event>",
                                 "<Event><EventID>11</EventID><Data Name='Image'>/bin/sh</Data></Event>",
                                 "<Event>" * 20 + "<EventID>1</EventID>"])
def test_a_sysmon_event_without_its_process_or_file_is_counted_malformed(raw: str) -> None:
    engine = Correlator(report="all")
    engine.feed([{"_raw": raw, "_time": "1795923940", "host": "h", "_cd": "1:1"}])
    engine.finish()
    assert (engine.summary["malformed"], engine.summary["sysmon_events"]) == (1, 0)


@pytest.mark.parametrize("stamp", ["1e300", "4102444800.5", "-5.0", "inf", "nan"])
def test_a_time_outside_1970_to_2100_is_malformed_and_cannot_age_out_the_persisted_lineage(stamp: str) -> None:
    # One far-future record made the host's newest time 1e300, and the TTL (counted back from it) dropped the lineage.
    records = [r for r in lab_records() if 1795923885.0 <= float(r["_time"]) <= 1795923950.0]
    engine = Correlator()
    engine.feed(records)
    engine.finish()
    poisoned = Correlator(state=engine.state())
    poisoned.feed([{"_raw": "type=SYSCALL msg=audit(%s:99): arch=c000003e syscall=59 success=yes pid=1" % stamp,
                    "_time": stamp, "host": "labvm", "_cd": "1:1"}])
    poisoned.finish()
    assert poisoned.summary["malformed"] == 1
    assert poisoned.state() == engine.state()


def test_unusable_entries_of_the_persisted_state_are_counted_and_reported() -> None:
    engine = Correlator(state={"labvm": {"procs": [{"pid": "1", "start": "nan"}, 7]}, "h2": "garbage"})
    engine.finish()
    assert engine.summary["state_dropped"] == 3
    assert any(level == "WARN" and "3 unusable entries" in text for level, text in engine.messages())
