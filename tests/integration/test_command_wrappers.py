"""The five command wrappers over SCP v2 (the real splunklib dispatcher, the built scripts): one shape for all.

- A bad option value that splunklib's own validators let through is refused by the engine's constructor in prepare(),
  during getinfo, with the engine's message verbatim as the only error, and the command exits.
- In Splunk the stateful commands keep their state in this app's KV store, in the namespace nobody/TA_escape_to_host
  whatever app the search runs from: checked against the loopback stand-in splunkd (harness/splunkd.py), which
  answers only under /servicesNS/nobody/TA_escape_to_host/ and refuses everything else.
"""
import json
from pathlib import Path
from typing import Callable, Dict, List

import pytest

from escape_engine.correlate import Correlator
from escape_engine.esxi import Detector
from escape_engine.inspect import Inspector
from escape_engine.threshold import ThresholdCounter
from escape_engine.windows import Scanner
from tests.conftest import DATA
from tests.integration.harness.scp import run_command
from tests.integration.harness.splunkd import PREFIX, SESSION_KEY, FakeSplunkd
from tests.integration.winesxi_commands import app_bin
from tests.unit.linux_lab import lab_records
from tests.unit.winesxi_samples import SAMPLES, records


def _engine_message(build: Callable[[], object]) -> str:
    with pytest.raises(ValueError) as raised:
        build()
    return str(raised.value)


BAD_OPTIONS = [  # command, an option value splunklib accepts and the engine refuses, the engine refusing it
    ("escapecorrelate", ["allowlist=execve"], lambda: Correlator(allowlist=["execve"])),
    ("escapeesxi", ["findings=everything"], lambda: Detector(findings="everything")),
    ("escapeinspect", ["allowed=var/log"], lambda: Inspector(allowed_host_paths="var/log")),
    ("escapethreshold", ["threshold=-1", "period=3600"], lambda: ThresholdCounter(threshold=-1, period=3600)),
    ("escapewindows", ["restricted=Windows"], lambda: Scanner(restricted="Windows")),
]


@pytest.mark.parametrize("command, args, engine", BAD_OPTIONS, ids=[c for c, _, _ in BAD_OPTIONS])
def test_a_bad_option_is_refused_by_the_engines_constructor_during_getinfo(
        built_app: Path, tmp_path: Path, command: str, args: List[str], engine: Callable[[], object]) -> None:
    script = app_bin(built_app, tmp_path / "app") / (command + ".py")
    run = run_command(script, args, [[{"_raw": "x", "_cd": "0:0"}]], state_dir=tmp_path / "state")
    assert run.errors() == [_engine_message(engine)], (run.messages, run.stderr[-2000:])
    assert run.getinfo["inspector"]["messages"] == [["ERROR", _engine_message(engine)]]
    assert run.chunk_replies == [] and run.returncode != 0
    assert "Traceback" not in run.stderr, run.stderr[-2000:]


def _info(fake: FakeSplunkd) -> Dict[str, str]:
    """searchinfo of a search run from the Search app by admin, against the stand-in splunkd."""
    return {"app": "search", "owner": "admin", "splunkd_uri": fake.uri, "session_key": SESSION_KEY}


def test_the_linux_lineage_lives_in_this_apps_kv_store_whatever_app_searches(built_app: Path, tmp_path: Path) -> None:
    script = app_bin(built_app, tmp_path / "app") / "escapecorrelate.py"
    fields = ("_raw", "_time", "host", "_cd", "source", "sourcetype")
    events = [{k: r[k] for k in fields} for r in lab_records()[:300]]
    cut = {"_key": "cut{0}", "state": '{"procs": [1'}
    cut_here = {"_key": "labvm", "state": '{"procs": [1'}
    with FakeSplunkd({}, {}, collections={"escape_linux_lineage": [cut, cut_here]}) as fake:
        run = run_command(script, ["report=all"], [events[:150], events[150:]], info=_info(fake))
    assert run.returncode == 0, (run.messages, run.stderr[-2000:])
    data = PREFIX + "storage/collections/data/escape_linux_lineage"
    registry = PREFIX + "storage/collections/data/escape_container_registry"
    assert fake.requests == [("GET", registry), ("GET", data), ("POST", data + "/batch_save")]
    query = next(params for method, path, params in fake.log if method == "GET" and path.endswith("/escape_linux_lineage"))["query"]
    assert json.loads(query) == {"$or": [{"_key": "labvm"}]}  # only the hosts of the search's events are read
    # no registry collection: a warning, and the chains are named by id
    assert any(level == "WARN" and "cannot read the container registry" in text for level, text in run.messages)
    stored = {d["_key"]: d for d in fake.collections["escape_linux_lineage"]}
    assert stored["cut{0}"] == cut  # another host's document is neither read nor overwritten
    assert json.loads(str(stored["labvm"]["state"]))["procs"]  # an unreadable one starts afresh, reported
    assert any(level == "WARN" and "not JSON" in text and "labvm" in text for level, text in run.messages)


