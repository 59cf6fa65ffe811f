"""Parser for Sysmon for Linux events (EID 1 process create, EID 11 file create): XML inside a syslog line.

`<syslog time> <host> sysmon: <Event>...<EventID>1</EventID>...<Data Name="Image">/usr/bin/x</Data>...</Event>`.
Data values are read with str.find; XML entities are unescaped. Quotes may be double (Sysmon for Linux) or single.
"""
import calendar
import time
from typing import Dict, Optional

from .scalars import is_ascii_digits

_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))


def _unescape(text: str) -> str:
    if "&" not in text:
        return text
    for entity, char in _ENTITIES:
        text = text.replace(entity, char)
    return text


def _element(xml: str, tag: str) -> str:
    start = xml.find("<" + tag + ">")
    if start < 0:
        return ""
    start += len(tag) + 2
    end = xml.find("</" + tag + ">", start)
    return _unescape(xml[start:end]) if end >= 0 else ""


def parse_event(raw: str) -> Optional[Dict[str, str]]:
    """Return EventID, Computer and every <Data Name=...> value, or None when `raw` holds no Sysmon event."""
    start = raw.find("<Event")
    if start < 0:
        return None
    xml = raw[start:]
    # EventID and Computer are read from the System block only (the event data that follows it carries command lines
    # and paths, which the process chose); a Data name seen twice keeps its first value.
    system_end = xml.find("</System>")
    system = xml[:system_end] if system_end >= 0 else xml
    event_id = _element(system, "EventID")
    if not is_ascii_digits(event_id):
        return None
    result: Dict[str, str] = {"EventID": event_id, "Computer": _element(system, "Computer")}
    position = 0
    while True:
        found = xml.find("<Data Name=", position)
        if found < 0:
            break
        quote = xml[found + 11:found + 12]
        name_end = xml.find(quote, found + 12)
        if name_end < 0:
            break
        name = xml[found + 12:name_end]
        close = xml.find(">", name_end)
        if close < 0:
            break
        if xml[close - 1] == "/":  # <Data Name='X'/>
            result.setdefault(name, "")
            position = close + 1
            continue
        value_end = xml.find("</Data>", close)
        if value_end < 0:
            break
        result.setdefault(name, _unescape(xml[close + 1:value_end]))
        position = value_end + 7
    return result


def utc_epoch(utc_time: str) -> Optional[float]:
    """Sysmon UtcTime `2026-11-29 03:43:47.538` to epoch seconds."""
    text = utc_time.strip()
    if not text or not text.isascii():  # time.strptime would read "٢٠٢٦" as a year
        return None
    whole, _, fraction = text.partition(".")
    try:
        parsed = time.strptime(whole, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return calendar.timegm(parsed) + (float("0." + fraction) if is_ascii_digits(fraction) else 0.0)
