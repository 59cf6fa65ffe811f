"""The spool line: escapecorrelate's compact, tab-separated form of one event record, and its way back.

A line holds host, time key, serial, stamp, arrival, _cd, source, sourcetype, record type and payload, in that order
(the _cd field and a compact row's list hold escape_engine.evidence references: index, splunk_server and _cd).
Text fields are escaped (backslash, tab, CR, LF) so that a line is one line and its fields split on tabs. The first
five fields are encoded so that plain string order of whole lines is the replay order: per host, oldest first, then
serial, stamp and arrival. Sysmon events carry SYSMON_SERIAL and their kept fields as compact JSON; an audit record
carries its type and body, or neither when it is kept for its _cd only (evidence).

`escape_engine.intake` decides which records become lines; `escape_spool` (in package/bin) stores them to files and
merges them back in string order; `events` turns the merged lines back into events for the correlation.
"""
import bisect
import json
import re
import struct
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from . import auditd
from .auditfacts import AuditFacts, from_texts, merge

SEPARATOR = "\t"
FACTS = "facts"            # the record type of a compact row's line (escapecorrelate input=reduced)
SYSMON_SERIAL = "-"        # sorts before every audit serial ("%02d" length, then digits)
MAX_SERIAL_DIGITS = 99     # what "%02d" holds; audit serials are 32 or 64-bit counters (20 digits at most)
FIELDS = 10
_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\r": "\\r", "\n": "\\n"}
_UNESCAPES = {value[1]: key for key, value in _ESCAPES.items()}
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


def escape(text: str) -> str:
    """`text` with no tab, CR or LF left in it; `unescape` gives it back whole."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return "".join(_ESCAPES.get(c, c) for c in text)
    return text


def unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPED.sub(lambda m: _UNESCAPES.get(m.group(1), m.group(1)), text)


def time_key(when: float) -> str:
    """16 hex digits whose string order is the numeric order of the double `when` (-0.0 folded into 0.0)."""
    bits: int = struct.unpack(">Q", struct.pack(">d", when + 0.0))[0]
    return "%016x" % (bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | 0x8000000000000000)


def time_value(key: str) -> float:
    """The time a `time_key` encodes, exactly."""
    bits = int(key, 16)
    value: float = struct.unpack(">d", struct.pack(">Q", bits & 0x7FFFFFFFFFFFFFFF if bits >> 63
                                                    else bits ^ 0xFFFFFFFFFFFFFFFF))[0]
    return value


# ---- encode ------------------------------------------------------------------------------------------------------
# The encoder works in parts so that a caller can reuse the labels and the audit prefix across the records of one
# event (a busy host sends tens of thousands of them per chunk).
def labels(source: str, sourcetype: str) -> str:
    """The source and sourcetype fields of a line."""
    return escape(source) + SEPARATOR + escape(sourcetype)


def audit_prefix(host: str, when: float, serial: str, stamp: str) -> str:
    """The host, time, serial and stamp fields of an audit record's line, with the separator that follows them."""
    digits = serial.lstrip("0") or "0"
    return "%s\t%s\t%02d%s\t%s\t" % (escape(host), time_key(when), len(digits), digits, escape(stamp))


def audit_line(prefix: str, arrival: int, cd: str, labels_text: str, rtype: str = "", body: str = "") -> str:
    """An audit record's line; without `rtype` it keeps the record for its _cd only."""
    if rtype:
        return "%s%012x\t%s\t%s\t%s\t%s" % (prefix, arrival, escape(cd), labels_text, escape(rtype), escape(body))
    return "%s%012x\t%s\t%s\t\t" % (prefix, arrival, escape(cd), labels_text)


def facts_line(prefix: str, arrival: int, cds: List[str], labels_text: str, texts: List[str]) -> str:
    """A compact row's line: the _cd of every record of its event and the texts of its fact fields
    (auditfacts.fact_texts), as one JSON array (ASCII: no tab, CR or LF, so nothing to escape), read into facts only
    when the event is replayed."""
    return "%s%012x\t\t%s\t%s\t%s" % (prefix, arrival, labels_text, FACTS, _JSON.encode((cds, texts)))


def _facts(payload: str) -> Tuple[List[str], AuditFacts]:
    (cds, texts), _ = _JSON_DECODE(payload)  # facts_line's own JSON: no whitespace around it
    return cds, from_texts(texts)


