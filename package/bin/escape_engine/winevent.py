"""Windows event parsing for escapewindows: Security 4688 (classic text and XML) and Sysmon EID 1 / 11 (XML) from
`_raw`, reduced to the fields the analytic decides on."""
import re
from typing import Dict, NamedTuple, Optional, Tuple

# Linear in the event's length (the attacker writes command lines and paths): a value never holds a raw "<" in
# well-formed XML (the writer escapes it as &lt;), so no scan runs past the next tag.
_DATA = re.compile(r"<Data Name=(['\"])([^'\"<>]+)\1\s*(?:/>|>([^<]*)</Data>)")
_EVENT_ID = re.compile(r"<EventID(?:\s[^<>]*)?>([0-9]+)</EventID>")  # ASCII: "٤٦٨٨" is no event id
_COMPUTER = re.compile(r"<Computer>([^<]*)</Computer>")
_PROVIDER = re.compile(r"<Provider Name=(['\"])([^'\"]+)\1")
_CLASSIC_KV = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?):[ \t]*(.*)$")  # the value is stripped after
_CLASSIC_EVENTCODE = re.compile(r"^EventCode=([0-9]+)\s*$", re.MULTILINE)
_CLASSIC_COMPUTER = re.compile(r"^ComputerName=(.*)$", re.MULTILINE)  # the value is stripped after
# Natural bounds: a Windows command line holds at most 32,767 UTF-16 characters (CreateProcess), a path as many.
MAX_FIELD = 32767
_XML_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&#39;", "'"), ("&amp;", "&"))


class WinEvent(NamedTuple):
    """The fields of one process-creation or file-creation event that the analytic decides on."""

    kind: str  # security_4688 | sysmon_1 | sysmon_11
    computer: str
    image: str
    parent_image: str
    command_line: str
    parent_command_line: str
    user: str  # DOMAIN\name of the account the process runs as
    parent_user: str
    target_filename: str
    process_guid: str = ""
    parent_process_guid: str = ""


def _unescape(text: str) -> str:
    if "&" not in text:  # every entity starts with "&": most values have none
        return text
    for entity, char in _XML_ENTITIES:
        text = text.replace(entity, char)
    return text


def _xml_data(raw: str) -> Dict[str, str]:
    # findall gives "" for a self-closing <Data Name='X'/> (its value group does not take part)
    return {name: _unescape(value[:MAX_FIELD * 8]).strip()[:MAX_FIELD]
            for _quote, name, value in _DATA.findall(raw)}


def _account(domain: str, name: str) -> str:
    domain, name = domain.strip(), name.strip()
    if not name or name == "-":
        return ""
    return domain + "\\" + name if domain and domain != "-" else name


def _classic_sections(raw: str) -> Dict[str, Dict[str, str]]:
    """Classic WinEventLog text: 'Section:' lines followed by tab-indented 'Key:<tabs>Value' lines."""
    sections: Dict[str, Dict[str, str]] = {}
    current = ""
    for line in raw.split("\n"):
        if ":" not in line:  # neither a section nor a key line (and blank lines have none either)
            continue
        match = _CLASSIC_KV.match(line)
        if not match:
            continue
        key, value = match.group(1).strip(), match.group(2).rstrip()
        if not line[:1].isspace() and value == "":
            current = key
            continue
        sections.setdefault(current, {}).setdefault(key, value)
    return sections


def is_xml(raw: str, sourcetype: str = "") -> bool:
    """Whether an event is Windows' XML rendering: by its sourcetype (XmlWinEventLog or WinEventLog, with or without a
    `:<channel>` suffix), else by its structure (the document starts with its <Event> element). Never by a substring
    anywhere in the text: a command line may hold "<Event><EventID>" too."""
    family = sourcetype.split(":", 1)[0].lower()
    if family in ("xmlwineventlog", "wineventlog"):
        return family == "xmlwineventlog"
    return raw.lstrip().startswith("<Event")


def parse(raw: str, sourcetype: str = "") -> Tuple[Optional[WinEvent], str]:
    """Parse one event. Returns (event, "") for the kinds we read, (None, "") for other events and
    (None, reason) for a malformed event of a kind we read."""
    if is_xml(raw, sourcetype):
        return _parse_xml(raw)
    code = _CLASSIC_EVENTCODE.search(raw)
    if code:
        if code.group(1) != "4688":
            return None, ""
        return _parse_classic_4688(raw)
    return None, ""


def _parse_xml(raw: str) -> Tuple[Optional[WinEvent], str]:
    event_id = _EVENT_ID.search(raw)
    provider = _PROVIDER.search(raw)
    computer_match = _COMPUTER.search(raw)
    computer = computer_match.group(1).strip() if computer_match else ""
    if not event_id:
        return None, "XML event without an EventID"
    eid = event_id.group(1)
    provider_name = provider.group(2).lower() if provider else ""
    data = _xml_data(raw)
    if "sysmon" in provider_name:
        if eid not in ("1", "11"):
            return None, ""
        if "Image" not in data:
            return None, "Sysmon {} event without an Image field".format(eid)
        if eid == "11" and "TargetFilename" not in data:
            return None, "Sysmon 11 event without a TargetFilename field"
        return WinEvent("sysmon_" + eid, computer, data.get("Image", ""), data.get("ParentImage", ""),
                        data.get("CommandLine", ""), data.get("ParentCommandLine", ""), data.get("User", ""),
                        data.get("ParentUser", ""), data.get("TargetFilename", ""),
                        data.get("ProcessGuid", "").lower(), data.get("ParentProcessGuid", "").lower()), ""
    if eid == "4688" and "security-auditing" in provider_name:
        if "NewProcessName" not in data:
            return None, "4688 XML event without NewProcessName"
        user = _account(data.get("TargetDomainName", ""), data.get("TargetUserName", "")) or _account(
            data.get("SubjectDomainName", ""), data.get("SubjectUserName", ""))
        subject = _account(data.get("SubjectDomainName", ""), data.get("SubjectUserName", ""))
        return WinEvent("security_4688", computer, data["NewProcessName"], data.get("ParentProcessName", ""),
                        data.get("CommandLine", ""), "", user, subject, ""), ""
    return None, ""


def _parse_classic_4688(raw: str) -> Tuple[Optional[WinEvent], str]:
    sections = _classic_sections(raw)
    process = sections.get("Process Information", {})
    if "New Process Name" not in process:
        return None, "4688 text event without 'New Process Name'"
    creator = sections.get("Creator Subject", sections.get("Subject", {}))
    target = sections.get("Target Subject", {})
    subject = _account(creator.get("Account Domain", ""), creator.get("Account Name", ""))
    user = _account(target.get("Account Domain", ""), target.get("Account Name", "")) or subject
    computer = _CLASSIC_COMPUTER.search(raw)
    return WinEvent("security_4688", computer.group(1).strip() if computer else "",
                    process["New Process Name"][:MAX_FIELD], process.get("Creator Process Name", "")[:MAX_FIELD],
                    process.get("Process Command Line", "")[:MAX_FIELD], "",
                    user, subject, ""), ""
