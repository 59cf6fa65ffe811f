"""escapeesxi's engine: module loads against stock / allowed / baseline, VIB trust, bulk kills, VMX crashes."""
import csv
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

import pytest

from escape_engine import esxi
from tests.conftest import ROOT
from tests.unit.winesxi_samples import SAMPLES, records

STOCK_CSV = ROOT / "package" / "lookups" / "escape_esxi_stock_modules.csv"
STOCK = [row["module"] for row in csv.DictReader(STOCK_CSV.open(encoding="utf-8"))]


def detect(name: str, sourcetype: str = "vmware:esxlog:vmkernel", **options: object) -> List[Dict[str, object]]:
    detector = esxi.Detector(stock=options.pop("stock", STOCK), **options)  # type: ignore[arg-type]
    return list(detector.process(records(SAMPLES / name, sourcetype)))


def line(text: str, host: str = "esx01", cd: str = "0:0") -> Dict[str, str]:
    return {"_raw": text, "host": host, "_cd": cd}


@pytest.mark.parametrize("text, module", [
    ("2026-11-21T02:10:11.201Z cpu4:2099811)Loading module vmkdrvhelper ...", "vmkdrvhelper"),
    ("2026-11-21T02:10:11.209Z cpu4:2099811)Mod: 4789: Initialization of vmkdrvhelper succeeded with module ID 131.",
     "vmkdrvhelper"),
    ("2020-04-30T00:55:09.407Z cpu3:1001390391)Mod: LoadDone:4962: Initialization of ionic_en succeeded with module ID 22.",
     "ionic_en"),
    ("2026-11-21T02:12:40.550Z In(182) vmkernel: cpu7:2100120)Loading module hvdbg_x ...", "hvdbg_x"),
    ("<182>2026-11-21T02:12:40.550Z esx01.lab vmkernel: cpu7:2100120)Loading module hvdbg_x ...", "hvdbg_x"),
    ("2026-11-21T04:02:00.000Z In(14) shell[2101288]: [root]: esxcli system module load -m evil.mod", "evil.mod"),
    ("2026-11-21T04:02:00Z shell[2101288]: [root]: esxcli system module load --module=evil", "evil"),
    ("2026-11-21T04:02:00Z shell[2101288]: [root]: vmkload_mod /tmp/evil.o", "evil"),
    ("2026-11-21T04:02:00Z shell[2101288]: [root]: esxcfg-module -e evil", "evil"),
])
def test_module_names_are_taken_from_every_load_format(text: str, module: str) -> None:
    event = esxi.parse(text)
    assert event is not None and event.finding == "module_load" and event.subject == module


@pytest.mark.parametrize("text", [
    "2026-11-21T02:10:11.203Z cpu4:2099811)Elf: 2060: module vmkdrvhelper has license ThirdParty",
    "2026-11-21T02:10:11.209Z cpu4:2099811)vmkdrvhelper loaded successfully.",
    "2026-11-21T05:01:00Z shell[2102000]: [root]: esxcli system module list",
    "2026-11-21T05:01:00Z shell[2102000]: [root]: esxcli software vib list",
    "2026-11-21T05:01:00Z shell[2102000]: [root]: esxcli software acceptance get",
])
def test_other_lines_are_not_findings(text: str) -> None:
    assert esxi.parse(text) is None


@pytest.mark.parametrize("name, finding, count", [
    ("esxi_vmkernel_module_attack.log", "module_load", 2),
    ("esxi_vmkernel_module_67_attack.log", "module_load", 1),
    ("esxi_shell_vib_attack.log", "forced_vib_install", 3),
    ("esxi_shell_vib_attack.log", "acceptance_level_change", 2),
    ("esxi_bulk_vm_kill_attack.log", "bulk_vm_kill", 1),
    ("esxi_vmx_crash_attack.log", "vmx_crash", 1),
    ("esxi_vmkwarning_burst_attack.log", "vmx_crash", 1),
])
def test_every_synthetic_attack_fires(name: str, finding: str, count: int) -> None:
    rows = [r for r in detect(name, "vmw-syslog", threshold=5, window=600) if r["escape_finding"] == finding]
    assert len(rows) == count
    for row in rows:
        assert row["escape_severity"] in ("medium", "high") and row["escape_summary"] and row["escape_evidence_cd"]


