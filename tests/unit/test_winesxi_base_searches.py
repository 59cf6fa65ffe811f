"""Until the replay lands: every event the Windows / ESXi commands alert on also passes its detection's base search.

Each base search selects with plain terms only (borrowed sourcetypes: vendor fields may be missing). This checks, per
detection, that the term groups below appear in the YAML search and that every alerting sample event holds at least one
term of every group, matched the way Splunk matches terms: case-insensitive, on breaker boundaries (phrases as text).
"""
import re
from typing import Dict, List

import pytest
import yaml

from escape_engine import esxi, windows
from tests.conftest import ROOT
from tests.unit.winesxi_samples import RESTRICTED, records, windows_kind

GROUPS: Dict[str, List[List[str]]] = {
    "windows_container_restricted_dir_write": [["TargetFilename", "ParentImage"]],
    "windows_container_restricted_dir_exec": [["4688", "ParentImage"]],
    "windows_container_symlink_abuse": [["4688", "ParentImage"]],
    "esxi_unexpected_module_load": [["Loading module", "Initialization of", "vmkload_mod", "esxcfg-module", "module load"]],
    "esxi_forced_vib_install": [["software", "validation disabled", "bypassing signing", "valid signature",
                                 "signature verification"]],
    "esxi_acceptance_level_change": [["software"], ["acceptance"]],
    "esxi_bulk_vm_kill": [["kill", "pkill", "vmsvc", "VM_STATE_ON"]],
    "esxi_vmx_crash": [["vmkwarning", "unrecoverable", "PANIC", "Dumping cartel", "crashed", "core dumped"]],
}


def matches(term: str, raw: str) -> bool:
    if " " in term:
        return term.lower() in raw.lower()
    return re.search(r"(?<![A-Za-z0-9_]){}(?![A-Za-z0-9_])".format(re.escape(term)), raw, re.IGNORECASE) is not None


def alerting_events(slug: str) -> List[str]:
    data = yaml.safe_load((ROOT / "content" / "detections" / (slug + ".yml")).read_text(encoding="utf-8"))
    raws: List[str] = []
    for sample in data["samples"]["fires"]:
        path = (ROOT / sample["path"]).resolve()
        if slug.startswith("windows_"):
            events = records(path, *windows_kind(path))
            finding = {"windows_container_restricted_dir_write": "file_write",
                       "windows_container_restricted_dir_exec": "process_exec",
                       "windows_container_symlink_abuse": "symlink"}[slug]
            rows = list(windows.run(events, restricted=RESTRICTED, findings=finding))
        else:
            rows = list(esxi.Detector(threshold=5, window=600).process(records(path, sample["sourcetype"])))
            wanted = slug[len("esxi_"):].replace("unexpected_module_load", "module_load")
            rows = [r for r in rows if r["escape_finding"] == wanted]
        assert rows, "{} does not fire on {}".format(slug, sample["path"])
        by_cd = {e["_cd"]: e["_raw"] for e in events} if slug.startswith("windows_") else \
            {e["_cd"]: e["_raw"] for e in records(path, sample["sourcetype"])}
        for row in rows:
            raws.extend(by_cd[cd] for cd in row["escape_evidence_cd"])  # type: ignore[union-attr]
    return raws


@pytest.mark.parametrize("slug", sorted(GROUPS))
def test_alerting_events_pass_the_base_search_terms(slug: str) -> None:
    search = yaml.safe_load((ROOT / "content" / "detections" / (slug + ".yml")).read_text(encoding="utf-8"))["search"]
    base = search.split("\n| ")[0]
    for group in GROUPS[slug]:
        for term in group:
            assert (('"' + term + '"') if " " in term else term) in base, (slug, term)
    raws = alerting_events(slug)
    assert raws
    for raw in raws:
        for group in GROUPS[slug]:
            assert any(matches(term, raw) for term in group), (slug, group, raw[:200])


def test_the_term_matcher_respects_breakers() -> None:
    assert matches("fsutil", "C:\\Windows\\System32\\fsutil.exe") and matches("4688", "<EventID>4688</EventID>")
    assert not matches("kill", "pkill") and not matches("vmsvc", "vmsvcx")
