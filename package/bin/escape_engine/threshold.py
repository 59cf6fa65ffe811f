"""Privileged-launch threshold (AN0612 PrivilegedContainerThreshold).

Counts distinct privileged launches (rows of `escapeinspect` with escape_launch=1) per cluster or docker host and per
fixed period (periods aligned to multiples of `period` seconds since the epoch, so consecutive scheduled runs with
a window of one period count the same way). A group with more launches than `threshold` gives one row with the
count and the workloads. State is explicit: `feed()` once per chunk, `results()` after the last.

A launch is counted once by its identity, escape_launch_id (escapeinspect: the Kubernetes audit ID, the docker
container ID, else the event's index, splunk_server and _cd); a row without one counts by its event's index,
splunk_server and _cd, never by a name or a bare _cd (unique only within one index on one indexer).
"""
from typing import Dict, Iterable, Iterator, List, Tuple

from .evidence import ADDRESS_FIELD, CD_FIELD, address, addresses, reference
from .ground import Record, Row
from .incident import plural
from .scalars import finite_float, first_text

MAX_LISTED = 100        # workloads and evidence references listed per alert row


def _values(value: object) -> List[str]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return [value] if isinstance(value, str) and value else []


def _first_evidence(record: Record) -> Tuple[str, str]:
    """The first evidence _cd of a launch row and its address ("", "" when it has none)."""
    cds, found_at = _values(record.get(CD_FIELD)), addresses(record)
    if not cds:
        return "", ""
    return cds[0], found_at[0] if len(found_at) == len(cds) else address(cds[0])


class _Group:
    def __init__(self) -> None:
        self.launches: Dict[str, Tuple[str, str, str]] = {}  # launch id -> (workload, evidence _cd, its address)
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
            launch = first_text(record.get("escape_launch_id")) or address(reference(record))
            group.launches.setdefault(launch, (first_text(record.get("escape_workload")),) + _first_evidence(record))
            group.hosts[first_text(record.get("host"))] = None
            incident = first_text(record.get("escape_incident"))
            if incident and len(group.incidents) < MAX_LISTED:
                group.incidents[incident] = None

    def results(self) -> Iterator[Row]:
        for (key, bucket), group in sorted(self.groups.items(), key=lambda item: (-item[0][1], item[0][0])):
            count = len(group.launches)
            if count <= self.threshold:
                continue
            workloads = sorted({w for w, _, _ in group.launches.values() if w})
            evidence = [(cd, at) for _, cd, at in group.launches.values() if cd][:MAX_LISTED]
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
                row[CD_FIELD] = [cd for cd, _ in evidence]
                row[ADDRESS_FIELD] = [at for _, at in evidence]
            yield row


def run(records: Iterable[Record], *, threshold: int, period: int, by: str = "host") -> Iterator[Row]:
    """Count one complete stream of records and yield the groups above the threshold."""
    counter = ThresholdCounter(threshold=threshold, period=period, by=by)
    counter.feed(records)
    yield from counter.results()
