"""escapeesxi through the real splunklib dispatcher over SCP v2: detections, options, and the first-seen baseline
kept across searches in a state folder (tools/offline_command.py; the KV store path is in test_command_wrappers.py
against a stand-in splunkd, and in test_kv_store_baseline_round_trip_in_splunk against a real one)."""
import json
import os
from pathlib import Path
from typing import Dict, List

import pytest

from tests.conftest import ROOT
from tests.integration.harness.scp import CommandRun, run_command
from tests.integration.winesxi_commands import app_bin, command_args, detection, my_slugs
from tests.unit.winesxi_samples import SAMPLES, records

SLUGS = my_slugs("esxi_")


@pytest.fixture()
def script(built_app: Path, tmp_path: Path) -> Path:
    return app_bin(built_app, tmp_path) / "escapeesxi.py"


def run(script: Path, args: List[str], events: List[Dict[str, str]], state: Path, size: int = 4) -> CommandRun:
    chunks = [events[i:i + size] for i in range(0, len(events), size)] or [[]]
    result = run_command(script, args, chunks, state_dir=state)
    assert result.returncode == 0, result.stderr + str(result.messages)
    return result


def test_getinfo_is_a_search_head_command(script: Path, tmp_path: Path) -> None:
    result = run_command(script, [], [[]], state_dir=tmp_path)
    assert result.getinfo["type"] == "stateful", result.stderr  # distributed=False


def test_every_esxi_detection_is_experimental_and_lists_its_assumptions() -> None:
    assert len(SLUGS) == 5
    for slug in SLUGS:
        data = detection(slug)
        assert data["status"] == "experimental" and data["analytic"] == "esxi"
        assert "Unverified assumptions" in str(data["description"])


@pytest.mark.parametrize("slug", SLUGS)
def test_detection_fires_on_its_attack_samples_and_not_on_its_silent_ones(script: Path, slug: str, tmp_path: Path) -> None:
    args = command_args(slug)
    samples = detection(slug)["samples"]
    for kind in ("fires", "silent"):
        for sample in samples[kind]:  # type: ignore[index]
            path = (ROOT / sample["path"]).resolve()
            result = run(script, args, records(path, sample["sourcetype"]), tmp_path / "state")
            if kind == "fires":
                assert result.records, "{} did not fire on {}".format(slug, sample["path"])
                for row in result.records:
                    assert row["escape_severity"] in ("low", "medium", "high") and row["escape_summary"]
                    assert row["escape_finding"] in slug or slug.endswith(str(row["escape_finding"])) or \
                        row["escape_finding"] in ("module_load", "vmx_crash", "bulk_vm_kill")
            else:
                assert result.records == [], "{} fired on {}: {}".format(slug, sample["path"], result.records[0]["escape_summary"])


def test_first_seen_baseline_two_runs_seen_then_silent(script: Path, tmp_path: Path) -> None:
    """Run one alerts on the OEM driver and records the load it judged; run two (an overlapping window) is silent."""
    state = tmp_path / "state"
    events = records(SAMPLES / "esxi_vmkernel_oem_driver.log", "vmware:esxlog:vmkernel")
    detect_args = command_args("esxi_unexpected_module_load")
    first = run(script, detect_args, events, state)
    assert [r["escape_module"] for r in first.records] == ["atlantic"]
    stored = json.loads((state / "escape_esxi_module_baseline.json").read_text())
    assert stored == [{"_key": "h1|atlantic", "host": "h1", "module": "atlantic", "first_seen": stored[0]["first_seen"]}]

    second = run(script, detect_args, events, state)
    assert second.records == []
    other = run(script, detect_args, records(SAMPLES / "esxi_vmkernel_module_67_attack.log", "vmware:esxlog:vmkernel"), state)
    assert [r["escape_module"] for r in other.records] == ["kmemtap"]
    elsewhere = run(script, detect_args, records(SAMPLES / "esxi_vmkernel_oem_driver.log", "vmware:esxlog:vmkernel",
                                                 host="esx-other"), state)
    assert [r["escape_module"] for r in elsewhere.records] == ["atlantic"]  # the baseline is per host


