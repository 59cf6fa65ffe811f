"""app.manifest (Splunk packaging toolkit schema 2.0.0) declares every workload the add-on serves: search heads
(searches, commands, setup page), indexers (index-time settings of the owned docker sourcetypes) and forwarders
(the docker inspect scripted input, meant for universal forwarders on docker hosts)."""
import json
from pathlib import Path

from tests.conftest import ROOT
from tools import conffile

WORKLOADS = {"_search_heads", "_indexers", "_forwarders"}


def test_target_workloads_include_forwarders_because_an_input_ships() -> None:
    manifest = json.loads((ROOT / "package" / "app.manifest").read_text())
    workloads = set(manifest["targetWorkloads"])
    assert workloads <= WORKLOADS, workloads - WORKLOADS
    inputs = conffile.parse(ROOT / "package" / "default" / "inputs.conf")
    if any(name.startswith(("script://", "monitor://")) for name in inputs):
        assert "_forwarders" in workloads
    props = conffile.parse(ROOT / "package" / "default" / "props.conf")
    if any("TIME_FORMAT" in keys for keys in props.values()):
        assert "_indexers" in workloads
    assert "_search_heads" in workloads


def test_the_build_ships_the_same_workloads(built_app: Path) -> None:
    built = json.loads((built_app / "app.manifest").read_text())
    source = json.loads((ROOT / "package" / "app.manifest").read_text())
    assert built["targetWorkloads"] == source["targetWorkloads"]
