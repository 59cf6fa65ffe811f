"""escapewindows through the real splunklib dispatcher over SCP v2, with each Windows detection's own arguments."""
from pathlib import Path
from typing import Dict, List

import pytest

from tests.conftest import ROOT
from tests.integration.harness.scp import run_command
from tests.integration.winesxi_commands import app_bin, command_args, detection, my_slugs
from tests.unit.winesxi_samples import RESTRICTED, SAMPLES, records, windows_kind

SLUGS = my_slugs("windows_")


@pytest.fixture()
def script(built_app: Path, tmp_path: Path) -> Path:
    return app_bin(built_app, tmp_path) / "escapewindows.py"


def sample_chunks(path: Path, sourcetype: str, source: str, size: int = 8) -> List[List[Dict[str, str]]]:
    """Newest first, several chunks for the longer files (a child handed over a chunk before its container ancestor
    waits and is reported with the ancestor's chunk)."""
    events = records(path, sourcetype, source)
    return [events[i:i + size] for i in range(0, len(events), size)] or [[]]


def test_getinfo_runs_on_the_search_head(script: Path) -> None:
    """Not distributed: its lineage must see all of a host's events (tests/integration/test_simulate_peers.py)."""
    run = run_command(script, ["restricted=" + RESTRICTED], [[]])
    assert run.getinfo["type"] == "stateful", run.stderr
    assert run.returncode == 0, run.stderr


def test_every_windows_detection_is_experimental_with_its_assumptions() -> None:
    assert len(SLUGS) == 3
    for slug in SLUGS:
        data = detection(slug)
        assert data["status"] == "experimental" and data["analytic"] == "windows"
        assert "Hyper-V-isolated containers are invisible" in str(data["description"])
        assert "Security log" in str(data["description"])


@pytest.mark.parametrize("slug", SLUGS)
def test_detection_fires_on_its_attack_samples_and_not_on_its_silent_ones(script: Path, slug: str) -> None:
    args = command_args(slug)
    samples = detection(slug)["samples"]
    for kind in ("fires", "silent"):
        for sample in samples[kind]:  # type: ignore[index]
            path = (ROOT / sample["path"]).resolve()
            chunks = sample_chunks(path, sample["sourcetype"], sample.get("source", ""))
            run = run_command(script, args, chunks)
            assert run.returncode == 0, run.stderr
            assert len(run.chunk_replies) == len(chunks)  # one reply per execute chunk
            if kind == "fires":
                assert run.records, "{} did not fire on {}".format(slug, sample["path"])
                for row in run.records:
                    assert row["escape_severity"] in ("low", "medium", "high")
                    assert row["escape_summary"] and row["escape_finding"]
                    assert row["escape_evidence_cd"] == row["_cd"]  # one event, one reference
            else:
                assert run.records == [], "{} fired on {}: {}".format(slug, sample["path"], run.records[0]["escape_summary"])


def test_multivalue_markers_and_kept_fields_survive_the_protocol(script: Path) -> None:
    path = SAMPLES / "windows_sysmon_container_exec_attack.xml"
    run = run_command(script, command_args("windows_container_restricted_dir_exec"),
                      [records(path, *windows_kind(path), host="winnode01")])
    assert len(run.records) == 2
    first = run.records[-1]
    assert first["host"] == "winnode01" and first["sourcetype"] == "XmlWinEventLog"
    assert isinstance(first["escape_container_marker"], list) and "parent CExecSvc.exe" in first["escape_container_marker"]


def test_hostprocess_option_flows_from_the_macro(script: Path) -> None:
    path = SAMPLES / "windows_sysmon_hostprocess_record.xml"
    chunks = [records(path, *windows_kind(path))]
    recorded = run_command(script, command_args("windows_container_restricted_dir_write"), chunks)
    assert [r["escape_severity"] for r in recorded.records] == ["low"]
    alerted = run_command(script, ["restricted=" + RESTRICTED, "findings=file_write", "hostprocess=alert"], chunks)
    assert [r["escape_severity"] for r in alerted.records] == ["high"]


@pytest.mark.parametrize("args, message", [
    (["findings=all"], 'A value for "restricted" is required'),
    (["restricted=Windows"], "drive letter"),
    (["restricted=C:/Windows", "findings=registry"], "findings"),
    (["restricted=C:/Windows", "hostprocess=ignore"], "hostprocess"),
])
def test_bad_options_fail_with_a_clear_message(script: Path, args: List[str], message: str) -> None:
    run = run_command(script, args, [[{"_raw": "x"}]])
    assert run.returncode != 0
    assert any(message in text for text in run.errors()), run.messages


def test_malformed_events_are_reported_and_do_not_stop_the_search(script: Path) -> None:
    path = SAMPLES / "windows_sysmon_container_write_attack.xml"
    broken = {"_raw": "<Event><System><Provider Name='Microsoft-Windows-Sysmon'/><EventID>11</EventID></System></Event>",
              "_cd": "0:99"}
    run = run_command(script, ["restricted=" + RESTRICTED], [[broken] + records(path, *windows_kind(path))])
    assert run.returncode == 0, run.stderr
    assert len(run.records) == 4
    assert any(level == "WARN" and "1 malformed" in text for level, text in run.messages), run.messages


def test_descendants_handed_over_before_their_ancestor_are_reported_with_its_chunk(script: Path) -> None:
    # One event per execute chunk, newest first (as Splunk orders them): the CExecSvc.exe ancestor comes last.
    path = SAMPLES / "windows_sysmon_container_lineage_attack.xml"
    events = records(path, *windows_kind(path))
    args = [a for a in command_args("windows_container_restricted_dir_exec") if not a.startswith("findings=")]
    run = run_command(script, args + ["findings=all"], [[event] for event in events])
    assert run.returncode == 0, run.stderr
    assert len(run.chunk_replies) == len(events)
    assert sorted(row["escape_finding"] for row in run.records) == ["restricted_dir_exec", "restricted_dir_write"]
    assert all("container process" in str(row["escape_container_marker"]) for row in run.records)


def test_events_the_wait_gives_up_are_reported_in_the_search_messages(script: Path) -> None:
    """2,500 siblings wait for their container ancestor, which comes two chunks later: the bound per ancestor (1,000)
    gives up 999 of them (the siblings of the last chunk find the ancestor in their own chunk), says so in a
    warning, and the descendant's write still alerts."""
    from tests.unit.test_windows_wait_bounds import flood
    events = [dict(e, host="w1", sourcetype="XmlWinEventLog") for e in flood(2500)]
    run = run_command(script, command_args("windows_container_restricted_dir_write"),
                      [events[i:i + 1000] for i in range(0, len(events), 1000)])
    assert run.returncode == 0, run.stderr
    assert [r["escape_target_path"] for r in run.records] == ["C:\\Windows\\System32\\evil.dll"]
    warnings = [text for level, text in run.messages if level == "WARN"]
    assert any("999 Sysmon events waiting for a container ancestor were given up (0 of them with findings)" in w for w in warnings), run.messages
