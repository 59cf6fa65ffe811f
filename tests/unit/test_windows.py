"""escapewindows' engine: container context, the three findings, HostProcess exception, real host data stays silent."""
import base64
from collections import Counter
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from escape_engine import windows, winevent, winsymlink
from tests.unit.winesxi_samples import PUBLIC_WINEVENTLOG, RESTRICTED, SAMPLES, records, windows_kind

PUBLIC = sorted(PUBLIC_WINEVENTLOG.glob("*.log"))
VHD = "\\Device\\VhdHardDisk{7d3c1a52-4b1e-4c8a-9f0e-2a6b5c9d8e11}"


def run_file(path: Path, **options: str) -> List[Dict[str, object]]:
    sourcetype, source = windows_kind(path)
    return list(windows.run(records(path, sourcetype, source), restricted=options.pop("restricted", RESTRICTED),
                            **options))  # type: ignore[arg-type]


def sysmon11(image: str, target: str, user: str = "") -> Dict[str, str]:
    user_xml = "<Data Name='User'>{}</Data>".format(user) if user else ""
    return {"_raw": "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider "
                    "Name='Microsoft-Windows-Sysmon' Guid='{5770385F-C22A-43E0-BF4C-06F5698FFBD9}'/><EventID>11</EventID>"
                    "<Computer>w1</Computer></System><EventData><Data Name='Image'>" + image + "</Data><Data "
                    "Name='TargetFilename'>" + target + "</Data>" + user_xml + "</EventData></Event>", "_cd": "0:1"}


def sysmon1(image: str, command: str, user: str, parent: str = "C:\\Windows\\explorer.exe") -> Dict[str, str]:
    return {"_raw": "<Event><System><Provider Name='Microsoft-Windows-Sysmon'/><EventID>1</EventID><Computer>w1</Computer>"
                    "</System><EventData><Data Name='Image'>" + image + "</Data><Data Name='CommandLine'>" + command +
                    "</Data><Data Name='User'>" + user + "</Data><Data Name='ParentImage'>" + parent +
                    "</Data></EventData></Event>", "_cd": "0:2"}


@pytest.mark.parametrize("path", PUBLIC, ids=lambda p: p.name)
def test_real_public_windows_logs_stay_silent(path: Path) -> None:
    stats = windows.Stats()
    sourcetype, source = windows_kind(path)
    rows = list(windows.run(records(path, sourcetype, source), restricted=RESTRICTED, stats=stats))
    assert rows == []
    assert stats.malformed == 0


def test_real_public_logs_are_parsed_not_skipped() -> None:
    """Silence on the real files must come from the decision, not from failing to read them."""
    kinds: Counter = Counter()
    for path in PUBLIC:
        sourcetype, source = windows_kind(path)
        for record in records(path, sourcetype, source):
            event, problem = winevent.parse(record["_raw"])
            assert not problem
            if event is not None:
                kinds[event.kind] += 1
                assert event.image and event.computer
    assert kinds == {"security_4688": 8, "sysmon_1": 16, "sysmon_11": 13}


def test_the_same_real_4688_events_fire_once_the_account_is_a_container_account() -> None:
    """Mutating only the account of the real T1202 events turns host activity into container activity."""
    path = PUBLIC_WINEVENTLOG / "splunk_attack_data_T1202_windows-security_4688.log"
    mutated = []
    for record in records(path, "WinEventLog", "WinEventLog:Security"):
        raw = record["_raw"].replace("Account Name:\t\tAdministrator", "Account Name:\t\tContainerAdministrator")
        mutated.append(dict(record, _raw=raw.replace("Account Domain:\t\tATTACKRANGE", "Account Domain:\t\tUser Manager")))
    rows = list(windows.run(mutated, restricted=RESTRICTED, findings="process_exec"))
    assert len(rows) == 8 and {r["escape_finding"] for r in rows} == {"restricted_dir_exec"}


