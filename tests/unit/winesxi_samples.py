"""Reading the Windows and ESXi sample files into Splunk-like records (for the unit and integration tests).

Event breaking follows the documented formats: classic WinEventLog text starts each event at its timestamp line,
XmlWinEventLog and ESXi syslog carry one event per line. Files are read as bytes and split on b"\\n" only.
"""
import calendar
import re
import time
from pathlib import Path
from typing import Dict, List, Optional

from tests.conftest import DATA, ROOT

SAMPLES = ROOT / "tests" / "knowledge" / "samples"
PUBLIC_WINEVENTLOG = DATA / "public" / "wineventlog"
RESTRICTED = "C:/Windows,C:/ProgramData,C:/Program Files,C:/Program Files (x86)"
_CLASSIC_START = re.compile(rb"^\d\d/\d\d/\d{4} \d\d:\d\d:\d\d [AP]M$")
_ISO = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})")


def _lines(path: Path) -> List[bytes]:
    return [line.rstrip(b"\r") for line in path.read_bytes().split(b"\n")]


def classic_events(path: Path) -> List[str]:
    events: List[List[bytes]] = []
    for line in _lines(path):
        if _CLASSIC_START.match(line) or not events:
            events.append([])
        events[-1].append(line)
    return [b"\n".join(e).strip().decode("utf-8") for e in events if b"".join(e).strip()]


def line_events(path: Path) -> List[str]:
    return [line.decode("utf-8") for line in _lines(path) if line.strip()]


def _epoch(raw: str) -> Optional[str]:
    match = _ISO.search(raw)
    if not match:
        return None
    return str(calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")))


def records(path: Path, sourcetype: str, source: str = "", host: str = "h1", newest_first: bool = True) -> List[Dict[str, str]]:
    """One record per event with _raw, _cd = 0:<n>, host, source, sourcetype (and _time for ESXi lines)."""
    raws = classic_events(path) if path.suffix == ".log" and sourcetype == "WinEventLog" else line_events(path)
    result = []
    for number, raw in enumerate(raws):
        record = {"_raw": raw, "_cd": "0:{}".format(number), "host": host, "sourcetype": sourcetype,
                  "source": source or str(path.name)}
        stamp = _epoch(raw) if sourcetype.startswith("vm") else None
        if stamp:
            record["_time"] = stamp
        result.append(record)
    return list(reversed(result)) if newest_first else result


SYSMON = ("XmlWinEventLog", "XmlWinEventLog:Microsoft-Windows-Sysmon/Operational")
SECURITY_XML = ("XmlWinEventLog", "XmlWinEventLog:Security")
SECURITY_TEXT = ("WinEventLog", "WinEventLog:Security")


def windows_kind(path: Path) -> tuple:
    if path.name.startswith("windows_4688_xml") or "windows-security" in path.name and path.suffix == ".xml":
        return SECURITY_XML
    if path.name.startswith("windows_4688") or "windows-security" in path.name:
        return SECURITY_TEXT
    return SYSMON