@pytest.mark.parametrize("name", ["esxi_vmkernel_stock_benign.log", "esxi_shell_benign.log", "esxi_vmkwarning_benign.log"])
def test_benign_samples_stay_silent(name: str) -> None:
    assert detect(name, "vmw-syslog", threshold=5, window=600) == []


def test_module_allowlist_is_case_insensitive_and_whole_name() -> None:
    lines = [line("2026-11-21T02:10:11Z cpu4:1)Loading module VmkDrvHelper ..."),
             line("2026-11-21T02:10:12Z cpu4:1)Loading module vmkdrvhelper2 ...", cd="0:1")]
    detector = esxi.Detector(stock=STOCK, allowed="vmkdrvhelper")
    assert [r["escape_module"] for r in detector.process(lines)] == ["vmkdrvhelper2"]


def test_stock_list_decides_without_any_user_setting() -> None:
    stock_load = [line("2026-11-21T01:00:01Z cpu9:1)Loading module nvme_pcie ...")]
    assert list(esxi.Detector(stock=STOCK).process(stock_load)) == []
    assert len(list(esxi.Detector(stock=[]).process(stock_load))) == 1


def test_one_alert_per_host_and_module_per_search() -> None:
    rows = detect("esxi_vmkernel_module_attack.log")
    assert sorted(str(r["escape_module"]) for r in rows) == ["hvdbg_x", "vmkdrvhelper"]
    two_hosts = [line("2026-11-21T02:10:11Z cpu4:1)Loading module evil ...", host=h) for h in ("esx01", "esx02")]
    assert len(list(esxi.Detector(stock=STOCK).process(two_hosts))) == 2


def test_allowed_option_refuses_bad_names() -> None:
    with pytest.raises(ValueError, match="module name"):
        esxi.Detector(allowed="good,bad name")
    with pytest.raises(ValueError, match="findings"):
        esxi.Detector(findings="modules")
    with pytest.raises(ValueError, match="mode"):
        esxi.Detector(mode="learn")


def baseline_run(name: str, baseline: Iterable[Tuple[str, str]]) -> Dict[Tuple[str, str], float]:
    learner = esxi.Detector(stock=STOCK, baseline=baseline, mode="baseline")
    assert list(learner.process(records(SAMPLES / name, "vmware:esxlog:vmkernel"))) == []  # baseline mode never alerts
    return learner.learned


def test_first_seen_baseline_two_runs_seen_then_silent() -> None:
    """Run one alerts on the OEM driver and the seed learns it for that host; run two with that baseline is silent."""
    state: Dict[Tuple[str, str], float] = {}
    run_one = detect("esxi_vmkernel_oem_driver.log", baseline=list(state))
    assert [r["escape_module"] for r in run_one] == ["atlantic"]
    state.update(baseline_run("esxi_vmkernel_oem_driver.log", list(state)))
    assert list(state) == [("h1", "atlantic")] and state[("h1", "atlantic")] > 1.7e9  # first_seen from the event time
    assert detect("esxi_vmkernel_oem_driver.log", baseline=list(state)) == []
    # The baseline does not hide a different module.
    assert [r["escape_module"] for r in detect("esxi_vmkernel_module_67_attack.log", baseline=list(state))] == ["kmemtap"]


def test_the_baseline_is_per_host() -> None:
    """A module learnt on one host is still new on another."""
    learnt_elsewhere = [("another-host", "atlantic")]
    assert [r["escape_module"] for r in detect("esxi_vmkernel_oem_driver.log", baseline=learnt_elsewhere)] == [
        "atlantic"]


def test_detect_mode_learns_exactly_the_loads_it_judged() -> None:
    """The detection records each load it judged (not the stock ones), so the next, overlapping run is silent."""
    detector = esxi.Detector(stock=STOCK)
    rows = list(detector.process(records(SAMPLES / "esxi_vmkernel_module_attack.log", "vmware:esxlog:vmkernel")))
    assert sorted(str(r["escape_module"]) for r in rows) == ["hvdbg_x", "vmkdrvhelper"]
    assert sorted(m for _, m in detector.learned) == ["hvdbg_x", "vmkdrvhelper"]
    again = esxi.Detector(stock=STOCK, baseline=list(detector.learned))
    assert list(again.process(records(SAMPLES / "esxi_vmkernel_module_attack.log", "vmware:esxlog:vmkernel"))) == []


