"""The replay's inputs (docs/replay.md, docs/development.md §3): `--input SOURCETYPE[,source=S][,host=H][,index=I]=PATH`,
event breaking and timestamps. Owned sourcetypes go through the built app's props.conf (tools/indextime.py), the
others through the documented record format of their source (READERS below). Every event gets `_cd = 0:<n>`, its
input's `index` (default main) and `splunk_server = peer0`.
"""
import gzip
import json
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from escape_engine.ground import Row
from tools import conffile, indextime, peers

OWNED = ("docker:daemon", "docker:events", "docker:inspect", "podman:events")
DEFAULT_HOST = "replay"


class ReplayError(Exception):
    """A problem the user must fix (bad input, unknown macro, refused search): message to stderr, exit 2."""


def warn(message: str) -> None:
    print("replay: " + message, file=sys.stderr)


# ---------------------------------------------------------------- inputs
@dataclass
class InputSpec:
    sourcetype: str
    path: Path
    source: Optional[str] = None
    host: Optional[str] = None
    index: Optional[str] = None


DEFAULT_INDEX = "main"  # Splunk's default index: where an input without index= goes
_INPUT = re.compile(r"(?P<st>[^,=]+)(?P<opts>(?:,(?:source|host|index)=[^,=]*)*)=(?P<path>.+)")


def parse_input(text: str) -> InputSpec:
    match = _INPUT.fullmatch(text)
    if not match:
        raise ReplayError("--input {!r} is not SOURCETYPE[,source=SOURCE][,host=HOST][,index=INDEX]=PATH".format(text))
    spec = InputSpec(match.group("st").strip(), Path(match.group("path")))
    for option in filter(None, match.group("opts").split(",")):
        key, value = option.split("=", 1)
        setattr(spec, key, value)
    return spec


def read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        data = gzip.decompress(data) if path.suffix == ".gz" else data
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise ReplayError("cannot read {}: {}".format(path, err)) from None
    check_text(data, path)
    return data


# Bytes a log file holds besides printable text: tab, line ends, form feed, ESC (colour codes) and 0x1D (the group
# separator of ENRICHED audit records).
_TEXT_CONTROLS = frozenset("\t\n\r\x0c\x1b\x1d")
BINARY_SHARE = 0.05  # more than this share of the first 64 KiB that is no text (or any NUL byte): refused


def check_text(data: bytes, path: Path) -> None:
    """Refuse binary input (a NUL byte, or many bytes that are neither UTF-8 text nor a log file's controls)."""
    head = data[:65536]
    if b"\x00" in head:
        raise ReplayError("{} is binary (it holds NUL bytes), not a log file; UTF-16 exports must be converted to "
                          "UTF-8 first".format(path))
    text = head.decode("utf-8", errors="replace")
    if len(head) == 65536:
        text = text[:-4]  # a multi-byte character cut at the end of the window is no fault
    odd = sum(1 for c in text if c == "\ufffd" or (c < " " and c not in _TEXT_CONTROLS) or c == "\x7f")
    if text and odd > BINARY_SHARE * len(text):
        raise ReplayError("{} is binary or corrupt ({} of its first {} characters are no UTF-8 text), not a log "
                          "file".format(path, odd, len(text)))


def _epoch_iso(text: str) -> Optional[float]:
    """ISO 8601 with Z or an offset (no offset: UTC)."""
    match = re.match(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?", text)
    if not match:
        return None
    stamp = datetime.strptime(match.group(1) + "T" + match.group(2), "%Y-%m-%dT%H:%M:%S")
    zone = match.group(4) or "Z"
    offset = 0 if zone == "Z" else (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[-2:]) * 60)
    return stamp.replace(tzinfo=timezone.utc).timestamp() - offset + float("0" + (match.group(3) or ""))


# Each reader: bytes -> [(raw, time or None, {default fields from the record})]. Documented formats only.
Record = Tuple[str, Optional[float], Dict[str, str]]


def _lines(data: bytes) -> List[str]:
    # Audit records may hold 0x1D (ENRICHED): split on b"\n" only, never str.splitlines().
    return [line.rstrip(b"\r").decode("utf-8", errors="replace") for line in data.split(b"\n") if line.strip()]


_AUDIT_EPOCH = re.compile(r"msg=audit\((\d+(?:\.\d+)?):\d+\)")
# ausearch -i prints the date in the C locale's %x form (11/29/26); other locales give a four-digit year.
_AUDIT_LOCAL = re.compile(r"msg=audit\((\d{2})/(\d{2})/(\d{4}|\d{2}) (\d{2}:\d{2}:\d{2})(\.\d+)?:\d+\)")


