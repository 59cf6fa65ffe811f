"""escapeinspect and escapethreshold through the real splunklib dispatcher (SCP v2), from the built app and from a
copy laid out as a search peer's replicated bundle (no splunkd, no etc/apps path)."""
import json
import shutil
from pathlib import Path
from typing import Any, Dict, List

import pytest

from tests.conftest import APP_NAME, DATA, ROOT
from tests.integration.harness.scp import run_command

KUBE = DATA / "public" / "kube_apiserver"
SAMPLES = ROOT / "tests" / "knowledge" / "samples"
ALLOWED = "allowed=/var/log,/etc/localtime,/usr/share/zoneinfo"


@pytest.fixture(scope="module")
def peer_bin(built_app: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built app copied to var/run/searchpeers/<bundle>/apps/TA_escape_to_host, as an indexer holds it."""
    root = tmp_path_factory.mktemp("splunk_home")
    app = root / "var" / "run" / "searchpeers" / "sh01-1795923600" / "apps" / APP_NAME
    shutil.copytree(built_app, app)
    assert "etc" not in app.relative_to(root).parts
    return app / "bin"


def lines(path: Path) -> List[str]:
    return [line.decode("utf-8") for line in path.read_bytes().split(b"\n") if line.strip()]


def events(raws: List[str], host: str = "cluster-a") -> List[Dict[str, Any]]:
    return [{"_raw": raw, "_cd": "0:{}".format(i), "_time": str(1795923800 - i), "host": host,
             "sourcetype": "kube:apiserver-audit", "source": "audit.log"} for i, raw in enumerate(raws)]


def test_getinfo_says_distributed_streaming(built_app: Path) -> None:
    run = run_command(built_app / "bin" / "escapeinspect.py", [ALLOWED], [[]])
    assert run.getinfo["type"] == "streaming", run.stderr
    assert run.returncode == 0, run.stderr
    threshold = run_command(built_app / "bin" / "escapethreshold.py", ["threshold=1", "period=60"], [[]])
    assert threshold.getinfo["type"] == "stateful", threshold.stderr   # distributed=False: search head only


def test_runs_from_a_search_peer_bundle_with_no_splunkd(peer_bin: Path) -> None:
    raws = [(KUBE / "falco_create_nginx_pod_privileged.json").read_text().strip(),
            (KUBE / "falco_create_nginx_pod_unprivileged.json").read_text().strip(),
            (SAMPLES / "kube_audit_calico_node_pod.json").read_text().strip()]
    env = {"SPLUNK_HOME": str(peer_bin.parents[5]), "PYTHONNOUSERSITE": "1"}
    run = run_command(peer_bin / "escapeinspect.py", [ALLOWED, "allow="], [events(raws)], env=env)
    assert run.returncode == 0, run.stderr
    assert not run.errors(), run.messages
    assert len(run.records) == 1       # the calico pod matches the shipped lookup read from the bundle copy
    row = run.records[0]
    assert row["escape_finding"] == "privileged" and row["escape_severity"] == "critical"
    assert row["escape_evidence_cd"] == "0:0" and row["host"] == "cluster-a" and row["_time"] == "1795923800"
    included = run_command(peer_bin / "escapeinspect.py", [ALLOWED, "suppressed=include"], [events(raws)], env=env)
    assert [r["escape_suppressed"] for r in included.records] == ["0", "1"]


def test_dockerd_pairs_survive_chunk_boundaries_and_are_flushed_at_the_end(built_app: Path) -> None:
    raws = list(reversed(lines(SAMPLES / "dockerd_debug_attack_creates.log")))     # newest first, as splunkd sends
    records = [{"_raw": raw, "_cd": "0:{}".format(i), "host": "lab", "source": "dockerd"} for i, raw in enumerate(raws)]
    chunks = [records[i:i + 5] for i in range(0, len(records), 5)]
    run = run_command(built_app / "bin" / "escapeinspect.py", [ALLOWED], chunks)
    assert run.returncode == 0, run.stderr
    assert len(run.chunk_replies) == len(chunks)
    names = sorted(r["escape_container"] for r in run.records)
    assert len(names) == len(raws) // 2 and all(n.startswith("esc") for n in names)
    assert all(isinstance(r["escape_evidence_cd"], list) and len(r["escape_evidence_cd"]) == 2 for r in run.records)


def test_unreadable_events_are_reported_as_a_warning_not_an_abort(built_app: Path) -> None:
    good = (KUBE / "falco_create_nginx_pod_privileged.json").read_text().strip()
    run = run_command(built_app / "bin" / "escapeinspect.py", [ALLOWED],
                      [events([good[:2000], good]), events([json.dumps({"kind": "Event", "verb": "create",
                                                                        "objectRef": {"resource": "pods"},
                                                                        "responseStatus": {"code": 201}})])])
    assert run.returncode == 0, run.stderr
    assert len(run.records) == 1
    warnings = " ".join(text for level, text in run.messages if level == "WARN")
    assert "not valid JSON" in warnings and "no request body" in warnings


@pytest.mark.parametrize("args, needle", [
    (["allowed=var/log"], "not absolute"),
    ([ALLOWED, "suppressed=maybe"], "suppressed"),
    ([ALLOWED, "allow=calico/node"], "namespace/serviceaccount=image"),
    ([ALLOWED, "finding=root"], "finding"),
    ([], "allowed"),
])
def test_bad_options_are_reported_in_the_inspector(built_app: Path, args: List[str], needle: str) -> None:
    run = run_command(built_app / "bin" / "escapeinspect.py", args, [[{"_raw": "x"}]])
    assert run.returncode != 0
    assert needle in " ".join(run.errors()), run.messages


def test_threshold_pipeline_fires_at_threshold_plus_one(built_app: Path) -> None:
    raws = list(reversed(lines(SAMPLES / "dockerd_debug_attack_creates.log")))
    records = [{"_raw": raw, "_cd": "0:{}".format(i), "host": "lab", "_time": "1795923800"} for i, raw in enumerate(raws)]
    inspected = run_command(built_app / "bin" / "escapeinspect.py",
                            [ALLOWED, "suppressed=include", "finding=privileged,host_process"], [records])
    privileged = len({r["escape_launch_id"] for r in inspected.records})
    assert privileged >= 10
    chunks = [inspected.records[:3], inspected.records[3:]]
    at = run_command(built_app / "bin" / "escapethreshold.py",
                     ["threshold={}".format(privileged), "period=3600", "by=host"], chunks)
    above = run_command(built_app / "bin" / "escapethreshold.py",
                        ["threshold={}".format(privileged - 1), "period=3600", "by=host"], chunks)
    assert at.returncode == 0 and above.returncode == 0, at.stderr + above.stderr
    assert at.records == []
    assert len(above.records) == 1 and above.records[0]["escape_count"] == str(privileged)
    assert above.records[0]["escape_cluster"] == "lab"
