"""Offline evaluator of the index-time props.conf settings the add-on may use for its owned sourcetypes.

Implements exactly the keys of docs/development.md §4, as props.conf.spec documents them, and refuses any other
index-time key, so a setting nobody has taught it cannot pass silently:

- LINE_BREAKER (default ``([\\r\\n]+)``): PCRE; the first capturing group is the delimiter between two events and is
  dropped; text before it ends one event, text after it starts the next. Requires SHOULD_LINEMERGE = false.
- TRUNCATE (default 10000): an event longer than that many bytes is cut to it; 0 means never.
- TIME_PREFIX: PCRE; the timestamp is read right after its first match (no match: the event has no timestamp).
- MAX_TIMESTAMP_LOOKAHEAD (default 128): characters after the prefix the timestamp must fit in.
- TIME_FORMAT: strptime with Splunk's extensions (%N, %3N, %6N, %9N, %s, %z, %Z); directives it does not list are
  refused. Without TIME_FORMAT Splunk guesses; this evaluator refuses to.
- TZ: the zone of timestamps that carry none (default: UTC, the replay's stand-in for the indexer's zone).
- CHARSET (default UTF-8 here), NO_BINARY_CHECK: accepted; CHARSET = AUTO is refused.

An event without a usable timestamp takes the previous event's time, as Splunk does, and is counted.
"""
import codecs
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Dict, List, Mapping, Optional, Tuple

import pcre2

INDEX_TIME_KEYS = frozenset({"LINE_BREAKER", "SHOULD_LINEMERGE", "TRUNCATE", "TIME_PREFIX", "TIME_FORMAT",
                             "MAX_TIMESTAMP_LOOKAHEAD", "TZ", "CHARSET", "NO_BINARY_CHECK"})
# Search-time keys (tools/searchtime.py's business) and stanza metadata: ignored here.
_SEARCH_TIME = re.compile(r"(EXTRACT|REPORT|FIELDALIAS|EVAL|LOOKUP|SEDCMD_SEARCH)-.+|KV_MODE|AUTO_KV_JSON|"
                          r"KV_TRIM_SPACE|"
                          r"category|description|pulldown_type|INDEXED_EXTRACTIONS_SEARCH|ANNOTATE_PUNCT")


class IndexTimeError(ValueError):
    pass


@dataclass
class Broken:
    """The events of one input: (_raw, epoch seconds) in file order, plus what went wrong along the way."""
    events: List[Tuple[str, float]] = field(default_factory=list)
    truncated: int = 0
    untimed: int = 0


def index_time_settings(stanza: Mapping[str, str], name: str) -> Dict[str, str]:
    """The stanza's index-time keys; raises on one this evaluator does not implement."""
    settings = {}
    for key, value in stanza.items():
        if key in INDEX_TIME_KEYS:
            settings[key] = value
        elif not _SEARCH_TIME.fullmatch(key):
            raise IndexTimeError("props.conf [{}]: {} is not an index-time setting the offline evaluator implements "
                                 "(allowed: {})".format(name, key, ", ".join(sorted(INDEX_TIME_KEYS))))
    if settings.get("SHOULD_LINEMERGE", "true").strip().lower() not in ("false", "0"):
        raise IndexTimeError("props.conf [{}]: SHOULD_LINEMERGE must be false (line merging is not "
                             "implemented)".format(name))
    if settings.get("CHARSET", "UTF-8").strip().upper() == "AUTO":
        raise IndexTimeError("props.conf [{}]: CHARSET = AUTO is not implemented".format(name))
    if "TIME_FORMAT" not in settings:
        raise IndexTimeError("props.conf [{}]: TIME_FORMAT is required (automatic timestamp recognition is not "
                             "implemented)".format(name))
    return settings


# ---------------------------------------------------------------- TIME_FORMAT
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DIRECTIVES = {
    "Y": r"(?P<Y>\d{4})", "y": r"(?P<y>\d{2})", "m": r"(?P<m>\d{1,2})", "d": r"(?P<d>\d{1,2})",
    "e": r"\s?(?P<d>\d{1,2})", "H": r"(?P<H>\d{1,2})", "k": r"\s?(?P<H>\d{1,2})", "I": r"(?P<I>\d{1,2})",
    "M": r"(?P<M>\d{2})", "S": r"(?P<S>\d{2})", "p": r"(?P<p>[AaPp][Mm])", "j": r"(?P<j>\d{3})",
    "b": r"(?P<b>[A-Za-z]{3})", "h": r"(?P<b>[A-Za-z]{3})", "B": r"(?P<B>[A-Za-z]+)", "a": r"[A-Za-z]{3}",
    "A": r"[A-Za-z]+", "s": r"(?P<s>\d{1,10})", "z": r"(?P<z>Z|[+-]\d{2}:?\d{2})", ":z": r"(?P<z>Z|[+-]\d{2}:\d{2})",
    "Z": r"(?P<Z>Z|UTC|GMT|[+-]\d{2}:?\d{2})", "T": r"(?P<H>\d{1,2}):(?P<M>\d{2}):(?P<S>\d{2})",
    "N": r"(?P<N>\d{1,9})", "3N": r"(?P<N>\d{3})", "6N": r"(?P<N>\d{6})", "9N": r"(?P<N>\d{9})", "%": "%",
}