def _audit_time(raw: str) -> Optional[float]:
    match = _AUDIT_EPOCH.search(raw)
    if match:
        return float(match.group(1))
    match = _AUDIT_LOCAL.search(raw)  # ausearch -i prints local time; the replay reads it as UTC
    if match:
        year = match.group(3) if len(match.group(3)) == 4 else "20" + match.group(3)
        return _epoch_iso("{}-{}-{}T{}{}".format(year, match.group(1), match.group(2), match.group(4),
                                                  match.group(5) or ""))
    return None


_AUDIT_NODE = re.compile(r"^node=(\S+) ", re.MULTILINE)


def _audit_host(raw: str) -> Dict[str, str]:
    """auditd's `node=` (name_format in auditd.conf) names the host that wrote the record, as the host field would."""
    match = _AUDIT_NODE.search(raw)
    return {"host": match.group(1)} if match else {}


def read_linux_audit(data: bytes) -> List[Record]:
    return [(line, _audit_time(line), _audit_host(line)) for line in _lines(data)]


def read_auditd(data: bytes) -> List[Record]:
    """ausearch -i output: events separated by '----' lines; without separators, one record per line."""
    lines = [line.rstrip(b"\r") for line in data.split(b"\n")]
    if not any(line.strip() == b"----" for line in lines):
        return read_linux_audit(data)
    records: List[Record] = []
    current: List[bytes] = []
    for line in lines + [b"----"]:
        if line.strip() == b"----":
            if any(part.strip() for part in current):
                raw = b"\n".join(part for part in current if part.strip()).decode("utf-8", errors="replace")
                records.append((raw, _audit_time(raw), _audit_host(raw)))
            current = []
        else:
            current.append(line)
    return records


_KUBE_TIME_KEYS = ("requestReceivedTimestamp", "stageTimestamp", "timestamp")


def _kube_time(event: object) -> Optional[float]:
    if isinstance(event, dict):
        for key in _KUBE_TIME_KEYS:
            if isinstance(event.get(key), str):
                return _epoch_iso(event[key])
    return None


def read_kube_audit(data: bytes) -> List[Record]:
    """One audit.k8s.io Event per line; a file holding one pretty-printed JSON object is one event."""
    text = data.decode("utf-8", errors="replace")
    lines = [line for line in text.split("\n") if line.strip()]
    try:
        parsed = [json.loads(line) for line in lines]
        return [(line.strip(), _kube_time(obj), {}) for line, obj in zip(lines, parsed)]
    except ValueError:
        pass
    try:
        whole = json.loads(text)
        if isinstance(whole, dict):
            return [(text.strip(), _kube_time(whole), {})]
    except ValueError:
        pass
    records: List[Record] = []
    for line in lines:  # keep every line; the malformed ones are counted by the caller (no time)
        try:
            records.append((line.strip(), _kube_time(json.loads(line)), {}))
        except ValueError:
            records.append((line.strip(), None, {}))
    return records


def _xml_fields(raw: str, prefix: str) -> Dict[str, str]:
    fields = {}
    computer = re.search(r"<Computer>([^<]+)</Computer>", raw)
    if computer:
        fields["host"] = computer.group(1)
    channel = re.search(r"<Channel>([^<]+)</Channel>", raw)
    if channel and prefix:
        fields["source"] = prefix + channel.group(1)
    return fields


def _xml_time(raw: str) -> Optional[float]:
    match = re.search(r"<TimeCreated SystemTime=['\"]([^'\"]+)['\"]", raw)
    return _epoch_iso(match.group(1)) if match else None


def read_xml_wineventlog(data: bytes) -> List[Record]:
    text = data.decode("utf-8", errors="replace")
    events = re.findall(r"<Event[\s>].*?</Event>", text, re.DOTALL)
    return [(raw, _xml_time(raw), _xml_fields(raw, "XmlWinEventLog:")) for raw in events]


_WIN_DATE = re.compile(r"(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([AP]M)$")


def read_wineventlog(data: bytes) -> List[Record]:
    """Classic multi-line WinEventLog: a new event starts at a line holding only its date (MM/DD/YYYY hh:mm:ss AM)."""
    records: List[Record] = []
    current: List[str] = []
    lines = data.decode("utf-8", errors="replace").replace("\r\n", "\n").split("\n")

    def flush() -> None:
        raw = "\n".join(current).strip()
        if raw:
            first = _WIN_DATE.match(current[0].strip())
            stamp = None
            if first:
                month, day, year, hour, minute, second, half = first.groups()
                stamp = _epoch_iso("{}-{}-{}T{:02d}:{}:{}".format(
                    year, month, day, int(hour) % 12 + (12 if half == "PM" else 0), minute, second))
            fields = {}
            computer = re.search(r"^ComputerName=(.+)$", raw, re.MULTILINE)
            if computer:
                fields["host"] = computer.group(1).strip()
            log = re.search(r"^LogName=(.+)$", raw, re.MULTILINE)
            if log:
                fields["source"] = "WinEventLog:" + log.group(1).strip()
            records.append((raw, stamp, fields))

    for line in lines:
        if _WIN_DATE.match(line.strip()) and current:
            flush()
            current = []
        current.append(line)
    flush()
    return records


