"""escapereduce's engine: on each search peer, one compact row per audit or Sysmon event the correlation can act on.

Records arrive newest first. The records of one audit event share host (`node=` or the Splunk host), stamp and serial
and arrive together; they are joined here, and the event is judged by escape_engine.auditfacts (`audit_matters`,
`sysmon_matters`): events that can never matter (USER_*, CRED_*, SERVICE_*, LOGIN and every other record without a
SYSCALL but a crash's ANOM_ABEND, syscalls that `audit_matters` refuses whatever rule logged them, failed execs, the
companion records of those events, Sysmon events other than process creation and trap-file writes) are dropped and
counted.

Nothing is kept across events: an event is handed on when a record at least JOIN_LAG seconds older arrives, when more
than MAX_OPEN events are open, or at the end. So the result does not depend on which peer holds which event (a host's
events spread over several peers). An event whose records arrived apart anyway (out of order, or on two peers) is
handed on in parts when a part holds a record that only accompanies a SYSCALL (auditfacts.COMPANION_TYPES); the search
head joins the parts (escape_engine.spoolline.events). The records of one row are in one index on one peer (the row's
`index` and `splunk_server`), so its escape_evidence_cd needs nothing more to find each of them again.
"""
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Tuple

from . import auditd, auditfacts, sysmon_linux
from .ground import Record, Row, Value
from .intake import SYSMON_REQUIRED, SYSMON_SOURCETYPES, sysmon_fields_kept
from .scalars import finite_float, first_text

JOIN_LAG = 1.0      # seconds: the records of one event share their time; Splunk hands them over together
MAX_OPEN = 4096     # events held open at once, at most (a peer's stream out of time order cannot grow it)
PASSED_ON = ("_time", "host", "source", "sourcetype", "index", "splunk_server")  # Splunk's fields, as they came


class _Open:
    """The records of one audit event seen so far."""
    __slots__ = ("cds", "first", "host", "records", "serial", "stamp", "syscall_cd", "time")

    def __init__(self, first: Record, host: str, stamp: str, serial: str, when: float) -> None:
        self.first = first
        self.host = host
        self.stamp = stamp
        self.serial = serial
        self.time = when
        self.records: List[auditd.AuditRecord] = []
        self.cds: List[str] = []
        self.syscall_cd = ""


def _splunk(record: Record) -> Row:
    """A new row: Splunk's fields as they came, then every compact field. splunklib writes a chunk's rows with the
    fields of its first row, so every row carries every field (empty when it has no value)."""
    row: Row = {name: record.get(name, "") for name in PASSED_ON}
    row["_cd"] = ""
    row.update(dict.fromkeys(auditfacts.ROW_FIELDS, ""))
    return row


