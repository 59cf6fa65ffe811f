"""Issue 16's Linux acceptance tests over ./build.sh simulate (tools/simulate.py): the lineage kept between hourly runs
in the stand-in KV store (tools/kvstandin.py), as the scheduler runs the Linux Escape Correlation and both Linux
detections.

Input: the lab capture tests/data/lab-run1/audit-session1.log.gz (real, see tests/data/PROVENANCE.md), read as bytes
split on LF; for the first test every record from E01r3's nsenter on is moved two hours later (its stamp rewritten),
so the container's start and its shell are in one hourly run and the escape that shell runs is in another.
"""
import gzip
import json
import re
from pathlib import Path
from typing import Dict, List

import pytest

from escape_io import linux_lineage
from tools import kvstandin, simulate
from tools.inputs import parse_input
from tools.schedule import parse_iso

LAB = Path(__file__).resolve().parents[1] / "data" / "lab-run1" / "audit-session1.log.gz"
DETECTIONS = ["linux_container_escape_chain", "linux_container_escape_attempt"]
NSENTER = 1795923940.420  # E01r3: the container's shell (pid 29974) ran at .406, its nsenter (pid 30003) at .422
E01R3 = "ceeb6cd20f98acb210675556a012202fdb51cc1b88eb9cc2c8904bc4e45f6815"  # docker-inspect.json: esc01-nsenter-r3
SHIFT = 7200.0
_STAMP = re.compile(rb"msg=audit\((\d+\.\d+):")


def shifted_capture(path: Path) -> Path:
    """The lab capture with every record stamped at or after NSENTER moved SHIFT seconds later."""
    out = []
    for line in gzip.decompress(LAB.read_bytes()).split(b"\n"):
        found = _STAMP.search(line)
        if found is not None and float(found.group(1)) >= NSENTER:
            stamp = b"%.3f" % (float(found.group(1)) + SHIFT)
            line = line[:found.start(1)] + stamp + line[found.end(1):]
        out.append(line)
    path.write_bytes(b"\n".join(out))
    return path


def run(path: Path, start: str, end: str, state: Path) -> List[Dict[str, object]]:
    alerts, failures = simulate.simulate([parse_input("linux:audit={}".format(path))], parse_iso(start),
                                         parse_iso(end), enable=DETECTIONS, state_dir=state)
    assert failures == []
    return alerts


def fleet_lineage(state: Path, hosts: int) -> None:
    """The lineage other hosts of a fleet left in the KV store: `hosts` documents near the per-host cap
    (escape_io.linux_lineage.DOCUMENT_CAP), more than one query result may hold (max_size_per_result_mb) in all."""
    proc = {"pid": "1", "ppid": "0", "start": 1795900000.0, "last": 1795900000.0, "comm": "sh", "exe": "/bin/sh",
            "dev": "00:31", "argv": ["sh", "-c", "sleep 3600"], "uid": "0", "container": "c" * 64,
            "evidence": "runtime:runc create(pid 1) started it", "runtime": False, "helper": False, "identity": "exact",
            "serves": ""}
    entry = len(json.dumps(proc))
    procs = [dict(proc, pid=str(n)) for n in range(linux_lineage.STATE_CHARS // (entry + 4))]
    text = json.dumps({"host": "", "max_time": 1795900000.0, "procs": procs, "containers": {}, "host_devs": {},
                       "layers": {}, "devices": {}}, sort_keys=True)
    documents = [{"_key": "fleet-node-%03d" % i, "state": text} for i in range(hosts)]
    assert sum(len(json.dumps(d)) for d in documents) > kvstandin.MAX_SIZE_PER_RESULT
    assert max(len(json.dumps(d)) for d in documents) <= linux_lineage.DOCUMENT_CAP
    state.mkdir(parents=True)
    (state / "escape_linux_lineage.json").write_text(json.dumps(documents), encoding="utf-8")


def test_a_container_started_two_hours_before_its_escape_is_attributed(built_app: Path, tmp_path: Path) -> None:
    """The container (esc01-nsenter-r3) and its shell start at 03:45:40, the shell's nsenter to the host runs at
    05:45:40: the hourly correlation that sees the escape knows the shell only from the lineage the runs before it
    saved. The KV store also holds the lineage of 25 other hosts of the fleet (57 MB in all): a run reads only its own
    hosts' documents. Before, every run read the whole collection, over max_size_per_result_mb, and failed."""
    capture = shifted_capture(tmp_path / "audit.log")
    fleet_lineage(tmp_path / "state", 25)
    alerts = run(capture, "2026-11-29T03:00:00Z", "2026-11-29T07:30:00Z", tmp_path / "state")
    escapes = [a for a in alerts if "nsenter_host_exec" in str(a["summary"])]
    assert len(escapes) == 1, [a["summary"] for a in alerts]
    escape = escapes[0]
    assert escape["run_time"] == "2026-11-29T07:13:00Z" and escape["time"] == "2026-11-29T05:45:40.430Z"
    assert "Container Escape Chain" in str(escape["detection"])
    assert E01R3 in str(escape["summary"]) and "sh(pid 29974)" in str(escape["summary"])
    assert "[persisted state]" in str(escape["summary"])  # the shell came from the saved lineage
    saved = {d["_key"] for d in json.loads((tmp_path / "state" / "escape_linux_lineage.json").read_text())}
    assert "replay" in saved and len(saved) == 26


def test_a_refused_lineage_save_still_lets_the_detections_alert(built_app: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A KV store that refuses every save of the lineage (tools/kvstandin.py REFUSE_FILE): each correlation run warns
    and still saves its findings, so both detections alert as with a working KV store (the 16 alerts of the capture,
    test_escapefindings.py). Before, the refused save ended the correlation run before its findings were saved."""
    state = tmp_path / "state"
    state.mkdir()
    (state / kvstandin.REFUSE_FILE).write_text(linux_lineage.COLLECTION + "\n", encoding="utf-8")
    alerts = run(LAB, "2026-11-29T03:40:00Z", "2026-11-29T05:30:00Z", state)
    assert len(alerts) == 16
    assert sorted({str(a["detection"]).split(" - ")[1] for a in alerts}) == [
        "Blocked Container Escape Attempt on Linux Host", "Container Escape Chain on Linux Host"]
    assert "the lineage was not saved" in capsys.readouterr().err
    assert not (state / "escape_linux_lineage.json").exists()