def read_sysmon_linux(data: bytes) -> List[Record]:
    return [(line, _xml_time(line), _xml_fields(line, "")) for line in _lines(data)]


# The host of a syslog header, as a syslog input sets the host field: `<PRI>`, an optional RFC 5424 version, the time
# (ISO 8601 or RFC 3164's `Mmm dd hh:mm:ss`), then the host, then the program (`vmkernel:`, `Hostd[2099454]:`,
# `dockerd[811]:`), possibly after an ESXi level (`In(166)`, `info`). Lines that ESXi writes to its local files
# (`2026-11-21T07:00:00Z cpu6:2106001)...`, `... In(14) shell[2101234]: ...`) have no host there.
_SYSLOG_HOST = re.compile(
    r"(?:<\d{1,3}>(?:1 )?)?"
    r"(?:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\S*|[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2})\s+"
    r"(?!(?:info|verbose|warning|error|debug|notice|crit|alert|emerg)\s)"
    r"(?P<host>[A-Za-z0-9][A-Za-z0-9._-]*)\s+"
    r"(?:(?:In|No|Wa|Er|Db|Al|Cr|Em)\(\d+\)\s+|(?:info|verbose|warning|error|debug)\s+)?"
    r"[A-Za-z][\w./-]*(?:\[\d+\])?:")


def syslog_host(raw: str) -> Dict[str, str]:
    match = _SYSLOG_HOST.match(raw)
    return {"host": match.group("host")} if match else {}


def read_esxi_syslog(data: bytes) -> List[Record]:
    records: List[Record] = []
    for line in _lines(data):
        match = re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", line[:128])
        records.append((line, _epoch_iso(line[match.start():]) if match else None, syslog_host(line)))
    return records


READERS: Dict[str, Callable[[bytes], List[Record]]] = {
    "linux:audit": read_linux_audit,
    "auditd": read_auditd,
    "kube:apiserver-audit": read_kube_audit,
    "XmlWinEventLog": read_xml_wineventlog,
    "WinEventLog": read_wineventlog,
    "sysmon:linux": read_sysmon_linux,
    "vmw-syslog": read_esxi_syslog,
}


def reader_for(sourcetype: str) -> Optional[Callable[[bytes], List[Record]]]:
    if sourcetype.startswith("vmware:esxlog:") and len(sourcetype) > len("vmware:esxlog:"):
        return read_esxi_syslog
    return READERS.get(sourcetype)


def known_sourcetypes() -> List[str]:
    return list(OWNED) + list(READERS) + ["vmware:esxlog:<program>"]


@dataclass
class Span:
    """Where one input's events are in the replayed list: events[start:end]."""
    spec: InputSpec
    start: int
    end: int


def load_events(specs: Sequence[InputSpec], app_dir: Path) -> List[Row]:
    """Break and timestamp every input; events keep file order and get _cd = 0:<n> across all inputs. For the tools
    that read samples (the benchmark): an input without any time is kept at 0, not refused as replay() refuses it."""
    return load_inputs(specs, app_dir, require_time=False)[0]


def _records(spec: InputSpec, data: bytes, app_dir: Path,
             props: Dict[str, Dict[str, str]]) -> Tuple[List[Record], int]:
    """(raw, time or None, per-event default fields) of one input, and how many later events took an earlier time."""
    if spec.sourcetype not in OWNED:
        reader = reader_for(spec.sourcetype)
        assert reader is not None
        return reader(data), 0
    if not props:
        path = app_dir / "default" / "props.conf"
        props.update(conffile.parse(path) if path.is_file() else {})
    if spec.sourcetype not in props:
        raise ReplayError("{} is an owned sourcetype but {} has no [{}] stanza".format(
            spec.sourcetype, app_dir / "default" / "props.conf", spec.sourcetype))
    try:
        settings = indextime.index_time_settings(props[spec.sourcetype], spec.sourcetype)
        broken = indextime.break_events(data, settings, str(spec.path))
    except indextime.IndexTimeError as err:
        raise ReplayError(str(err)) from None
    if broken.truncated:
        warn("{}: {} event(s) cut at TRUNCATE".format(spec.path, broken.truncated))
    # indextime gives an untimed event the previous event's time, 0.0 before the first timed one: those leading
    # events are marked untimed here (None); the later ones keep the previous time and are only counted.
    records: List[Record] = []
    timed = False
    for raw, stamp in broken.events:
        timed = timed or stamp != 0.0
        records.append((raw, stamp if timed else None, syslog_host(raw) if spec.sourcetype == "docker:daemon" else {}))
    leading = sum(1 for r in records if r[1] is None)
    return records, broken.untimed - leading


