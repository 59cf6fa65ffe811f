"""Helpers for the Linux analytic's tests: lab-run1 and the public auditd files as Splunk would hand them over."""
import calendar
import csv
import gzip
import time
from functools import cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from escape_engine.correlate import run
from escape_engine.ground import SEVERITIES
from tests.conftest import DATA

LAB = DATA / "lab-run1"
PUBLIC_AUDITD = DATA / "public" / "linux_auditd"
HOST = "labvm"


@cache
def lab_lines() -> Tuple[bytes, ...]:
    """The raw audit log as bytes split on b"\\n" only (0x1D stays inside its ENRICHED record)."""
    return tuple(gzip.decompress((LAB / "audit-session1.log.gz").read_bytes()).split(b"\n"))


def stamp_serial(line: bytes) -> Optional[Tuple[str, str]]:
    start = line.find(b"msg=audit(")
    if start < 0:
        return None
    end = line.find(b")", start)
    stamp, _, serial = line[start + 10:end].decode().rpartition(":")
    return stamp, serial


def to_records(lines: List[Tuple[int, bytes]], host: str = HOST, source: str = "/var/log/audit/audit.log") -> List[Dict[str, str]]:
    """One Splunk event per line (as linux:audit breaks it), _cd = 0:<line index>, newest first."""
    records = []
    for index, line in lines:
        if not line:
            continue
        key = stamp_serial(line)
        records.append({"_raw": line.decode("utf-8", "replace"), "host": host, "_cd": "0:%d" % index,
                        "_time": key[0] if key else "0", "source": source, "sourcetype": "linux:audit"})
    records.sort(key=lambda r: float(r["_time"]), reverse=True)
    return records


@cache
def lab_records() -> Tuple[Dict[str, str], ...]:
    return tuple(to_records(list(enumerate(lab_lines()))))


@cache
def ground_truth() -> Tuple[Dict[str, str], ...]:
    with (LAB / "ground-truth-auditd.tsv").open(encoding="utf-8", newline="") as handle:
        return tuple(csv.DictReader(handle, delimiter="\t"))


@cache
def cds_by_event() -> Dict[Tuple[str, str], Tuple[str, ...]]:
    """(epoch as logged, serial) -> the _cd of every record of that event."""
    index: Dict[Tuple[str, str], List[str]] = {}
    for position, line in enumerate(lab_lines()):
        key = stamp_serial(line)
        if key:
            index.setdefault(key, []).append("0:%d" % position)
    return {k: tuple(v) for k, v in index.items()}


def event_cds(row: Dict[str, str]) -> Tuple[str, ...]:
    return cds_by_event().get((row["epoch"], row["serial"]), ())


def public_text(path: Path) -> List[bytes]:
    """Audit lines of a public sample: a .log file, or the record lines inside a go-libaudit YAML fixture."""
    lines = path.read_bytes().split(b"\n")
    return [line.strip() for line in lines if b"type=" in line and b"msg=audit(" in line]


def interpreted_records(path: Path) -> List[Dict[str, str]]:
    """ausearch -i text (sourcetype auditd): local (here UTC) time in msg=audit(...), which Splunk turns into _time."""
    records = []
    for index, line in enumerate(path.read_bytes().split(b"\n")):
        if not line.startswith(b"type="):
            continue
        stamp = line.split(b"msg=audit(")[1].split(b")")[0].decode().rpartition(":")[0]
        day, clock = stamp.split(" ")
        whole, _, fraction = clock.partition(".")
        epoch = calendar.timegm(time.strptime(day + " " + whole, "%m/%d/%y %H:%M:%S")) + float("0." + fraction)
        records.append({"_raw": line.decode(), "_time": "%.3f" % epoch, "host": HOST, "_cd": "1:%d" % index,
                        "sourcetype": "auditd"})
    records.sort(key=lambda r: float(r["_time"]), reverse=True)
    return records