_JSON = json.JSONEncoder(separators=(",", ":"))  # made once: json.dumps with arguments builds one per call
_JSON_DECODE = json.JSONDecoder().raw_decode


def sysmon_line(host: str, when: float, arrival: int, cd: str, labels_text: str, fields: Dict[str, str]) -> str:
    """A Sysmon event's line: its kept fields as compact JSON."""
    return "\t".join((escape(host), time_key(when), SYSMON_SERIAL, "", "%012x" % arrival, escape(cd), labels_text,
                      "sysmon", json.dumps(fields, separators=(",", ":"))))


# ---- decode ------------------------------------------------------------------------------------------------------
class SpoolLine(NamedTuple):
    """One line's fields, unescaped. `group` holds the escaped host, serial and stamp that join an audit event."""
    host: str
    time: float
    serial: str        # "" for a Sysmon event, else the audit serial's digits
    stamp: str
    cd: str
    source: str
    sourcetype: str
    rtype: str         # "sysmon", an audit record type, or "" (kept for the _cd only)
    payload: str
    group: Tuple[str, str, str]


def decode(line: str) -> SpoolLine:
    host, key, serial, stamp, _arrival, cd, source, sourcetype, rtype, payload = line.split(SEPARATOR, FIELDS - 1)
    sysmon = serial == SYSMON_SERIAL
    return SpoolLine(unescape(host), time_value(key), "" if sysmon else serial[2:], unescape(stamp), unescape(cd),
                     unescape(source), unescape(sourcetype), unescape(rtype),
                     payload if sysmon else unescape(payload), (host, serial, stamp))


def hosts(lines: Sequence[str]) -> List[str]:
    """The hosts of lines sorted in string order, each once: a bisection per host, not a look at every line (a
    host's lines are adjacent, and "\n" sorts right after the separator and is escaped in every field)."""
    found: List[str] = []
    position = 0
    while position < len(lines):
        host = lines[position].partition(SEPARATOR)[0]
        found.append(unescape(host))
        position = bisect.bisect_left(lines, host + "\n", position + 1)
    return found


class Event:
    """The records of one audit event (joined on host, serial and stamp), or one Sysmon event."""

    __slots__ = ("cds", "facts", "host", "records", "serial", "source", "sourcetype", "sysmon", "time")

    def __init__(self, host: str, time: float, serial: int) -> None:
        self.host = host
        self.time = time
        self.serial = serial
        self.records: List[auditd.AuditRecord] = []
        self.cds: List[str] = []
        self.sysmon: Optional[Dict[str, str]] = None
        self.facts: Optional[AuditFacts] = None  # a compact row's, read instead of the records
        self.source = ""
        self.sourcetype = ""


def events(lines: Iterable[str]) -> Iterator[Event]:
    """The events of lines in string order, one at a time (the records of an audit event are adjacent). Like `decode`,
    but a field shared by an event's records is unescaped once per event."""
    event: Optional[Event] = None
    group: Optional[Tuple[str, str, str]] = None
    for line in lines:
        host, key, serial, stamp, _arrival, cd, source, sourcetype, rtype, payload = line.split(SEPARATOR, FIELDS - 1)
        if serial == SYSMON_SERIAL:
            if event is not None:
                yield event
            event, group = None, None
            sysmon = Event(unescape(host), time_value(key), -1)
            sysmon.sysmon = {str(k): str(v) for k, v in dict(json.loads(payload)).items()}
            cd = unescape(cd)
            sysmon.cds = [cd] if cd else []
            sysmon.source, sysmon.sourcetype = unescape(source), unescape(sourcetype)
            yield sysmon
            continue
        if event is None or group != (host, serial, stamp):
            if event is not None:
                yield event
            event = Event(unescape(host), time_value(key), int(serial[2:]))
            event.source, event.sourcetype = unescape(source), unescape(sourcetype)
            group = (host, serial, stamp)
        if rtype == FACTS:
            cds, facts = _facts(payload)
            event.facts = facts if event.facts is None else merge(event.facts, facts)
            if event.cds:
                event.cds.extend(c for c in cds if c not in event.cds)
            else:
                event.cds = list(dict.fromkeys(cds))
            continue
        if rtype:
            raw, _, tail = unescape(payload).partition(auditd.GS)
            event.records.append(auditd.AuditRecord(unescape(rtype), unescape(stamp), serial[2:], "", raw, tail))
        if cd:
            cd = unescape(cd)
            if cd not in event.cds:
                event.cds.append(cd)
    if event is not None:
        yield event