def test_baseline_merges_and_keeps_the_earliest_first_seen(script: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "escape_esxi_module_baseline.json").write_text(json.dumps(
        [{"_key": "h1|atlantic", "host": "h1", "module": "atlantic", "first_seen": 1000.0},
         {"_key": "h1|oldmod", "host": "h1", "module": "oldmod", "first_seen": 5.0}]))
    seed = run(script, ["mode=baseline"], records(SAMPLES / "esxi_vmkernel_module_attack.log", "vmware:esxlog:vmkernel"),
               state)
    assert seed.records == []
    documents = json.loads((state / "escape_esxi_module_baseline.json").read_text())
    stored = {d["module"]: d["first_seen"] for d in documents}
    assert stored["atlantic"] == 1000.0 and stored["oldmod"] == 5.0
    assert set(stored) == {"atlantic", "oldmod", "vmkdrvhelper", "hvdbg_x"}


def test_allowed_option_comes_from_the_tunable(script: Path, tmp_path: Path) -> None:
    events = records(SAMPLES / "esxi_vmkernel_module_attack.log", "vmware:esxlog:vmkernel")
    result = run(script, ["allowed=vmkdrvhelper,HVDBG_X", "findings=module_load"], events, tmp_path)
    assert result.records == []


def test_bulk_kill_is_counted_across_chunks(script: Path, tmp_path: Path) -> None:
    events = records(SAMPLES / "esxi_bulk_vm_kill_attack.log", "vmw-syslog")
    result = run(script, command_args("esxi_bulk_vm_kill"), events, tmp_path, size=1)  # one event per chunk
    assert len(result.records) == 1
    assert len(result.records[0]["escape_evidence_cd"]) >= 5


@pytest.mark.parametrize("args, message", [
    (["mode=learn"], "mode"),
    (["allowed=bad name"], "module name"),
    (["findings=everything"], "findings"),
    (["threshold=0"], "threshold"),
])
def test_bad_options_fail_with_a_clear_message(script: Path, tmp_path: Path, args: List[str], message: str) -> None:
    result = run_command(script, args, [[{"_raw": "x"}]], state_dir=tmp_path)
    assert result.returncode != 0
    assert any(message in text for text in result.errors()), result.messages


def test_malformed_events_are_reported(script: Path, tmp_path: Path) -> None:
    events = [{"_raw": "", "_cd": "0:0"}, {"_raw": "shell[1]: [root]: esxcli vm process kill -w 5", "_cd": "0:1"}]
    events += records(SAMPLES / "esxi_vmx_crash_attack.log", "vmw-syslog")
    result = run(script, ["findings=all"], events, tmp_path)
    assert len(result.records) == 1
    assert any(level == "WARN" and "2 malformed" in text for level, text in result.messages), result.messages


def test_no_state_dir_outside_splunk_is_not_silently_ignored(script: Path) -> None:
    result = run_command(script, [], [[{"_raw": "x"}]])
    # Started as splunkd starts it (no offline launcher), the command talks to splunkd's KV store; the offline
    # splunkd URI refuses, and the search fails loudly instead of running with an empty baseline.
    assert result.returncode != 0
    assert any("first-seen baseline" in text for text in result.errors()), result.messages + [[result.stderr]]


@pytest.mark.needs_splunk
@pytest.mark.skipif(not os.environ.get("SPLUNK_HOST"),
                    reason="needs a real Splunk with the add-on installed: the KV store path of the first-seen baseline "
                           "(collection escape_esxi_module_baseline) cannot be verified offline")
def test_kv_store_baseline_round_trip_in_splunk() -> None:
    from splunklib import (
        client,  # from the built lib/ when run against a real Splunk
        results,
    )
    service = client.connect(host=os.environ["SPLUNK_HOST"], port=int(os.environ.get("SPLUNK_PORT", "8089")),
                             username=os.environ.get("SPLUNK_USERNAME", "admin"),
                             password=os.environ.get("SPLUNK_PASSWORD", ""), app="TA_escape_to_host", owner="nobody")
    line = "2026-11-21T01:30:01.259Z cpu14:2097707)Loading module escape_kv_probe ..."

    def search(spl: str) -> List[Dict[str, str]]:
        stream = service.jobs.oneshot(spl, output_mode="json")
        return [r for r in results.JSONResultsReader(stream) if isinstance(r, dict)]

    probe = '| makeresults | eval _raw="{}", host="esx-kv-probe"'.format(line)
    assert search(probe + " | escapeesxi findings=module_load")
    search(probe + " | escapeesxi mode=baseline")
    assert search('| inputlookup escape_esxi_module_baseline | search module="escape_kv_probe"')
    assert search(probe + " | escapeesxi findings=module_load") == []