def test_the_container_registry_lives_in_this_apps_kv_store_and_ages_out(built_app: Path, tmp_path: Path) -> None:
    script = app_bin(built_app, tmp_path / "app") / "escaperegistry.py"
    lines = (DATA / "lab-podman" / "podman-events.json").read_text(encoding="utf-8").split("\n")
    events = [{"_raw": line, "_time": "%.6f" % (1796566487.0 + i), "host": "podmanlab", "_cd": "0:%d" % i,
               "sourcetype": "podman:events", "source": "podman"} for i, line in enumerate(lines) if line][::-1]
    old = {"_key": "gone/" + "a" * 64, "host": "gone", "container_id": "a" * 64, "name": "old", "seen": 5.0}
    with FakeSplunkd({}, {}, collections={"escape_container_registry": [old]}) as fake:
        run = run_command(script, [], [events[:60], events[60:]], info=_info(fake))
    assert run.returncode == 0, (run.messages, run.stderr[-2000:])
    data = PREFIX + "storage/collections/data/escape_container_registry"
    assert fake.requests == [("GET", data), ("POST", data + "/batch_save"), ("DELETE", data)]
    stored = {d["name"]: d for d in fake.collections["escape_container_registry"]}
    assert "old" not in stored and len(stored) == 20 == len(run.records)  # the 20 containers of the capture
    assert stored["lab-e01"]["container_id"] == "b60e9c0de36d0c011e5e68f96a8191ceeb642bb391c7596578f5881b1bac2143"
    assert stored["lab-e01"]["runtime"] == "podman" and stored["lab-e01"]["image"] == "localhost/lab/busybox:latest"


def test_the_esxi_baseline_lives_in_this_apps_kv_store_whatever_app_searches(built_app: Path, tmp_path: Path) -> None:
    script = app_bin(built_app, tmp_path / "app") / "escapeesxi.py"
    events = records(SAMPLES / "esxi_vmkernel_oem_driver.log", "vmware:esxlog:vmkernel")
    known = {"_key": "h1|oldmod", "host": "h1", "module": "oldmod", "first_seen": 5.0}
    with FakeSplunkd({}, {}, collections={"escape_esxi_module_baseline": [known]}) as fake:
        run = run_command(script, ["mode=baseline"], [events[:2], events[2:]], info=_info(fake))
        detect = run_command(script, ["findings=module_load"], [events], info=_info(fake))
    assert run.returncode == 0 and detect.returncode == 0, (run.messages, run.stderr[-2000:], detect.messages)
    data = PREFIX + "storage/collections/data/escape_esxi_module_baseline"
    # baseline: read at start, saved once on the last chunk (merged with what it read); detect: read, nothing new to save
    assert fake.requests == [("GET", data), ("POST", data + "/batch_save"), ("GET", data)]
    assert sorted(d["_key"] for d in fake.collections["escape_esxi_module_baseline"]) == ["h1|atlantic", "h1|oldmod"]
    assert detect.records == []  # the module learned into the KV store is known to the next search


def test_without_a_reachable_splunkd_the_stateful_commands_fail_loudly(built_app: Path, tmp_path: Path) -> None:
    script = app_bin(built_app, tmp_path / "app") / "escapecorrelate.py"
    fields = ("_raw", "_time", "host", "_cd", "source", "sourcetype")
    events = [{k: r[k] for k in fields} for r in lab_records()[:20]]  # it reads only the lineage of their host
    run = run_command(script, [], [events])  # as splunkd starts it; the default searchinfo's splunkd_uri refuses
    assert run.returncode != 0
    assert any("cannot read the persisted lineage (KV store collection escape_linux_lineage)" in text
               for text in run.errors()), run.messages


def test_a_failed_baseline_save_is_a_warning_and_the_alerts_stand(built_app: Path, tmp_path: Path) -> None:
    """The detection records what it judged after its rows are out: a KV store that refuses the save (a limit, an
    outage) costs a warning and a repeat alert next run, never this run's alert."""
    script = app_bin(built_app, tmp_path / "app") / "escapeesxi.py"
    events = records(SAMPLES / "esxi_vmkernel_oem_driver.log", "vmware:esxlog:vmkernel")
    with FakeSplunkd({}, {}, collections={"escape_esxi_module_baseline": []}) as fake:
        fake.fail[("POST", "storage/collections/data/escape_esxi_module_baseline/batch_save")] = (
            400, "max_size_per_batch_save_mb exceeded")
        detect = run_command(script, ["findings=module_load"], [events], info=_info(fake))
    assert detect.returncode == 0, (detect.messages, detect.stderr[-2000:])
    assert [r["escape_module"] for r in detect.records] == ["atlantic"]
    assert any(level == "WARN" and "could not record 1 module load" in text for level, text in detect.messages)


def test_a_refused_lineage_save_is_a_warning_and_the_rows_stand(built_app: Path, tmp_path: Path) -> None:
    """Issue 16: the correlation emits its rows before it saves the lineage, and a KV store that refuses the save
    (splunkd's HTTP 400, here for a batch over max_size_per_batch_save_mb) costs a warning, never the rows. Before,
    the save came first and its error ended the search without a row."""
    script = app_bin(built_app, tmp_path / "app") / "escapecorrelate.py"
    fields = ("_raw", "_time", "host", "_cd", "source", "sourcetype")
    events = [{k: r[k] for k in fields} for r in lab_records()]
    events.sort(key=lambda e: float(e["_time"]), reverse=True)
    with FakeSplunkd({}, {}, collections={"escape_linux_lineage": []}) as fake:
        fake.fail[("POST", "storage/collections/data/escape_linux_lineage/batch_save")] = (
            400, "max_size_per_batch_save_mb exceeded")
        run = run_command(script, ["report=all"], [events[i:i + 20000] for i in range(0, len(events), 20000)],
                          info=_info(fake))
    assert run.returncode == 0 and not run.errors(), (run.messages, run.stderr[-2000:])
    assert len(run.records) == 16  # every chain and attempt of the capture (test_escapefindings counts them too)
    assert any(level == "WARN" and "the lineage was not saved" in text and "max_size_per_batch_save_mb" in text
               for level, text in run.messages), run.messages