@pytest.mark.parametrize("name, finding, count", [
    ("windows_sysmon_container_write_attack.xml", "restricted_dir_write", 4),
    ("windows_sysmon_container_exec_attack.xml", "restricted_dir_exec", 2),
    ("windows_sysmon_container_symlink_attack.xml", "symlink_abuse", 4),
    ("windows_4688_container_attack.log", "restricted_dir_exec", 1),
    ("windows_4688_container_attack.log", "symlink_abuse", 1),
    ("windows_4688_xml_container_attack.xml", "restricted_dir_exec", 1),
])
def test_every_synthetic_attack_fires(name: str, finding: str, count: int) -> None:
    rows = [r for r in run_file(SAMPLES / name) if r["escape_finding"] == finding]
    assert len(rows) == count
    for row in rows:
        assert row["escape_severity"] == "high"
        assert row["escape_context"] == "container"
        assert row["escape_evidence_cd"] and str(row["escape_evidence_cd"][0]).startswith("0:")  # type: ignore[index]
        assert "container context" in str(row["escape_summary"])


@pytest.mark.parametrize("name", ["windows_sysmon_host_benign.xml", "windows_4688_host_benign.log",
                                  "windows_4688_xml_host_benign.xml"])
def test_benign_samples_stay_silent(name: str) -> None:
    assert run_file(SAMPLES / name) == []


def test_a_host_process_writing_under_c_windows_does_not_alert() -> None:
    host = sysmon11("C:\\Windows\\servicing\\TrustedInstaller.exe", "C:\\Windows\\System32\\new.dll", "NT AUTHORITY\\SYSTEM")
    assert list(windows.run([host], restricted=RESTRICTED)) == []
    container = sysmon11(VHD + "\\Windows\\System32\\cmd.exe", "C:\\Windows\\System32\\new.dll",
                         "User Manager\\ContainerAdministrator")
    assert [r["escape_finding"] for r in windows.run([container], restricted=RESTRICTED)] == ["restricted_dir_write"]


def test_a_domain_account_named_like_a_container_account_is_not_a_container() -> None:
    event = sysmon11("C:\\Windows\\System32\\cmd.exe", "C:\\Windows\\x", "CORP\\ContainerAdministrator")
    assert list(windows.run([event], restricted=RESTRICTED)) == []


def test_the_restricted_tunable_decides() -> None:
    event = sysmon11(VHD + "\\Windows\\System32\\cmd.exe", "C:\\inetpub\\wwwroot\\x.aspx", "User Manager\\ContainerUser")
    assert list(windows.run([event], restricted=RESTRICTED)) == []
    assert len(list(windows.run([event], restricted="C:/inetpub"))) == 1


def test_hostprocess_is_a_low_severity_record_unless_told_to_alert() -> None:
    path = SAMPLES / "windows_sysmon_hostprocess_record.xml"
    recorded = run_file(path)
    assert len(recorded) == 2
    assert {r["escape_severity"] for r in recorded} == {"low"}
    assert {r["escape_exception"] for r in recorded} == {"hostprocess"}
    alerted = run_file(path, hostprocess="alert")
    assert {r["escape_severity"] for r in alerted} == {"high"} and all("escape_exception" not in r for r in alerted)


@pytest.mark.parametrize("command", [
    "cmd.exe /c mklink /D C:\\link C:\\Windows",
    "cmd /c \"mklink /J C:\\j \\\\?\\GLOBALROOT\\Device\\HarddiskVolume2\\Windows\"",
    "MKLINK C:\\x.dll C:\\Windows\\System32\\x.dll",
    "fsutil behavior set SymlinkEvaluation R2L:1",
    "fsutil.exe BEHAVIOR SET symlinkevaluation L2R:1 R2R:1",
    "powershell -c New-Item -ItemType SymbolicLink -Path C:\\l -Target C:\\Windows",
    "pwsh -c ni -Type Junction C:\\j -Value C:\\ProgramData",
    "powershell -c New-Item -it HardLink C:\\h -Value C:\\Windows\\win.ini",
    "powershell -c [IO.Directory]::CreateSymbolicLink('C:\\l','C:\\Windows')",
])
def test_symlink_tooling_is_recognised(command: str) -> None:
    assert winsymlink.symlink_tooling(command) is not None


