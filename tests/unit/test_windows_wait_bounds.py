"""escapewindows' wait for a container ancestor (issue 15): bounded per ancestor, and every event it gives up counted
and reported in the search's messages. A flood of siblings must not flush a descendant whose ancestor comes later."""
from typing import Dict, List

from escape_engine import windows
from tests.unit.winesxi_samples import RESTRICTED

ANCESTOR, DESCENDANT = "{aaaaaaaa-0000-0000-0000-000000000001}", "{dddddddd-0000-0000-0000-000000000002}"


def sysmon(eid: int, guid: str, parent_guid: str, image: str, parent: str, target: str = "",
           number: int = 0) -> Dict[str, str]:
    target_xml = "<Data Name='TargetFilename'>{}</Data>".format(target) if target else ""
    raw = ("<Event><System><Provider Name='Microsoft-Windows-Sysmon'/><EventID>{}</EventID><Computer>w1</Computer>"
           "</System><EventData><Data Name='ProcessGuid'>{}</Data><Data Name='ParentProcessGuid'>{}</Data>"
           "<Data Name='Image'>{}</Data><Data Name='ParentImage'>{}</Data><Data Name='CommandLine'>x</Data>{}"
           "</EventData></Event>").format(eid, guid, parent_guid, image, parent, target_xml)
    return {"_raw": raw, "_cd": "0:{}".format(number)}


def flood(siblings: int) -> List[Dict[str, str]]:
    """Newest first: the descendant's write and start, `siblings` sibling starts, then (oldest) the container
    ancestor started by CExecSvc.exe."""
    events = [sysmon(11, DESCENDANT, "", "C:\\app\\drop.exe", "", target="C:\\Windows\\System32\\evil.dll"),
              sysmon(1, DESCENDANT, ANCESTOR, "C:\\app\\drop.exe", "C:\\app\\run.exe")]
    events += [sysmon(1, "{5%07d-0000-0000-0000-000000000000}" % i, ANCESTOR, "C:\\app\\worker.exe",
                      "C:\\app\\run.exe") for i in range(siblings)]
    events.append(sysmon(1, ANCESTOR, "{cccccccc-0000-0000-0000-000000000000}", "C:\\app\\run.exe",
                         "C:\\Windows\\System32\\CExecSvc.exe"))
    return [dict(e, _cd="0:{}".format(n)) for n, e in enumerate(events)]


def scan(events: List[Dict[str, str]], size: int = 1000) -> List[Dict[str, object]]:
    scanner = windows.Scanner(restricted=RESTRICTED, findings="file_write")
    rows = [r for start in range(0, len(events), size) for r in scanner.feed(events[start:start + size])]
    scan.messages = scanner.messages()  # type: ignore[attr-defined]
    return rows


def test_a_descendant_survives_21000_siblings_handed_over_before_its_ancestor() -> None:
    rows = scan(flood(21000))
    assert [r["escape_target_path"] for r in rows] == ["C:\\Windows\\System32\\evil.dll"]
    assert "written by a container process" in str(rows[0]["escape_container_marker"])  # inherited by GUID
    messages = scan.messages  # type: ignore[attr-defined]
    assert messages and "given up (0 of them with findings)" in messages[0], messages


def test_every_given_up_event_is_counted() -> None:
    lineage = windows.Lineage(wait_limit=50, per_ancestor=10)
    events = flood(200)
    list(windows.run(events[:-1], restricted=RESTRICTED, findings="file_write", lineage=lineage))
    # 202 waited: the write (under the descendant), the descendant's start and 200 siblings (under the ancestor);
    # the ancestor's bucket keeps 10 and evicts the siblings first, never the descendant's start.
    assert lineage.waiting_count == 11 and lineage.evicted == 191 and lineage.evicted_findings == 0
    rows = list(windows.run(events[-1:], restricted=RESTRICTED, findings="file_write", lineage=lineage))
    assert len(rows) == 1 and lineage.waiting_count == 0
    assert "191 Sysmon events waiting for a container ancestor were given up" in lineage.messages()[0]


def test_events_with_findings_are_counted_when_the_bound_drops_them() -> None:
    lineage = windows.Lineage(wait_limit=3, per_ancestor=3)
    writes = [sysmon(11, "{7%07d-0000-0000-0000-000000000000}" % i, "", "C:\\app\\w.exe", "",
                     target="C:\\Windows\\x{}.dll".format(i), number=i) for i in range(5)]
    list(windows.run(writes, restricted=RESTRICTED, findings="file_write", lineage=lineage))
    assert (lineage.waiting_count, lineage.evicted, lineage.evicted_findings) == (3, 2, 2)
    assert "(2 of them with findings)" in lineage.messages()[0]


def test_nothing_given_up_says_nothing() -> None:
    assert scan(flood(10)) and scan.messages == []  # type: ignore[attr-defined]