# ---- lab-run2 and lab-run3: the escape families of issue 20 (tests/data/<capture>/README.md) ----------------------
# A capture of tests/lab/escape_lab.sh: audit.log.gz, timeline.tsv (the lab's step markers) and labels.tsv.
LAB2, LAB2_HOST = "lab-run2", "labvm2"
LAB3, LAB3_HOST = "lab-run3", "labvm3"


@cache
def capture_lines(capture: str) -> Tuple[bytes, ...]:
    return tuple(gzip.decompress((DATA / capture / "audit.log.gz").read_bytes()).split(b"\n"))


@cache
def capture_records(capture: str, host: str) -> Tuple[Dict[str, str], ...]:
    return tuple(to_records(list(enumerate(capture_lines(capture))), host=host))


@cache
def capture_steps(capture: str) -> Tuple[Tuple[float, float, str, Dict[str, str]], ...]:
    """(begin, end, step, its labels.tsv row) per step of timeline.tsv."""
    with (DATA / capture / "labels.tsv").open(encoding="utf-8", newline="") as handle:
        labels = {row["step"]: row for row in csv.DictReader(handle, delimiter="\t")}
    begins: Dict[str, float] = {}
    steps = []
    for line in (DATA / capture / "timeline.tsv").read_text(encoding="utf-8").splitlines():
        when, kind, step, _label, _ = line.split("\t", 4)
        if kind == "BEGIN":
            begins[step] = float(when)
        else:
            steps.append((begins[step], float(when), step, labels[step]))
    return tuple(steps)


@cache
def capture_times(capture: str) -> Dict[str, float]:
    """_cd -> the audit time of that record."""
    times = {}
    for index, line in enumerate(capture_lines(capture)):
        key = stamp_serial(line)
        if key:
            times["0:%d" % index] = float(key[0])
    return times


def lab2_records() -> Tuple[Dict[str, str], ...]:
    return capture_records(LAB2, LAB2_HOST)


def lab2_steps() -> Tuple[Tuple[float, float, str, Dict[str, str]], ...]:
    return capture_steps(LAB2)


def lab2_times() -> Dict[str, float]:
    return capture_times(LAB2)


Steps = Dict[str, Tuple[float, float, Dict[str, str]]]


def capture_alerts(records: List[Dict[str, str]], times: Dict[str, float]) -> List[Dict]:
    """What the chain and the attempt detections read (report=escapes, report=attempts) from a capture's records,
    each row with the audit times of its evidence (`_times`)."""
    found = list(run(records, report="escapes")) + list(run(records, report="attempts"))
    for row in found:
        row["_times"] = [times[cd] for cd in row["escape_evidence_cd"] if cd in times]
    return found


def rows_in(rows: List[Dict], steps: Steps, step: str) -> List[Dict]:
    """The rows with evidence inside a step's marker window."""
    begin, end, _ = steps[step]
    return [r for r in rows if any(begin <= t <= end for t in r["_times"])]


def check_step_alerts(rows: List[Dict], steps: Steps, step: str) -> None:
    """An escape, suspicious or attempt step alerts with its stated finding and severity and nothing above it; an
    attempt step only as an attempt."""
    labels = steps[step][2]
    found = rows_in(rows, steps, step)
    assert any(r["escape_finding"] == labels["finding"] and r["escape_severity"] == labels["severity"]
               for r in found), (step, [(r["escape_finding"], r["escape_severity"]) for r in found])
    assert max(SEVERITIES.index(r["escape_severity"]) for r in found) == SEVERITIES.index(labels["severity"]), step
    if labels["label"] == "attempt":
        assert {r["escape_category"] for r in found} == {"attempt"}, step


def outside_steps(rows: List[Dict], steps: Steps) -> List[str]:
    """The summaries of rows with no evidence inside any step's window."""
    return [r["escape_summary"] for r in rows
            if not any(begin <= t <= end for begin, end, _ in steps.values() for t in r["_times"])]
