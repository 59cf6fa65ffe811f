"""Privileged-launch threshold (AN0612 PrivilegedContainerThreshold).

Counts distinct privileged launches (rows of `escapeinspect` with escape_launch=1) per cluster or docker host and per
fixed period (periods aligned to multiples of `period` seconds since the epoch, so consecutive scheduled runs with
a window of one period count the same way). A group with more launches than `threshold` gives one row with the
count and the workloads. State is explicit: `feed()` once per chunk, `results()` after the last.
"""
from typing import Dict, Iterable, Iterator, List, Tuple

from .ground import Record, Row
from .incident import plural
from .scalars import finite_float, first_text

MAX_LISTED = 100        # workloads and evidence references listed per alert row


def _values(value: object) -> List[str]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return [value] if isinstance(value, str) and value else []


class _Group:
    def __init__(self) -> None:
        self.launches: Dict[str, Tuple[str, str]] = {}     # launch id -> (workload, evidence _cd)
        self.incidents: Dict[str, None] = {}                # escape_incident of each launch, in arrival order
        self.hosts: Dict[str, None] = {}


class ThresholdCounter:
    def __init__(self, *, threshold: int, period: int, by: str = "host") -> None:
        if threshold < 0:
            raise ValueError("threshold={} must be 0 or more".format(threshold))
        if period < 1:
            raise ValueError("period={} must be at least 1 second".format(period))
        if not by:
            raise ValueError("by= needs a field name")
        self.threshold = threshold
        self.period = period
        self.by = by
        self.groups: Dict[Tuple[str, int], _Group] = {}
        self.skipped = 0
        self.malformed = 0      # launch rows without a usable _time

    def feed(self, records: Iterable[Record]) -> None:
        for record in records:
            kinds = _values(record.get("escape_finding"))
            if first_text(record.get("escape_launch")) != "1" or not ("privileged" in kinds or "host_process" in kinds):
                self.skipped += 1
                continue
            when = finite_float(first_text(record.get("_time")))
            if when is None:  # missing, unreadable, nan or inf: counted and reported, never a crash
                self.skipped += 1
                self.malformed += 1
                continue
            key = first_text(record.get(self.by)) or first_text(record.get("host"))
            bucket = int(when // self.period) * self.period
            group = self.groups.setdefault((key, bucket), _Group())
            launch = first_text(record.get("escape_launch_id")) or first_text(record.get("_cd"))
            evidence = _values(record.get("escape_evidence_cd"))
            workload = first_text(record.get("escape_workload"))
            group.launches.setdefault(launch, (workload, evidence[0] if evidence else ""))
            group.hosts[first_text(record.get("host"))] = None
            incident = first_text(record.get("escape_incident"))
            if incident and len(group.incidents) < MAX_LISTED:
                group.incidents[incident] = None

    def results(self) -> Iterator[Row]:
        for (key, bucket), group in sorted(self.groups.items(), key=lambda item: (-item[0][1], item[0][0])):
            count = len(group.launches)
            if count <= self.threshold:
                continue
            workloads = sorted({w for w, _ in group.launches.values() if w})
            evidence = [cd for _, cd in group.launches.values() if cd]
            row: Row = {
                "_time": str(bucket),
                "host": next(iter(group.hosts)) if len(group.hosts) == 1 else key,
                "escape_cluster": key,
                "escape_finding": "privileged_launch_threshold",
                "escape_severity": "high",
                "escape_count": str(count),
                "escape_threshold": str(self.threshold),
                "escape_period": str(self.period),
                "escape_workload": workloads[:MAX_LISTED],
                "escape_summary": "{} on {} within {} s (threshold {}): {}{}.".format(
                    plural(count, "privileged container launch", "privileged container launches"), key or "(no cluster)", self.period, self.threshold, ", ".join(workloads[:10]),
                    " and {} more".format(len(workloads) - 10) if len(workloads) > 10 else ""),
            }
            if group.incidents:     # each launch's incident: this alert belongs to every one of them
                row["escape_incident"] = sorted(group.incidents)
            if evidence:
                row["escape_evidence_cd"] = evidence[:MAX_LISTED]
            yield row


def run(records: Iterable[Record], *, threshold: int, period: int, by: str = "host") -> Iterator[Row]:
    """Count one complete stream of records and yield the groups above the threshold."""
    counter = ThresholdCounter(threshold=threshold, period=period, by=by)
    counter.feed(records)
    yield from counter.results()
