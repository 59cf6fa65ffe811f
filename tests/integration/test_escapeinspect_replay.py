"""Replay acceptance of the containers analytic (tools/replay.py, as ./build.sh replay runs it): alerts on the attack
events of tests/data/public/kube_apiserver and on the create bodies of lab-run1's attack containers (esc*), none on
the benign ones. Expectations that differ from a source label are explained in test_inspect_public.OVERRIDES and
test_inspect_docker (README quirk 5, privileged look-alikes)."""
import csv
import re
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

from tests.conftest import DATA, ROOT
from tests.unit.test_inspect_docker import PRIVILEGED_LOOKALIKES, SPEC_CLEAN_ATTACKS
from tests.unit.test_inspect_public import FALCO
from tools import replay
from tools.inputs import InputSpec

KUBE = DATA / "public" / "kube_apiserver"
LAB = DATA / "lab-run1"
SAMPLES = ROOT / "tests" / "knowledge" / "samples"


def alerts(built_app: Path, inputs: Sequence[InputSpec], slug: str,
           settings: Sequence[str] = ()) -> List[Dict[str, object]]:
    return replay.replay(inputs, app_dir=built_app, only=[slug], settings=settings, require_time=False)


def created_name(alert: Dict[str, object]) -> str:
    evidence = alert["evidence"]
    assert isinstance(evidence, list)
    names = [m.group(1) for raw in evidence for m in [re.search(r"containers/create\?name=([^\"&\s]+)", str(raw))] if m]
    assert len(names) == 1, evidence
    return names[0]


def lab_truth() -> Dict[str, str]:
    with (LAB / "ground-truth-dockerd.tsv").open(newline="", encoding="utf-8") as handle:
        return {r["container"]: r["label"] for r in csv.DictReader(handle, delimiter="\t")
                if r["api_call"].startswith("POST /v1.41/containers/create") and r["container"]}


@pytest.fixture(scope="module")
def kube_inputs() -> List[InputSpec]:
    specs = [InputSpec("kube:apiserver-audit", KUBE / name) for name in sorted(FALCO)]
    specs += [InputSpec("kube:apiserver-audit", SAMPLES / name)
              for name in ("panther_k8s_cases_fire.jsonl", "panther_k8s_cases_silent.jsonl")]
    return specs


def test_kube_alerts_exactly_on_the_attack_events(built_app: Path, kube_inputs: List[InputSpec]) -> None:
    found = alerts(built_app, kube_inputs, "kube_workload_host_access")
    evidence = [str(e) for a in found for e in a["evidence"]]  # type: ignore[union-attr]
    attacks = [(KUBE / n).read_bytes().split(b"\n")[0].decode() for n, attack in FALCO.items() if attack]
    fire = [line for line in (SAMPLES / "panther_k8s_cases_fire.jsonl").read_text().split("\n") if line]
    assert sorted(evidence) == sorted(attacks + fire)
    assert all(a["analytic"] == "container" and a["summary"] for a in found)
    assert {a["severity"] for a in found} <= {"medium", "high", "critical"}


def test_docker_alerts_exactly_on_the_attack_creates_of_lab_run1(built_app: Path) -> None:
    found = alerts(built_app, [InputSpec("docker:daemon", LAB / "dockerd-debug.log.gz", host="lab")],
                   "docker_container_host_access")
    names = [created_name(a) for a in found]
    assert len(names) == len(set(names))
    truth = lab_truth()
    attacks = {n for n, label in truth.items() if label == "attack"} - SPEC_CLEAN_ATTACKS
    assert set(names) == attacks | PRIVILEGED_LOOKALIKES
    assert all(a["host"] == "lab" for a in found)


def test_docker_inspect_samples(built_app: Path) -> None:
    fired = alerts(built_app, [InputSpec("docker:inspect", SAMPLES / "docker_inspect_attack.jsonl")],
                   "docker_container_host_access")
    silent = alerts(built_app, [InputSpec("docker:inspect", SAMPLES / "docker_inspect_benign.jsonl")],
                    "docker_container_host_access")
    assert len(fired) == 20 and silent == []


def test_threshold_over_lab_run1_fires_at_threshold_plus_one(built_app: Path) -> None:
    lab = [InputSpec("docker:daemon", LAB / "dockerd-debug.log.gz", host="lab")]
    default = alerts(built_app, lab, "container_privileged_launch_threshold")
    assert len(default) == 1
    count = int(re.match(r"(\d+) privileged", str(default[0]["summary"])).group(1))  # type: ignore[union-attr]
    assert count > 5
    at = alerts(built_app, lab, "container_privileged_launch_threshold",
                settings=["escape_privileged_threshold={}".format(count)])
    above = alerts(built_app, lab, "container_privileged_launch_threshold",
                   settings=["escape_privileged_threshold={}".format(count - 1)])
    assert at == [] and len(above) == 1


def test_health_is_silent_on_complete_data_and_fires_on_missing_specs(built_app: Path,
                                                                       kube_inputs: List[InputSpec]) -> None:
    complete = kube_inputs + [InputSpec("docker:daemon", LAB / "dockerd-debug.log.gz")]
    assert alerts(built_app, complete, "container_spec_unavailable") == []
    missing = alerts(built_app, [InputSpec("kube:apiserver-audit",
                                                  SAMPLES / "kube_audit_pod_writes_without_spec.json")],
                     "container_spec_unavailable")
    assert len(missing) == 2 and all(a["severity"] == "low" for a in missing)


def test_allowlisted_agent_leaves_only_the_informational_record(built_app: Path) -> None:
    calico = [InputSpec("kube:apiserver-audit", SAMPLES / "kube_audit_calico_node_pod.json")]
    assert alerts(built_app, calico, "kube_workload_host_access") == []
    record = alerts(built_app, calico, "container_allowlisted_workload")
    assert len(record) == 1 and record[0]["severity"] == "informational"
