"""Issue 16's Linux acceptance tests over ./build.sh simulate (tools/simulate.py): the lineage kept between hourly runs
in the stand-in KV store (tools/kvstandin.py), as the scheduler runs the Linux Escape Correlation and both Linux
detections.

Input: the lab capture tests/data/lab-run1/audit-session1.log.gz (real, see tests/data/PROVENANCE.md), read as bytes
split on LF; for the first test every record from E01r3's nsenter on is moved two hours later (its stamp rewritten),
so the container's start and its shell are in one hourly run and the escape that shell runs is in another.
"""
import gzip
import re
from pathlib import Path
from typing import Dict, List

import pytest

from tools import kvstandin, simulate
from tools.inputs import parse_input
from tools.schedule import parse_iso

LAB = Path(__file__).resolve().parents[1] / "data" / "lab-run1" / "audit-session1.log.gz"
DETECTIONS = ["linux_container_escape_chain", "linux_container_escape_attempt"]
NSENTER = 1795923940.420  # E01r3: the container's shell (pid 29974) ran at .406, its nsenter (pid 30003) at .422
E01R3 = "container:esc01-nsenter-r3"
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


def test_a_container_started_two_hours_before_its_escape_is_attributed(built_app: Path, tmp_path: Path) -> None:
    capture = shifted_capture(tmp_path / "audit.log")
    alerts = run(capture, "2026-11-29T03:00:00Z", "2026-11-29T07:30:00Z", tmp_path / "state")
    escapes = [a for a in alerts if "nsenter" in str(a["summary"]) and "Chain" in str(a["detection"])]
    assert escapes, [a["summary"] for a in alerts]
    for alert in escapes:
        assert alert["run_time"] == "2026-11-29T07:13:00Z"  # the escape is two hours after the container started
        fields = alert["fields"]
        assert isinstance(fields, dict)
        assert fields["escape_identity"] == "exact" and "[persisted state]" in str(fields["escape_attribution"])
        assert str(fields["escape_container_id"]).startswith("c2f")