def time_format_regex(time_format: str) -> "re.Pattern[str]":
    parts, i = [], 0
    while i < len(time_format):
        char = time_format[i]
        if char != "%":
            parts.append(r"\s+" if char == " " else re.escape(char))
            i += 1
            continue
        match = re.match(r"%(:z|[369]N|.)", time_format[i:])
        if not match or match.group(1) not in _DIRECTIVES:
            raise IndexTimeError("TIME_FORMAT {!r}: directive {!r} is not implemented".format(
                time_format, time_format[i:i + 3]))
        parts.append(_DIRECTIVES[match.group(1)])
        i += match.end()
    try:
        return re.compile("".join(parts))
    except re.error as err:  # the same field twice (e.g. %H and %T)
        raise IndexTimeError("TIME_FORMAT {!r}: {}".format(time_format, err)) from None


def _offset(text: str) -> timezone:
    if text in ("Z", "UTC", "GMT"):
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _zone(name: Optional[str]) -> timezone:
    if not name or name.upper() in ("UTC", "GMT", "ETC/UTC"):
        return timezone.utc
    try:
        from zoneinfo import ZoneInfo
        return ZoneInfo(name)  # type: ignore[return-value]
    except Exception:  # noqa: BLE001  whatever stops the zone from loading (unknown name, no tz database)
        raise IndexTimeError("TZ {!r} is not a zone this machine knows".format(name)) from None


def parse_time(match: "re.Match[str]", tz: Optional[str]) -> float:
    """Epoch seconds from a TIME_FORMAT match."""
    g = match.groupdict()
    fraction = float("0." + g["N"]) if g.get("N") else 0.0
    if g.get("s"):
        return int(g["s"]) + fraction
    year = int(g["Y"]) if g.get("Y") else 2000 + int(g["y"]) if g.get("y") else datetime.now(timezone.utc).year
    month = int(g["m"]) if g.get("m") else 1
    if g.get("b") or g.get("B"):
        month = _MONTHS.index((g.get("b") or g["B"])[:3].lower()) + 1
    day = int(g["d"]) if g.get("d") else 1
    hour = int(g["H"]) if g.get("H") else 0
    if g.get("I"):
        hour = int(g["I"]) % 12 + (12 if (g.get("p") or "").lower() == "pm" else 0)
    stamp = datetime(year, month, day, hour, int(g.get("M") or 0), int(g.get("S") or 0))
    if g.get("j"):
        stamp = datetime(year, 1, 1, stamp.hour, stamp.minute, stamp.second) + timedelta(days=int(g["j"]) - 1)
    offset = g.get("z") or g.get("Z")
    zone = _offset(offset) if offset else _zone(tz)
    return stamp.replace(tzinfo=zone).timestamp() + fraction


# ---------------------------------------------------------------- breaking
def break_events(data: bytes, settings: Mapping[str, str], name: str = "<input>") -> Broken:
    """Apply the stanza's index-time settings (from index_time_settings) to the bytes of one input."""
    charset = settings.get("CHARSET", "UTF-8").strip() or "UTF-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        raise IndexTimeError("CHARSET {!r} is unknown".format(charset)) from None
    text = data.decode(charset, errors="replace")
    try:
        breaker = pcre2.compile(settings.get("LINE_BREAKER", r"([\r\n]+)"))
        prefix = pcre2.compile(settings["TIME_PREFIX"]) if settings.get("TIME_PREFIX") else None
    except Exception as err:  # noqa: BLE001  pcre2 raises its own error types
        raise IndexTimeError("{}: bad regex in props.conf: {}".format(name, err)) from None
    if breaker.groups < 1:
        raise IndexTimeError("{}: LINE_BREAKER needs a capturing group (the delimiter)".format(name))
    time_regex = time_format_regex(settings["TIME_FORMAT"])
    lookahead = int(settings.get("MAX_TIMESTAMP_LOOKAHEAD", "128"))
    truncate = int(settings.get("TRUNCATE", "10000"))
    result = Broken()
    start = 0
    pieces: List[str] = []
    for match in breaker.finditer(text):
        if match.end(1) <= match.start(1) and match.start(1) == start:
            continue
        pieces.append(text[start:match.start(1)])
        start = match.end(1)
    pieces.append(text[start:].rstrip("\r\n"))  # the input's final line end delimits nothing
    previous = 0.0
    for piece in pieces:
        if not piece.strip():
            continue
        encoded = piece.encode("utf-8")
        if truncate and len(encoded) > truncate:
            piece = encoded[:truncate].decode("utf-8", errors="ignore")
            result.truncated += 1
        at = 0
        stamp: Optional[float] = None
        if prefix is not None:
            found = prefix.search(piece)
            at = found.end() if found else -1
        if at >= 0:
            window = piece[at:at + lookahead]
            parsed = time_regex.match(window)
            if parsed:
                try:
                    stamp = parse_time(parsed, settings.get("TZ"))
                except (ValueError, OverflowError):
                    stamp = None
        if stamp is None:
            result.untimed += 1
            stamp = previous
        previous = stamp
        result.events.append((piece, stamp))
    return result