@pytest.mark.parametrize("parameter", ["-enc", "-e", "-EncodedCommand", "-ec", "/enc"])
def test_encoded_powershell_link_commands_are_decoded(parameter: str) -> None:
    blob = base64.b64encode("New-Item -ItemType Junction -Path C:\\j -Value C:\\Windows".encode("utf-16-le")).decode()
    hit = winsymlink.symlink_tooling("powershell.exe -nop {} {}".format(parameter, blob))
    assert hit is not None and hit.tool == "powershell" and hit.targets == ("C:\\Windows",)


@pytest.mark.parametrize("command", [
    "fsutil behavior query SymlinkEvaluation",
    "cmd /c echo mklinkage",
    "powershell -c New-Item -ItemType Directory -Path C:\\app",
    "powershell -exec bypass -File C:\\app\\setup.ps1",
    "powershell -enc " + base64.b64encode("Get-Process".encode("utf-16-le")).decode(),
])
def test_other_commands_are_not_link_tooling(command: str) -> None:
    assert winsymlink.symlink_tooling(command) is None


def test_symlink_severity_depends_on_the_target() -> None:
    user = "User Manager\\ContainerAdministrator"
    image = VHD + "\\Windows\\System32\\cmd.exe"
    to_host = list(windows.run([sysmon1(image, "cmd /c mklink /D C:\\l C:\\Windows", user)], restricted=RESTRICTED))
    to_app = list(windows.run([sysmon1(image, "cmd /c mklink /D C:\\l C:\\app\\data", user)], restricted=RESTRICTED))
    assert [r["escape_severity"] for r in to_host] == ["high"]
    assert [r["escape_severity"] for r in to_app] == ["medium"]
    host = sysmon1("C:\\Windows\\System32\\cmd.exe", "cmd /c mklink /D C:\\l C:\\Windows", "CORP\\admin")
    assert list(windows.run([host], restricted=RESTRICTED)) == []  # host-level link tooling is not this analytic


def test_findings_option_selects_and_rejects() -> None:
    path = SAMPLES / "windows_4688_container_attack.log"
    assert {r["escape_finding"] for r in run_file(path, findings="symlink")} == {"symlink_abuse"}
    with pytest.raises(ValueError, match="findings"):
        run_file(path, findings="everything")
    with pytest.raises(ValueError, match="hostprocess"):
        run_file(path, hostprocess="ignore")
    with pytest.raises(ValueError, match="drive letter"):
        run_file(path, restricted="Windows")


def test_malformed_events_are_counted_not_fatal() -> None:
    stats = windows.Stats()
    bad = [{"_raw": "<Event><System><Provider Name='Microsoft-Windows-Sysmon'/><EventID>11</EventID></System>"
                    "<EventData><Data Name='Image'>x</Data></EventData></Event>"},
           {"_raw": "EventCode=4688\nComputerName=w1\nMessage=A new process has been created."},
           {"_raw": "<Event><System><EventID>oops</EventID></System></Event>"},
           {"_raw": ""}, {"_raw": "random text"}]
    assert list(windows.run(bad, restricted=RESTRICTED, stats=stats)) == []
    assert stats.read == 5 and stats.malformed == 3 and stats.skipped == 2


def test_cexecsvc_lineage_is_followed_through_process_guids_whatever_the_order() -> None:
    path = SAMPLES / "windows_sysmon_container_lineage_attack.xml"
    for newest_first in (True, False):
        events = records(path, *windows_kind(path), newest_first=newest_first)
        rows = list(windows.run(events, restricted=RESTRICTED))
        assert sorted(str(r["escape_finding"]) for r in rows) == ["restricted_dir_exec", "restricted_dir_write"]
        assert all("container process" in str(r["escape_container_marker"]) for r in rows)


def test_lineage_carries_across_chunks_when_the_parent_came_first() -> None:
    path = SAMPLES / "windows_sysmon_container_lineage_attack.xml"
    oldest_first = records(path, *windows_kind(path), newest_first=False)
    lineage = windows.Lineage()
    rows = [r for chunk in (oldest_first[:3], oldest_first[3:])
            for r in windows.run(chunk, restricted=RESTRICTED, lineage=lineage)]
    assert len(rows) == 2
    # Without the shared lineage the second chunk has no container marker at all: the host-path helper stays unknown.
    assert list(windows.run(oldest_first[3:], restricted=RESTRICTED)) == []


