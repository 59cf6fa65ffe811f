"""Replay acceptance for the Windows (AN0614) and ESXi (AN0615) analytics through ./build.sh replay's engine
(tools/replay.py): tunables through --set, the HostProcess exception, and the first-seen baseline across two runs.
The generic sample check (fires / silent per detection) is in test_replay.py."""
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pytest

from tests.conftest import DATA, ROOT
from tests.integration.harness.scp import run_command
from tests.integration.winesxi_commands import app_bin
from tests.unit.winesxi_samples import SAMPLES, records
from tools import content, replay
from tools.inputs import parse_input

SYSMON = "XmlWinEventLog,source=XmlWinEventLog:Microsoft-Windows-Sysmon/Operational"
WINDOWS_SLUGS = [d.slug for d in content.detections() if d.analytic == "windows"]
ESXI_SLUGS = [d.slug for d in content.detections() if d.analytic == "esxi"]


def run(inputs: Sequence[str], built_app: Path, only: Sequence[str], settings: Sequence[str] = (),
        state: Optional[Path] = None) -> List[Dict[str, object]]:  # type: ignore[assignment]
    return replay.replay([parse_input(i) for i in inputs], content.CONTENT, built_app, settings, state, only)


def test_all_windows_detections_stay_silent_on_every_real_public_windows_file(built_app: Path) -> None:
    folder = DATA / "public" / "wineventlog"
    inputs = ["WinEventLog,source=WinEventLog:Security={}".format(folder / "splunk_attack_data_T1202_windows-security_4688.log"),
              "{}={}".format(SYSMON, folder / "splunk_attack_data_T1202_windows-sysmon.log"),
              "{}={}".format(SYSMON, folder / "splunk_attack_data_T1649_certify_esc1_abuse_sysmon.log")]
    assert run(inputs, built_app, WINDOWS_SLUGS) == []


def test_restricted_dirs_tunable_reaches_the_command_through_set(built_app: Path) -> None:
    sample = "{}={}".format(SYSMON, SAMPLES / "windows_sysmon_container_write_attack.xml")
    only = ["windows_container_restricted_dir_write"]
    assert len(run([sample], built_app, only)) == 4
    assert run([sample], built_app, only, ["escape_restricted_host_dirs=D:\\Data"]) == []
    narrowed = run([sample], built_app, only, ["escape_restricted_host_dirs=C:\\Windows\\System32"])
    assert len(narrowed) == 2 and all(a["severity"] == "high" for a in narrowed)  # wbem\evil.dll, drivers\etc\hosts


def test_hostprocess_hits_are_low_severity_records_never_silence(built_app: Path) -> None:
    # escape_windows_hostprocess=alert through --set: test_replay_for_people.py; over SCP v2: test_escapewindows.py.
    sample = "{}={}".format(SYSMON, SAMPLES / "windows_sysmon_hostprocess_record.xml")
    only = ["windows_container_restricted_dir_write", "windows_container_restricted_dir_exec"]
    recorded = run([sample], built_app, only)
    assert len(recorded) == 2 and {a["severity"] for a in recorded} == {"low"}
    assert all("HostProcess exception" in str(a["summary"]) for a in recorded)


def test_alerts_carry_the_complete_raw_evidence(built_app: Path) -> None:
    alerts = run(["vmw-syslog={}".format(SAMPLES / "esxi_bulk_vm_kill_attack.log")], built_app, ["esxi_bulk_vm_kill"])
    assert len(alerts) == 1
    evidence = alerts[0]["evidence"]
    assert isinstance(evidence, list) and len(evidence) >= 5
    assert all("esxcli vm process kill" in line or "vim-cmd" in line for line in evidence)


def test_allowed_kernel_modules_tunable_reaches_the_command(built_app: Path) -> None:
    sample = "vmware:esxlog:vmkernel={}".format(SAMPLES / "esxi_vmkernel_module_attack.log")
    only = ["esxi_unexpected_module_load"]
    assert len(run([sample], built_app, only)) == 2
    assert len(run([sample], built_app, only, ["escape_allowed_kernel_modules=vmkdrvhelper"])) == 1
    assert run([sample], built_app, only, ["escape_allowed_kernel_modules=vmkdrvhelper,hvdbg_x"]) == []


def test_first_seen_baseline_two_replays_seen_then_silent(built_app: Path, tmp_path: Path) -> None:
    """Run one fires on the OEM driver and records the load it judged in the state folder the replay hands the
    commands (--state); run two is silent. A seed (escapeesxi mode=baseline) of other data silences it from the start."""
    state = tmp_path / "state"
    state.mkdir()
    sample = SAMPLES / "esxi_vmkernel_oem_driver.log"
    only = ["esxi_unexpected_module_load"]
    first = run(["vmware:esxlog:vmkernel={}".format(sample)], built_app, only, state=state)
    assert len(first) == 1 and "atlantic" in str(first[0]["summary"])
    assert run(["vmware:esxlog:vmkernel={}".format(sample)], built_app, only, state=state) == []

    seeded = tmp_path / "seeded"
    baseline = content.load_yaml(ROOT / "content" / "baselines" / "esxi_module_baseline.yml")
    assert "escapeesxi mode=baseline" in baseline["search"]
    host = str(first[0]["host"])
    learn = run_command(app_bin(built_app, tmp_path / "app") / "escapeesxi.py", ["mode=baseline"],
                        [records(sample, "vmware:esxlog:vmkernel", host=host)], state_dir=seeded)
    assert learn.returncode == 0 and learn.records == [], learn.stderr
    assert [d["module"] for d in json.loads((seeded / "escape_esxi_module_baseline.json").read_text())] == ["atlantic"]
    assert run(["vmware:esxlog:vmkernel={}".format(sample)], built_app, only, state=seeded) == []
    # A fresh state (another environment) still alerts: the silence came from the baseline, not from the data.
    assert len(run(["vmware:esxlog:vmkernel={}".format(sample)], built_app, only)) == 1


@pytest.mark.parametrize("slug", ESXI_SLUGS + WINDOWS_SLUGS)
def test_every_detection_of_these_analytics_is_shipped_experimental_and_disabled(built_app: Path, slug: str) -> None:
    from tools import conffile
    detection = next(d for d in content.detections() if d.slug == slug)
    stanza = conffile.parse(built_app / "default" / "savedsearches.conf")[detection.stanza]
    assert stanza["disabled"] == "1"
    assert "experimental" in stanza["description"].lower() or "Experimental" in stanza["description"]
