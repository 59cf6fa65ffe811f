"""The containers analytic on the public Kubernetes audit samples (Falco captures, Panther's labelled cases).

Panther's labels encode Panther's policy. Where our containers analytic (AN0612, docs/detections.md) disagrees, OVERRIDES records
the case, what we expect instead, and why; every other case must match Panther's ExpectedResult.
"""
import json
from typing import Any, Dict, List, Tuple

import pytest
import yaml

from escape_engine import kube
from escape_engine.inspect import run
from tests.conftest import DATA, ROOT

KUBE = DATA / "public" / "kube_apiserver"
SAMPLES = ROOT / "tests" / "knowledge" / "samples"
ALLOWED = "/var/log,/etc/localtime,/usr/share/zoneinfo"

# (file, Panther test name) -> (our expectation, why it differs from Panther's label)
OVERRIDES: Dict[Tuple[str, str], Tuple[bool, str]] = {
    ("panther_k8s_privileged_pod_created.yml", "Run-As-Root Pod Created"): (
        False, ("root pods: runAsNonRoot=false without privileged, host namespaces, host paths or capabilities does "
               "not break isolation from the node; AN0612 looks for isolation-breaking settings, not for uid 0")),
    ("panther_k8s_privileged_pod_created.yml", "Pod with runAsUser=0 (root)"): (
        False, "root pods: uid 0 inside a namespaced, unprivileged container is not an escape to the host"),
    ("panther_k8s_privileged_pod_created.yml", "Privileged Pod in System Namespace (Excluded)"): (
        True, ("kube-system exemption: a namespace exemption hides every attacker who can create pods there; "
              "known agents are suppressed only by image + namespace + service account (the allowlist)")),
    ("panther_k8s_pod_host_ipc.yml", "System Namespace with HostIPC (Excluded)"): (
        True, "kube-system exemption: see above; the pod's image matches no allowlisted agent"),
    ("panther_k8s_pod_hostpath_volume.yml", "System Namespace Pod (Excluded)"): (
        True, "kube-system exemption: see above; a hostPath outside escape_allowed_host_paths is a finding"),
    ("panther_k8s_exec_into_pod.yml", "EKS Exec Into Pod"): (
        False, ("exec-into-pod: kubectl exec is T1609 (container administration command), a chain step, not a "
               "workload spec that breaks isolation; AN0612's spec inspection never fires on it")),
    ("panther_k8s_exec_into_pod.yml", "AKS Exec Into Pod (realistic)"): (False, "exec-into-pod: see above"),
    ("panther_k8s_exec_into_pod.yml", "GCP GKE Exec Into Pod"): (False, "exec-into-pod: see above"),
}

FALCO: Dict[str, bool] = {
    "falco_create_nginx_pod_privileged.json": True,
    "falco_create_nginx_pod_sensitive_mount.json": True,
    "falco_create_nginx_pod_unprivileged.json": False,
    "falco_create_nginx_pod_nohostnetwork.json": False,
    "falco_create_pod_kube_system_namespace.json": False,
    "falco_create_deployment.json": False,
    "falco_create_configmap.json": False,
    "falco_create_service.json": False,
}


def panther_cases() -> List[Tuple[str, str, bool, Dict[str, Any]]]:
    cases = []
    for path in sorted(KUBE.glob("panther_*.yml")):
        rule = yaml.safe_load(path.read_text(encoding="utf-8"))
        for test in rule["Tests"]:
            cases.append((path.name, test["Name"], bool(test["ExpectedResult"]), test["Log"]))
    return cases


CASES = panther_cases()


def expected(file: str, name: str, label: bool) -> bool:
    return OVERRIDES[(file, name)][0] if (file, name) in OVERRIDES else label


def fires(raw: str) -> bool:
    return bool(list(run([{"_raw": raw, "_cd": "0:0", "host": "h"}], allowed_host_paths=ALLOWED)))


@pytest.mark.parametrize("file, name, label, log", CASES, ids=["{}::{}".format(c[0][8:-4], c[1]) for c in CASES])
def test_panther_case(file: str, name: str, label: bool, log: Dict[str, Any]) -> None:
    assert fires(json.dumps(log)) is expected(file, name, label)


def test_every_override_names_a_real_case_that_really_differs() -> None:
    labels = {(c[0], c[1]): c[2] for c in CASES}
    for key, (ours, why) in OVERRIDES.items():
        assert key in labels, key
        assert labels[key] is not ours, key
        assert len(why) > 20


@pytest.mark.parametrize("file, attack", sorted(FALCO.items()))
def test_falco_capture(file: str, attack: bool) -> None:
    raw = (KUBE / file).read_bytes().split(b"\n")[0].decode("utf-8")
    assert fires(raw) is attack


@pytest.mark.parametrize("file, wrapper", [
    ("panther_k8s_privileged_pod_created.yml", "audit"), ("panther_k8s_privileged_pod_created.yml", "aks"),
    ("panther_k8s_privileged_pod_created.yml", "gke")])
def test_cloud_wrappers_carry_verb_resource_namespace_and_decision(file: str, wrapper: str) -> None:
    logs = [c[3] for c in CASES if c[0] == file and c[2]]
    events = [kube.parse(json.dumps(log)) for log in logs]
    event = next(e for e in events if e.wrapper == wrapper)
    assert (event.verb, event.resource, event.namespace) == ("create", "pods", "default")
    assert kube.succeeded(event) and kube.is_spec_write(event)


def test_gke_refusal_and_exec_are_not_spec_writes() -> None:
    refused = {"protoPayload": {"methodName": "io.k8s.core.v1.pods.create", "status": {"code": 7},
                                "authorizationInfo": [{"granted": False}],
                                "resourceName": "core/v1/namespaces/default/pods/p",
                                "request": {"spec": {"containers": [{"name": "c", "securityContext": {"privileged": True}}]}}}}
    assert not fires(json.dumps(refused))
    event = kube.parse(json.dumps({"protoPayload": {"methodName": "io.k8s.core.v1.pods.exec.create"}}))
    assert (event.resource, event.subresource) == ("pods", "exec") and not kube.is_spec_write(event)
    apps = kube.parse(json.dumps({"protoPayload": {"methodName": "io.k8s.apps.v1.daemonsets.create"}}))
    assert (apps.resource, apps.verb) == ("daemonsets", "create")


def test_aks_log_as_object_and_as_string() -> None:
    inner = {"kind": "Event", "verb": "create", "objectRef": {"resource": "pods", "namespace": "d", "name": "p"},
             "responseStatus": {"code": 201},
             "requestObject": {"spec": {"containers": [{"name": "c", "securityContext": {"privileged": True}}]}}}
    assert fires(json.dumps({"category": "kube-audit", "properties": {"log": inner}}))
    assert fires(json.dumps({"category": "kube-audit-admin", "properties": {"log": json.dumps(inner)}}))


def test_committed_panther_samples_are_the_cases_split_by_our_expectation() -> None:
    want_fire = [json.dumps(c[3], separators=(",", ":")) for c in CASES if expected(c[0], c[1], c[2])]
    want_silent = [json.dumps(c[3], separators=(",", ":")) for c in CASES if not expected(c[0], c[1], c[2])]
    assert (SAMPLES / "panther_k8s_cases_fire.jsonl").read_text().split("\n")[:-1] == want_fire
    assert (SAMPLES / "panther_k8s_cases_silent.jsonl").read_text().split("\n")[:-1] == want_silent