def test_baseline_learns_only_vmkernel_loads_not_shell_commands() -> None:
    learned = baseline_run("esxi_shell_vib_attack.log", [])
    assert learned == {}


def test_acceptance_severity_follows_the_trust_level() -> None:
    rows = detect("esxi_shell_vib_attack.log", "vmw-syslog", findings="acceptance_level_change")
    assert {str(r["escape_acceptance_level"]): r["escape_severity"] for r in rows} == {
        "CommunitySupported": "high", "PartnerSupported": "medium"}


def test_bulk_kill_needs_the_threshold_within_the_window() -> None:
    assert len(detect("esxi_bulk_vm_kill_attack.log", "vmw-syslog", threshold=6, findings="bulk_vm_kill")) == 1
    assert detect("esxi_bulk_vm_kill_attack.log", "vmw-syslog", threshold=7, findings="bulk_vm_kill") == []
    assert detect("esxi_bulk_vm_kill_attack.log", "vmw-syslog", threshold=5, window=2, findings="bulk_vm_kill") == []
    rows = detect("esxi_bulk_vm_kill_attack.log", "vmw-syslog", threshold=5, findings="bulk_vm_kill")
    assert len(rows[0]["escape_evidence_cd"]) >= 5  # type: ignore[arg-type]


def test_bulk_kill_counts_distinct_vms_per_host() -> None:
    same_vm = [line("2026-11-21T06:00:0{}Z shell[1]: [root]: esxcli vm process kill -t force -w 42".format(i), cd="0:%d" % i)
               for i in range(6)]
    assert list(esxi.Detector(threshold=5).process(same_vm)) == []


def test_hostd_power_off_transitions_count_as_vm_stops() -> None:
    text = ("2026-11-21T06:10:0{}.000Z In(166) Hostd[2099000]: [Originator@6876 sub=Vmsvc.vm:/vmfs/volumes/ds1/vm{}/vm{}.vmx"
            " opID=x user=root] State Transition (VM_STATE_ON -> VM_STATE_POWERING_OFF)")
    lines = [line(text.format(i, i, i), cd="0:%d" % i) for i in range(5)]
    assert len(list(esxi.Detector(threshold=5).process(lines))) == 1


def test_vmkwarning_burst_threshold() -> None:
    assert detect("esxi_vmkwarning_burst_attack.log", "vmw-syslog", threshold=11, findings="vmx_crash") == []
    assert len(detect("esxi_vmkwarning_burst_attack.log", "vmw-syslog", threshold=10, findings="vmx_crash")) == 1


def test_events_without_raw_or_time_are_counted() -> None:
    detector = esxi.Detector(threshold=1)
    rows = list(detector.process([{"_raw": ""}, {"_raw": "shell[1]: [root]: esxcli vm process kill -w 5"}]))
    assert rows == [] and detector.stats.malformed == 2


def test_stock_lookup_has_provenance_and_valid_names() -> None:
    assert len(STOCK) == len(set(STOCK)) > 50
    assert all(esxi.parse_modules(name) for name in STOCK)
    lookups_doc = (ROOT / "docs" / "lookups.md").read_text(encoding="utf-8")
    assert "escape_esxi_stock_modules.csv" in lookups_doc


def test_every_sample_of_these_analytics_has_a_synthetic_provenance_row() -> None:
    import yaml  # the detections' own sample lists name the files this analytic ships
    provenance = (SAMPLES / "PROVENANCE.md").read_text(encoding="utf-8")
    names = {"esxi_vmkernel_oem_driver.log"}
    for path in sorted((ROOT / "content" / "detections").glob("*.yml")):
        if path.name.startswith(("esxi_", "windows_")):
            samples = yaml.safe_load(path.read_text(encoding="utf-8"))["samples"]
            names |= {Path(s["path"]).name for kind in ("fires", "silent") for s in samples[kind]
                      if s["path"].startswith("tests/knowledge/samples/")}
    assert len(names) >= 15
    for name in names:
        row = next((l for l in provenance.splitlines() if l.startswith("| " + name + " |")), "")
        assert row, name
        assert "synthetic" in row, name


from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_parse_never_raises_on_arbitrary_text(text: str) -> None:
    for raw in (text, "2026-11-21T02:10:11Z cpu4:1)Loading module " + text, "shell[1]: [root]: " + text):
        esxi.parse(raw)
        list(esxi.Detector(threshold=1).process([{"_raw": raw, "host": "h"}]))