def test_lineage_is_per_computer_and_bounded() -> None:
    lineage = windows.Lineage(limit=2)
    assert lineage.add("w1", "{a}", "container") and not lineage.add("W1", "{a}", "container")
    assert lineage.get("w2", "{a}") == ""
    assert not lineage.add("w1", "{00000000-0000-0000-0000-000000000000}", "container")
    lineage.add("w1", "{b}", "container")
    lineage.add("w1", "{c}", "container")
    assert lineage.get("w1", "{a}") == "" and lineage.get("w1", "{c}") == "container"


def _row_keys(rows: List[Dict]) -> List[Tuple[str, str, str]]:
    return sorted((str(r["_cd"]), str(r["escape_finding"]), str(r["escape_container_marker"])) for r in rows)


def test_a_child_handed_over_before_its_container_ancestor_is_reported_when_the_ancestor_comes() -> None:
    # Splunk hands events newest first: the children come a chunk before the CExecSvc.exe ancestor. They wait, and
    # are reported with the chunk that brings the ancestor.
    path = SAMPLES / "windows_sysmon_container_lineage_attack.xml"
    newest_first = records(path, *windows_kind(path))
    lineage = windows.Lineage()
    assert list(windows.run(newest_first[:3], restricted=RESTRICTED, lineage=lineage)) == []
    later = list(windows.run(newest_first[3:], restricted=RESTRICTED, lineage=lineage))
    assert _row_keys(later) == _row_keys(list(windows.run(newest_first, restricted=RESTRICTED)))
    assert len(later) == 2 and lineage.waiting_count == 0


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
def test_any_chunking_of_newest_first_events_gives_the_rows_of_one_chunk(size: int) -> None:
    for path in sorted(SAMPLES.glob("windows_sysmon_*.xml")):
        events = records(path, *windows_kind(path))
        lineage = windows.Lineage()
        chunked = [r for start in range(0, len(events), size)
                   for r in windows.run(events[start:start + size], restricted=RESTRICTED, lineage=lineage)]
        assert _row_keys(chunked) == _row_keys(list(windows.run(events, restricted=RESTRICTED))), (path.name, size)


def test_waiting_events_are_bounded_oldest_first() -> None:
    path = SAMPLES / "windows_sysmon_container_lineage_attack.xml"
    newest_first = records(path, *windows_kind(path))
    lineage = windows.Lineage(wait_limit=1)
    list(windows.run(newest_first[:3], restricted=RESTRICTED, lineage=lineage))
    assert lineage.waiting_count == 1  # the others were given up: memory stays bounded
    assert len(list(windows.run(newest_first[3:], restricted=RESTRICTED, lineage=lineage))) < 2


from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_parse_never_raises_on_arbitrary_text(text: str) -> None:
    for raw in (text, "<Event><System><Provider Name='Microsoft-Windows-Sysmon'/><EventID>11</EventID></System>" + text,
                "EventCode=4688\n" + text):
        event, _problem = winevent.parse(raw)
        assert event is None or event.kind in ("security_4688", "sysmon_1", "sysmon_11")
        list(windows.run([{"_raw": raw}], restricted=RESTRICTED))


@pytest.mark.parametrize("sourcetype", ["WinEventLog", ""])
def test_a_classic_event_whose_command_line_holds_xml_tags_is_still_read_as_text(sourcetype: str) -> None:
    """The attacker writes the command line: `<Event><EventID>` in it must not switch the parser to XML (which then
    finds no usable event and drops the exec)."""
    path = SAMPLES / "windows_4688_container_attack.log"
    kind, source = windows_kind(path)
    planted = []
    for record in records(path, kind, source):
        raw = str(record["_raw"]).replace("net user backdoor", "net user <Event><EventID>1</EventID></Event> x")
        planted.append(dict(record, _raw=raw, sourcetype=sourcetype))
    assert any("<EventID>" in str(r["_raw"]) for r in planted)
    rows = list(windows.run(planted, restricted=RESTRICTED))
    assert [r for r in rows if r["escape_finding"] == "restricted_dir_exec"]
    assert winevent.is_xml("<Event xmlns='x'><System><EventID>1</EventID></System></Event>")
    assert winevent.is_xml("x <Event><EventID>1</EventID>", "XmlWinEventLog:Security")