_AUDIT_SERIAL = re.compile(r"msg=audit\([^)]*:(\d+)\)")


def _audit_serial_hosts(records: Sequence[Record]) -> bool:
    """True when the audit serials jump back and forth by thousands within a minute: several hosts' records in one
    time order (each host numbers its own events; one host's serial only grows, a reboot restarts it once)."""
    jumps, previous = 0, None
    for raw, stamp, _ in records:
        match = _AUDIT_SERIAL.search(raw)
        if not match or stamp is None:
            continue
        serial = int(match.group(1))
        if previous is not None and abs(serial - previous[1]) > 5000 and abs(stamp - previous[0]) < 60:
            jumps += 1
        previous = (stamp, serial)
    return jumps >= 3


def load_inputs(specs: Sequence[InputSpec], app_dir: Path,
                require_time: bool = True) -> Tuple[List[Row], List[Span]]:
    """Break and timestamp every input; events keep file order and get _cd = 0:<n> across all inputs. Also returns
    where each input's events are. Exit 2 (ReplayError) for an input without any readable timestamp, unless
    `require_time` is off (the sample check: vendor test cases without times, e.g. Panther's, are then at 0)."""
    events: List[Row] = []
    spans: List[Span] = []
    props: Dict[str, Dict[str, str]] = {}
    for spec in specs:
        if spec.sourcetype not in OWNED and reader_for(spec.sourcetype) is None:
            raise ReplayError("unknown sourcetype {!r}; the replay reads {}".format(
                spec.sourcetype, ", ".join(known_sourcetypes())))
        data = read_bytes(spec.path)
        records, untimed = _records(spec, data, app_dir, props)
        if not records:
            warn("{}: no events".format(spec.path))
        first = next((stamp for _, stamp, _ in records if stamp is not None), None)
        if records and first is None and require_time:
            raise ReplayError("{}: none of its {} event(s) has a timestamp the replay reads as {} (docs/replay.md): "
                              "is the sourcetype right, or is the file corrupt?".format(
                                  spec.path, len(records), spec.sourcetype))
        untimed += sum(1 for _, stamp, _ in records if stamp is None)
        read_hosts = {d["host"] for _, _, d in records if d.get("host")}
        start = len(events)
        previous = first if first is not None else 0.0
        for raw, stamp, defaults in records:
            # Events before the first readable time take that time (never 1970); later ones the previous time.
            stamp = previous if stamp is None else stamp
            previous = stamp
            events.append({
                "_raw": raw, "_time": repr(stamp), "_cd": "0:{}".format(len(events)),
                "index": spec.index or DEFAULT_INDEX, "splunk_server": peers.server_name(0),
                "sourcetype": spec.sourcetype, "source": spec.source or defaults.get("source") or str(spec.path),
                "host": spec.host or defaults.get("host") or DEFAULT_HOST,
            })
        spans.append(Span(spec, start, len(events)))
        if untimed:
            warn("{}: {} of {} event(s) without a readable timestamp took the time of the event before them (the "
                 "first readable time for those before it)".format(spec.path, untimed, len(records)))
        _warn_hosts(spec, records, read_hosts)
    return events, spans


def _warn_hosts(spec: InputSpec, records: Sequence[Record], read_hosts: Set[str]) -> None:
    """Chains and thresholds count per host: say when one input mixes hosts that the replay cannot tell apart."""
    if spec.host and len(read_hosts) > 1:
        warn("{}: host={} overrides the {} hosts its events name ({}): chains and thresholds will mix them; give "
             "one --input per host or leave host= out".format(spec.path, spec.host, len(read_hosts),
                                                               ", ".join(sorted(read_hosts)[:5])))
    elif (not read_hosts and spec.sourcetype in ("linux:audit", "auditd") and _audit_serial_hosts(records)):
        warn("{}: the records look like several hosts' (their audit serials jump back and forth) but carry no "
             "node= to tell them apart: all are host={}, so chains and thresholds will mix them; give one --input "
             "per host (host=H), or export with auditd's name_format so that each record has node=".format(
                 spec.path, spec.host or DEFAULT_HOST))
