"""The Linux correlation's saved findings (escape_engine.findings, escape_io.linux_findings): one correlation pass
saves them, each Linux detection reads those saved within its own dispatch window (issue 17)."""
import json
from pathlib import Path

import pytest

from escape_engine.findings import KEEP_SECONDS, documents, select
from escape_io import linux_findings
from escape_io.store import FileStore

ESCAPE = {"_time": "100.5", "host": "h1", "escape_category": "escape", "escape_chain_id": "c1",
          "escape_evidence_cd": ["0:1", "0:2"], "escape_severity": "critical"}
SUSPICIOUS = {"_time": "300", "host": "h1", "escape_category": "suspicious", "escape_chain_id": "c2"}
ATTEMPT = {"_time": "200", "host": "h2", "escape_category": "attempt", "escape_chain_id": "c3"}


def test_each_report_reads_its_categories_newest_first_and_rows_come_back_whole() -> None:
    saved = documents([ESCAPE, SUSPICIOUS, ATTEMPT], 1000.0)
    escapes = select(saved, "escapes", None, None)
    assert escapes.rows == [SUSPICIOUS, ESCAPE] and escapes.malformed == 0  # multivalue evidence kept as a list
    assert select(saved, "attempts", None, None).rows == [ATTEMPT]
    assert len(select(saved, "all", None, None).rows) == 3 and escapes.runs == 1


def test_a_row_is_read_by_the_run_whose_window_holds_its_save_time_once() -> None:
    saved = documents([ESCAPE], 1000.0) + documents([ATTEMPT], 4600.0)
    # consecutive hourly windows [earliest, latest): each save falls in exactly one
    assert select(saved, "all", -2600.0, 1000.0).rows == []
    assert select(saved, "all", 1000.0, 4600.0).rows == [ESCAPE]
    assert select(saved, "all", 4600.0, 8200.0).rows == [ATTEMPT]


def test_a_run_that_found_nothing_is_told_from_no_run() -> None:
    saved = documents([], 1000.0)
    assert (select(saved, "all", 0.0, 2000.0).runs, select(saved, "all", 2000.0, 3000.0).runs) == (1, 0)


def test_documents_that_are_no_findings_are_counted_not_raised() -> None:
    good = documents([ATTEMPT], 10.0)
    bad = [{"_key": "x", "saved": 10.0, "row": "{not json"}, {"_key": "y", "saved": "nan", "row": "{}"},
           {"_key": "z", "saved": 10.0, "row": json.dumps({"a": 1})}, "text", {"_key": "w", "saved": 10.0}]
    found = select(good + bad, "attempts", None, None)
    assert found.rows == [ATTEMPT] and found.malformed == 5


def test_unknown_report_is_refused() -> None:
    with pytest.raises(ValueError, match="report must be one of"):
        select([], "chains", None, None)


def test_a_save_adds_rows_and_deletes_those_no_run_will_read_again(tmp_path: Path) -> None:
    collection = FileStore(str(tmp_path)).collection(linux_findings.COLLECTION)
    linux_findings.save(collection, [ESCAPE], 1000.0)
    linux_findings.save(collection, [ATTEMPT], 2000.0)  # a rerun never replaces earlier rows
    assert len(linux_findings.load(collection)) == 4  # two rows, two run markers
    linux_findings.save(collection, [SUSPICIOUS], 1000.0 + KEEP_SECONDS + 1)
    kept = linux_findings.load(collection)
    # which rows survive the age-out; the order is the query's (sorted by _key, escape_io.store)
    assert sorted(json.loads(d["row"])["escape_chain_id"] for d in kept if "row" in d) == ["c2", "c3"]
    assert len(kept) == 4
