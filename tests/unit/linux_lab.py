"""Helpers for the Linux analytic's tests: lab-run1 and the public auditd files as Splunk would hand them over."""
import calendar
import csv
import gzip
import time
from functools import cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple

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


# ---- lab-run2: the escape families of issue 20 (tests/data/lab-run2/README.md) ----------------------------------
LAB2 = DATA / "lab-run2"
LAB2_HOST = "labvm2"


@cache
def lab2_lines() -> Tuple[bytes, ...]:
    return tuple(gzip.decompress((LAB2 / "audit.log.gz").read_bytes()).split(b"\n"))


@cache
def lab2_records() -> Tuple[Dict[str, str], ...]:
    return tuple(to_records(list(enumerate(lab2_lines())), host=LAB2_HOST))


@cache
def lab2_steps() -> Tuple[Tuple[float, float, str, Dict[str, str]], ...]:
    """(begin, end, step, its labels.tsv row) per step of timeline.tsv."""
    with (LAB2 / "labels.tsv").open(encoding="utf-8", newline="") as handle:
        labels = {row["step"]: row for row in csv.DictReader(handle, delimiter="\t")}
    begins: Dict[str, float] = {}
    steps = []
    for line in (LAB2 / "timeline.tsv").read_text(encoding="utf-8").splitlines():
        when, kind, step, _label, _ = line.split("\t", 4)
        if kind == "BEGIN":
            begins[step] = float(when)
        else:
            steps.append((begins[step], float(when), step, labels[step]))
    return tuple(steps)


@cache
def lab2_times() -> Dict[str, float]:
    """_cd -> the audit time of that record."""
    times = {}
    for index, line in enumerate(lab2_lines()):
        key = stamp_serial(line)
        if key:
            times["0:%d" % index] = float(key[0])
    return times
