"""escapecorrelate's input side: which records of a chunk become spool lines (escape_engine.spoolline), and what is
counted on the way (records, malformed records, events out of the search's time range, events that arrived out of the
tolerated order).

The parser is chosen by the record's sourcetype, never by its content: `sysmon:linux` events are Sysmon for Linux XML,
everything else is read as audit record lines (the kernel logs `<` and `>` in paths as they are, so an audit record
may well spell `<Event` and `<EventID>`).
"""
from typing import Dict, Iterable, List, Optional, Tuple

from . import auditd, auditfacts, spoolline, sysmon_linux
from .evidence import reference, reference_of
from .ground import Record
from .scalars import finite_float, first_text, is_ascii_digits

# Event times outside 1970-2100 are malformed: a far-future stamp would age the host's whole persisted lineage out
# (the TTL counts back from the newest time seen).
EPOCH_RANGE = (0.0, 4102444800.0)
# Sysmon for Linux fields the correlation reads (EventID 1 and 11).
SYSMON_FIELDS = frozenset(("EventID", "Computer", "UtcTime", "Image", "CommandLine", "ParentImage", "ParentProcessId",
                           "ProcessId", "User", "CurrentDirectory", "TargetFilename"))
# Sysmon events the correlation reads, and the fields without which one is malformed.
SYSMON_REQUIRED = {"1": ("ProcessId", "Image"), "11": ("TargetFilename",)}
# Record types the correlation reads; the others (BPRM_FCAPS, SOCKADDR, USER, ...) keep only their _cd as evidence.
READ_TYPES = frozenset(("SYSCALL", "EXECVE", "PATH", "PROCTITLE", "CWD", "CONTAINER_ID", "OBJ_PID", "ANOM_ABEND"))
# The sourcetypes whose events are Sysmon for Linux XML (the escape_sysmon_linux macro).
SYSMON_SOURCETYPES = frozenset(("sysmon:linux",))
# How far an event's own time may lie outside the search's time range: Sysmon's UtcTime against the syslog stamp
# Splunk indexed it by, forwarder clocks. Later or earlier events are skipped and counted (out_of_range): a forged or
# broken time cannot move a host's newest time, from which the lineage's TTL counts back.
RANGE_SKEW = 3600.0


def time_bounds(earliest: Optional[float], latest: Optional[float]) -> Tuple[float, float]:
    """The times an event may carry in a search over [earliest, latest) (None or 0: unbounded on that side)."""
    low = max(EPOCH_RANGE[0], earliest - RANGE_SKEW) if earliest else EPOCH_RANGE[0]
    high = min(EPOCH_RANGE[1], latest + RANGE_SKEW) if latest else EPOCH_RANGE[1]
    return low, high


def sysmon_fields_kept(data: Dict[str, str]) -> Dict[str, str]:
    return {k: v for k, v in data.items() if k in SYSMON_FIELDS}


def _splunk_time(record: Record) -> float:
    when = finite_float(first_text(record.get("_time")))
    return float("nan") if when is None else when