class Reducer:
    """Stateless across events; see the module docstring. `feed` returns the rows of the events it could close."""

    def __init__(self) -> None:
        self.summary: Dict[str, int] = {"records": 0, "malformed": 0, "events": 0, "kept": 0, "rows": 0,
                                        "dropped_no_syscall": 0, "dropped_syscall": 0, "dropped_sysmon": 0}
        self._open: OrderedDict[Tuple[str, str, str, str, str], _Open] = OrderedDict()

    def feed(self, records: Iterable[Record]) -> List[Row]:
        out: List[Row] = []
        summary = self.summary
        for record in records:
            summary["records"] += 1
            raw = first_text(record.get("_raw"))
            if first_text(record.get("sourcetype")) in SYSMON_SOURCETYPES:
                row = self._sysmon(record, raw)
                if row is not None:
                    out.append(row)
                continue
            if not raw.strip():
                summary["malformed"] += 1
                continue
            splunk_time: Optional[float] = None
            host = first_text(record.get("host"))
            cd = first_text(record.get("_cd"))
            # index and peer are part of the key: a row's _cds are all in the index and on the peer it names
            index, server = first_text(record.get("index")), first_text(record.get("splunk_server"))
            for text in raw.split("\n"):
                parsed = auditd.parse_line(text)
                if parsed is None:
                    if text.strip():
                        summary["malformed"] += 1  # as escapecorrelate counts a line that is no audit record
                    continue
                when = parsed.epoch
                if when is None:  # ausearch -i stamps are local time text: Splunk's _time stands in
                    if splunk_time is None:
                        splunk_time = finite_float(first_text(record.get("_time")))
                    when = splunk_time if splunk_time is not None else float("nan")
                key = (parsed.node or host, parsed.stamp, parsed.serial, index, server)
                group = self._open.get(key)
                if group is None:
                    self._close_older(when, out)
                    group = self._open[key] = _Open(record, key[0], parsed.stamp, parsed.serial, when)
                group.records.append(parsed)
                if cd and cd not in group.cds:
                    group.cds.append(cd)
                if parsed.rtype == "SYSCALL" and not group.syscall_cd:
                    group.syscall_cd = cd
        return out

    def finish(self) -> List[Row]:
        out: List[Row] = []
        while self._open:
            self._emit(self._open.popitem(last=False)[1], out)
        return out

    def messages(self) -> List[Tuple[str, str]]:
        counts = self.summary
        out = [("INFO", "escapereduce: " + ", ".join("%s=%d" % pair for pair in sorted(counts.items())))]
        if counts["malformed"]:
            out.append(("WARN", "escapereduce: %d records were malformed (no audit record or Sysmon event, or a Sysmon "
                                "event without its process or file) and were skipped" % counts["malformed"]))
        return out

    # ---- internals ----------------------------------------------------------------------------------------------
    def _close_older(self, when: float, out: List[Row]) -> None:
        """Hand on the open events at least JOIN_LAG newer than `when` (no record of theirs can follow), and the
        first-opened ones beyond MAX_OPEN."""
        opened = self._open
        while opened:
            group = next(iter(opened.values()))
            if not (group.time - when >= JOIN_LAG or len(opened) >= MAX_OPEN):
                break
            self._emit(opened.popitem(last=False)[1], out)

    def _emit(self, group: _Open, out: List[Row]) -> None:
        summary = self.summary
        summary["events"] += 1
        facts = auditfacts.facts_of(group.records)
        if not facts.syscall and not facts.abend:
            if not any(r.rtype in auditfacts.COMPANION_TYPES for r in group.records):
                summary["dropped_no_syscall"] += 1
                return
        elif not auditfacts.audit_matters(facts):
            summary["dropped_syscall"] += 1
            return
        summary["kept"] += 1
        row = _splunk(group.first)
        row["_cd"] = group.syscall_cd or (group.cds[0] if group.cds else "")
        row.update(auditfacts.to_fields(facts))
        row.update({auditfacts.KIND_FIELD: auditfacts.KIND_AUDIT, auditfacts.HOST_FIELD: group.host,
                    auditfacts.STAMP_FIELD: group.stamp, auditfacts.SERIAL_FIELD: group.serial,
                    auditfacts.EVIDENCE_FIELD: _value(group.cds)})
        summary["rows"] += 1
        out.append(row)

    def _sysmon(self, record: Record, raw: str) -> Optional[Row]:
        summary = self.summary
        summary["events"] += 1
        data = sysmon_linux.parse_event(raw)
        if data is None:
            summary["malformed"] += 1
            return None
        if not auditfacts.sysmon_matters(data):
            summary["dropped_sysmon"] += 1
            return None
        if not all(data.get(name) for name in SYSMON_REQUIRED[data["EventID"]]):
            summary["malformed"] += 1  # a process start without its process, a file create without its file
            return None
        summary["kept"] += 1
        summary["rows"] += 1
        row = _splunk(record)
        cd = first_text(record.get("_cd"))
        row["_cd"] = cd
        row.update(auditfacts.sysmon_fields(sysmon_fields_kept(data)))
        row.update({auditfacts.HOST_FIELD: data.get("Computer") or first_text(record.get("host")),
                    auditfacts.EVIDENCE_FIELD: cd})
        return row


def _value(values: List[str]) -> Value:
    return values[0] if len(values) == 1 else list(values)
