"""One Linux correlation pass per schedule (issue 17): escapecorrelate findings=save and escapefindings through the
real splunklib dispatcher over SCP v2, and the replay running the shared correlation once for both detections."""
import json
import shutil
from pathlib import Path
from typing import Dict, List

import pytest

from escape_engine.findings import documents
from escape_io import kvlimits
from tests.integration.harness.scp import run_command
from tests.unit.linux_lab import LAB
from tools import replay
from tools.inputs import InputSpec

ESCAPE = {"_time": "100", "host": "h1", "escape_category": "escape", "escape_chain_id": "c1",
          "escape_evidence_cd": ["0:1", "0:2"], "escape_summary": "s"}
ATTEMPT = {"_time": "200", "host": "h2", "escape_category": "attempt", "escape_chain_id": "c3", "escape_summary": "t"}


@pytest.fixture()
def bin_dir(built_app: Path, tmp_path: Path) -> Path:
    app = tmp_path / "TA_escape_to_host"
    shutil.copytree(built_app / "bin", app / "bin")
    (app / "lib").symlink_to(built_app / "lib")
    return app / "bin"


def _saved(state: Path, docs: List[Dict[str, object]]) -> None:
    state.mkdir(parents=True, exist_ok=True)
    (state / "escape_linux_findings.json").write_text(json.dumps(docs), encoding="utf-8")


def test_escapefindings_is_a_generating_search_head_command(bin_dir: Path, tmp_path: Path) -> None:
    run = run_command(bin_dir / "escapefindings.py", [], [[]], state_dir=tmp_path / "state")
    assert run.getinfo.get("generating") is True and run.getinfo.get("type") != "streaming", run.getinfo


def test_escapefindings_reads_its_report_saved_within_its_window(bin_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    _saved(state, documents([ESCAPE, ATTEMPT], 1000.0) + documents([dict(ESCAPE, escape_chain_id="c9")], 5000.0))
    window = {"earliest_time": "900", "latest_time": "1100"}
    escapes = run_command(bin_dir / "escapefindings.py", ["report=escapes"], [[]], state_dir=state, info=window)
    attempts = run_command(bin_dir / "escapefindings.py", ["report=attempts"], [[]], state_dir=state, info=window)
    assert escapes.returncode == 0 and not escapes.errors(), escapes.stderr
    assert [r["escape_chain_id"] for r in escapes.records] == ["c1"]
    assert escapes.records[0]["escape_evidence_cd"] == ["0:1", "0:2"]  # a multivalue field stays one
    assert [r["escape_chain_id"] for r in attempts.records] == ["c3"]
    assert not [m for m in escapes.messages if m[0] == "WARN"]


def test_escapefindings_warns_when_no_correlation_ran_in_its_window(bin_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    _saved(state, documents([ESCAPE], 1000.0) + [{"_key": "bad", "saved": 1000.0, "row": "{cut"}])
    run = run_command(bin_dir / "escapefindings.py", [], [[]], state_dir=state,
                      info={"earliest_time": "2000", "latest_time": "3000"})
    texts = " ".join(m[1] for m in run.messages)
    assert run.returncode == 0 and run.records == []
    assert "no run of the Linux Escape Correlation search" in texts and "1 saved document(s)" in texts


def test_the_replay_correlates_once_for_both_linux_detections(built_app: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    alerts = replay.replay([InputSpec("linux:audit", LAB / "audit-session1.log.gz")], app_dir=built_app,
                           state_dir=state, only=["linux_container_escape_chain", "linux_container_escape_attempt"])
    saved = json.loads((state / "escape_linux_findings.json").read_text())
    assert [d for d in saved if d["category"] == "run"] and len([d for d in saved if d["category"] == "run"]) == 1
    rows = [d for d in saved if d["category"] != "run"]
    assert len(rows) == len(alerts) == 16  # every saved finding alerts once, in one of the two detections
    # a second replay into the same --state reads only what it saved itself: the rows above are not alerted again
    quiet = LAB.parent / "public" / "linux_auditd" / "go-libaudit_audit-rhel7.log"
    again = replay.replay([InputSpec("linux:audit", quiet)], app_dir=built_app, state_dir=state,
                          only=["linux_container_escape_chain", "linux_container_escape_attempt"])
    assert again == [] and len([d for d in json.loads((state / "escape_linux_findings.json").read_text())
                                if d["category"] == "run"]) == 2


def test_escapefindings_reads_past_max_rows_per_query(bin_dir: Path, tmp_path: Path) -> None:
    """More saved documents than one KV store query returns (max_rows_per_query, 50,000; the stand-in cuts there as
    splunkd does, silently): every row in the window is still read, a page at a time. Fails when the command reads
    the collection with one query (main's code returned 998 of the 1,000 rows)."""
    state = tmp_path / "state"
    old = documents([dict(ESCAPE, escape_chain_id="old%05d" % i) for i in range(49000)], 500.0)
    new = documents([dict(ESCAPE, escape_chain_id="new%05d" % i) for i in range(1000)], 1000.0)
    _saved(state, old + new)
    assert len(old + new) > kvlimits.MAX_ROWS_PER_QUERY
    run = run_command(bin_dir / "escapefindings.py", ["report=escapes"], [[]], state_dir=state,
                      info={"earliest_time": "900", "latest_time": "1100"})
    assert run.returncode == 0 and not run.errors(), run.stderr[-2000:]
    assert len(run.records) == 1000 and {r["escape_chain_id"] for r in run.records} == {
        "new%05d" % i for i in range(1000)}