class Intake:
    """Turns the records of each chunk into spool lines; counts into the correlator's `summary`."""

    def __init__(self, summary: Dict[str, int], skew: float, bounds: Tuple[float, float] = EPOCH_RANGE) -> None:
        self.summary = summary
        self.skew = skew
        self.bounds = bounds
        self._seq = 0
        self._last_key: Optional[Tuple[str, str, str]] = None
        self._oldest: Optional[float] = None

    def encode(self, records: Iterable[Record]) -> List[str]:
        """One spool line per kept record of one chunk; counts records, malformed and out-of-order events."""
        out: List[str] = []
        summary = self.summary
        prefix = ""
        prefix_key: Optional[Tuple[str, float, str, str]] = None
        labels = ""
        labels_key: Optional[Tuple[str, str]] = None
        for record in records:
            summary["records"] += 1
            raw = first_text(record.get("_raw"))
            if not raw.strip():
                summary["malformed"] += 1
                continue
            host = first_text(record.get("host"))
            cd = reference(record)  # the spool's _cd field holds where the event is (escape_engine.evidence)
            source, sourcetype = first_text(record.get("source")), first_text(record.get("sourcetype"))
            if labels_key != (source, sourcetype):
                labels_key = (source, sourcetype)
                labels = spoolline.labels(source, sourcetype)
            splunk_time: Optional[float] = None
            if sourcetype in SYSMON_SOURCETYPES:
                line = self._sysmon(record, raw, host, cd, labels)
                if line:
                    out.append(line)
                continue
            for text in raw.split("\n"):
                parsed = auditd.parse_line(text)
                if parsed is None:
                    if text.strip():
                        summary["malformed"] += 1
                    continue
                epoch = parsed.epoch
                if epoch is not None:
                    when = epoch
                else:  # ausearch -i stamps are local time text: Splunk's _time stands in
                    if splunk_time is None:
                        splunk_time = _splunk_time(record)
                    when = splunk_time
                if not self._usable(when, parsed.serial):
                    continue
                event_host = parsed.node or host
                key = (event_host, parsed.stamp, parsed.serial)
                if key != self._last_key:
                    self._arrival(when)
                    self._last_key = key
                if prefix_key != (event_host, when, parsed.serial, parsed.stamp):
                    prefix_key = (event_host, when, parsed.serial, parsed.stamp)
                    prefix = spoolline.audit_prefix(event_host, when, parsed.serial, parsed.stamp)
                self._seq += 1
                if parsed.rtype in READ_TYPES:
                    out.append(spoolline.audit_line(prefix, self._seq, cd, labels, parsed.rtype, parsed.body))
                else:  # kept for its _cd only (evidence)
                    out.append(spoolline.audit_line(prefix, self._seq, cd, labels))
        return out

    def encode_reduced(self, rows: Iterable[Record]) -> List[str]:
        """encode for escapereduce's compact rows: one line per row, the facts read from its fields, never from
        raw text (a row not written by escapereduce is counted malformed)."""
        out: List[str] = []
        summary = self.summary
        labels = ""
        labels_key: Optional[Tuple[str, str]] = None
        for row in rows:
            summary["records"] += 1
            source, sourcetype = first_text(row.get("source")), first_text(row.get("sourcetype"))
            if labels_key != (source, sourcetype):
                labels_key = (source, sourcetype)
                labels = spoolline.labels(source, sourcetype)
            kind = first_text(row.get(auditfacts.KIND_FIELD))
            evidence = row.get(auditfacts.EVIDENCE_FIELD) or []
            index, server = first_text(row.get("index")), first_text(row.get("splunk_server"))
            cds = [reference_of(index, server, c) for c in ([evidence] if isinstance(evidence, str) else evidence)
                   if isinstance(c, str) and c]
            if kind == auditfacts.KIND_SYSMON:
                data = auditfacts.sysmon_data(row)
                line = self._sysmon_data(row, data, first_text(row.get("host")), cds[0] if cds else "", labels)
                if line:
                    out.append(line)
                continue
            stamp, serial = first_text(row.get(auditfacts.STAMP_FIELD)), first_text(row.get(auditfacts.SERIAL_FIELD))
            host = first_text(row.get(auditfacts.HOST_FIELD))
            if kind != auditfacts.KIND_AUDIT or not stamp or not is_ascii_digits(serial):
                summary["malformed"] += 1
                continue
            epoch = auditd.stamp_epoch(stamp)
            when = epoch if epoch is not None else _splunk_time(row)
            if not self._usable(when, serial):
                continue
            key = (host, stamp, serial)
            if key != self._last_key:
                self._arrival(when)
                self._last_key = key
            self._seq += 1
            out.append(spoolline.facts_line(spoolline.audit_prefix(host, when, serial, stamp), self._seq, cds, labels,
                                            auditfacts.fact_texts(row)))
        return out

    def _usable(self, when: float, serial: str) -> bool:
        """An audit event's time and serial are usable (else counted malformed or out of range)."""
        if not EPOCH_RANGE[0] <= when < EPOCH_RANGE[1] or len(serial) > spoolline.MAX_SERIAL_DIGITS:
            self.summary["malformed"] += 1
            return False
        if not self.bounds[0] <= when <= self.bounds[1]:
            self.summary["out_of_range"] += 1
            return False
        return True

    def _sysmon(self, record: Record, raw: str, host: str, cd: str, labels: str) -> str:
        """The line of a Sysmon event the correlation reads, else "" (malformed ones counted)."""
        return self._sysmon_data(record, sysmon_linux.parse_event(raw), host, cd, labels)

    def _sysmon_data(self, record: Record, data: Optional[Dict[str, str]], host: str, cd: str, labels: str) -> str:
        summary = self.summary
        if data is None or data["EventID"] not in SYSMON_REQUIRED:
            if data is None:
                summary["malformed"] += 1
            return ""
        if not all(data.get(name) for name in SYSMON_REQUIRED[data["EventID"]]):
            summary["malformed"] += 1  # a process start without its process, a file create without its file
            return ""
        when = sysmon_linux.utc_epoch(data.get("UtcTime", "")) or _splunk_time(record)
        if not EPOCH_RANGE[0] <= when < EPOCH_RANGE[1]:  # also NaN: no time from the event or from Splunk
            summary["malformed"] += 1
            return ""
        if not self.bounds[0] <= when <= self.bounds[1]:
            summary["out_of_range"] += 1
            return ""
        self._arrival(when)
        self._last_key = None
        self._seq += 1
        return spoolline.sysmon_line(data.get("Computer") or host, when, self._seq, cd, labels,
                                     sysmon_fields_kept(data))

    def _arrival(self, when: float) -> None:
        if self._oldest is not None and when > self._oldest + self.skew:
            self.summary["out_of_order"] += 1
        if self._oldest is None or when < self._oldest:
            self._oldest = when
