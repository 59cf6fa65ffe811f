"""Allowlist entries bind the workload's identity to what it is known to need (escape_engine.allowlist).

Starts from the shipped calico-node sample, the lab's dockerd create bodies and the kube-prometheus node-exporter
DaemonSet, changed the way an attacker with create or patch rights (or `docker tag`) would change them.
"""
import copy
import csv
import gzip
import json
from typing import Any, Dict, List

import pytest

from escape_engine import docker
from escape_engine.allowlist import AllowRule, allow_rules, parse_allow_option, parse_need
from escape_engine.inspect import run
from tests.conftest import DATA, ROOT
from tests.unit.test_inspect_vendor_manifests import ECS_README, docker_run

ALLOWED = "/var/log,/etc/localtime,/usr/share/zoneinfo"
LOOKUP = ROOT / "package" / "lookups" / "escape_privileged_workloads.csv"
CALICO = ROOT / "tests" / "knowledge" / "samples" / "kube_audit_calico_node_pod.json"


def shipped() -> List[AllowRule]:
    with LOOKUP.open(newline="", encoding="utf-8") as handle:
        return allow_rules(csv.DictReader(handle), LOOKUP.name)


def inspect(raw: str, rules: Any = None, suppressed: str = "include") -> List[Dict[str, Any]]:
    return list(run([{"_raw": raw, "_cd": "0:1", "host": "h"}], allowed_host_paths=ALLOWED,
                    allowlist=shipped() if rules is None else rules, suppressed=suppressed))


def calico_event() -> Dict[str, Any]:
    event: Dict[str, Any] = json.loads(CALICO.read_text(encoding="utf-8"))
    return event


def test_the_stock_calico_pod_stays_informational() -> None:
    rows = inspect(CALICO.read_text(encoding="utf-8"))
    assert [(r["escape_suppressed"], r["escape_severity"]) for r in rows] == [("1", "informational")]


def test_an_allowlisted_agent_with_a_writable_host_root_is_a_full_alert() -> None:
    event = calico_event()
    spec = event["requestObject"]["spec"]
    spec["volumes"].append({"name": "hostroot", "hostPath": {"path": "/"}})
    spec["containers"][0]["volumeMounts"].append({"name": "hostroot", "mountPath": "/host"})
    rows = inspect(json.dumps(event))
    assert rows[0]["escape_suppressed"] == "0" and rows[0]["escape_severity"] == "critical"
    assert "host path / (volume hostroot)" in rows[0]["escape_allowlist_exceeded"]
    assert rows[0]["escape_summary"].startswith("Beyond its allowlist entry (escape_privileged_workloads.csv")
    assert inspect(json.dumps(event), suppressed="exclude")        # kube_workload_host_access sees it
    assert inspect(json.dumps(event), suppressed="only") == []     # and the allowlisted-agent record does not


def test_a_bare_pod_reusing_an_agents_identity_but_asking_for_more_alerts() -> None:
    event = calico_event()
    spec = event["requestObject"]["spec"]
    spec["hostPID"] = True
    spec["containers"][0]["securityContext"]["capabilities"] = {"add": ["SYS_PTRACE"]}
    rows = inspect(json.dumps(event))
    beyond = rows[0]["escape_allowlist_exceeded"]
    # full severity: every finding counts again, the privileged container included
    assert rows[0]["escape_suppressed"] == "0" and rows[0]["escape_severity"] == "critical"
    assert "shares the host's PID namespace" in beyond and any("SYS_PTRACE" in b for b in beyond)


@pytest.mark.parametrize("change", ["bare pod", "forged owner"])
def test_a_pod_reusing_an_agents_identity_and_needs_but_not_written_by_its_controller_alerts(change: str) -> None:
    event = calico_event()     # asks for exactly what calico needs (privileged and all): only the writer differs
    event["user"] = {"username": "dev@example.com", "groups": ["system:authenticated"]}
    if change == "bare pod":
        del event["requestObject"]["metadata"]["ownerReferences"]
    rows = inspect(json.dumps(event))
    assert rows[0]["escape_suppressed"] == "0" and rows[0]["escape_severity"] == "critical"


def test_a_sidecar_may_not_use_its_pods_need_for_a_container_setting() -> None:
    event = calico_event()
    spec = event["requestObject"]["spec"]
    # calico/cni's entry needs privileged only for calico's own init containers; a privileged container of that
    # image in the pod is covered, a capability it adds is not
    spec["initContainers"][0]["securityContext"]["capabilities"] = {"add": ["SYS_MODULE"]}
    assert inspect(json.dumps(event))[0]["escape_suppressed"] == "0"


NODE_EXPORTER = {  # kube-prometheus manifests/nodeExporter-daemonset.yaml (v0.14), the fields that matter
    "kind": "DaemonSet", "apiVersion": "apps/v1",
    "metadata": {"name": "node-exporter", "namespace": "monitoring"},
    "spec": {"template": {"metadata": {"labels": {"app.kubernetes.io/name": "node-exporter"}}, "spec": {
        "automountServiceAccountToken": True, "hostNetwork": True, "hostPID": True,
        "serviceAccountName": "node-exporter",
        "securityContext": {"runAsGroup": 65534, "runAsNonRoot": True, "runAsUser": 65534},
        "containers": [
            {"name": "node-exporter", "image": "quay.io/prometheus/node-exporter:v1.8.2",
             "args": ["--web.listen-address=127.0.0.1:9100", "--path.sysfs=/host/sys", "--path.rootfs=/host/root"],
             "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                 "capabilities": {"add": ["SYS_TIME"], "drop": ["ALL"]}},
             "volumeMounts": [{"mountPath": "/host/sys", "mountPropagation": "HostToContainer", "name": "sys",
                               "readOnly": True},
                              {"mountPath": "/host/root", "mountPropagation": "HostToContainer", "name": "root",
                               "readOnly": True}]},
            {"name": "kube-rbac-proxy", "image": "quay.io/brancz/kube-rbac-proxy:v0.18.1",
             "ports": [{"containerPort": 9100, "hostPort": 9100, "name": "https"}],
             "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                 "readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsUser": 65532,
                                 "seccompProfile": {"type": "RuntimeDefault"}}}],
        "volumes": [{"hostPath": {"path": "/sys"}, "name": "sys"}, {"hostPath": {"path": "/"}, "name": "root"}]}}}}


def daemonset_event(obj: Dict[str, Any]) -> str:
    return json.dumps({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request", "auditID": "ne-1",
                       "stage": "ResponseComplete", "verb": "create", "user": {"username": "admin"},
                       "objectRef": {"resource": "daemonsets", "namespace": "monitoring", "name": "node-exporter",
                                     "apiGroup": "apps", "apiVersion": "v1"},
                       "responseStatus": {"code": 201},
                       "annotations": {"authorization.k8s.io/decision": "allow"}, "requestObject": obj})


def test_the_stock_node_exporter_manifest_with_its_sidecar_is_allowlisted() -> None:
    rows = inspect(daemonset_event(NODE_EXPORTER))
    assert [(r["escape_suppressed"], r["escape_severity"]) for r in rows] == [("1", "informational")]
    writable = copy.deepcopy(NODE_EXPORTER)
    writable["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][1]["readOnly"] = False
    rows = inspect(daemonset_event(writable))      # / writable is beyond host_path:/:ro
    assert rows[0]["escape_suppressed"] == "0" and rows[0]["escape_severity"] == "critical"


# -- docker: local tags and digests ---------------------------------------------------------------------------------
def lab_create(name: str, image: str) -> List[Dict[str, Any]]:
    lines = gzip.decompress((DATA / "lab-run1" / "dockerd-debug.log.gz").read_bytes()).decode("utf-8").split("\n")
    at = next(i for i, line in enumerate(lines) if line.endswith("create?name={}\"".format(name)))
    form = next(line for line in lines[at + 1:at + 4] if "form data:" in line)
    old = next(part for part in form.split(",") if part.startswith('\\"Image\\":'))
    form = form.replace(old, '\\"Image\\":\\"{}\\"'.format(image))
    return [{"_raw": line, "_cd": "0:{}".format(i), "host": "lab", "source": "d"}
            for i, line in enumerate((form, lines[at]))]


@pytest.mark.parametrize("image, suppressed", [
    ("amazon/amazon-ecs-agent", False),              # docker tag alpine amazon/amazon-ecs-agent: any local image
    ("amazon/amazon-ecs-agent:latest", False),
    ("docker.io/amazon/amazon-ecs-agent:latest", True),
    ("public.ecr.aws/ecs/amazon-ecs-agent:latest", True),
    ("evil.io/amazon/amazon-ecs-agent:latest", False),
])
def test_a_local_tag_never_matches_a_registry_qualified_docker_entry(image: str, suppressed: bool) -> None:
    # the agent's documented `docker run` (its runtime socket: critical unless allowlisted)
    rows = list(run(docker_run(image, ECS_README), allowed_host_paths=ALLOWED, allowlist=shipped(),
                    suppressed="include"))
    assert rows[0]["escape_suppressed"] == ("1" if suppressed else "0")
    assert rows[0]["escape_severity"] == ("informational" if suppressed else "critical")


def test_an_entry_with_a_digest_matches_only_that_digest() -> None:
    digest = "sha256:" + "a" * 64
    # the lab container runs `sh -c ...`: its entry names that command
    rules = parse_allow_option("docker=registry.example.com/agent@{}[privileged;command:sh]".format(digest))
    pinned = lab_create("ben14-priv-agent", "registry.example.com/agent@" + digest)
    other = lab_create("ben14-priv-agent", "registry.example.com/agent@sha256:" + "b" * 64)
    tagged = lab_create("ben14-priv-agent", "registry.example.com/agent:1")
    verdicts = [next(run(r, allowed_host_paths=ALLOWED, allowlist=rules, suppressed="include"))[
        "escape_suppressed"] for r in (pinned, other, tagged)]
    assert verdicts == ["1", "0", "0"]
    workload, _ = next(iter(docker.inspect_workloads(json.dumps({"Name": "/a", "Image": digest, "Config": {
        "Image": "registry.example.com/agent:1"}, "HostConfig": {"Privileged": True}}))))
    assert rules[0].matches(workload, workload.containers[0])      # docker inspect's image ID


def test_needs_parse_and_refuse_unknown_words() -> None:
    assert parse_need("host_path:/var/run/calico/:ro") == ("host_path", "/run/calico", True)
    assert parse_need("capability:cap_net_admin") == ("capability", "NET_ADMIN", False)
    for bad in ("root", "host_path:relative", "capability:", "duplicate_key"):
        with pytest.raises(ValueError):
            parse_need(bad)
    with pytest.raises(ValueError):
        parse_allow_option("docker=x[privileged")


def test_every_shipped_row_names_its_needs() -> None:
    with LOOKUP.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # sidecars and init containers with no host access of their own: identity only (their manifests in
    # tests/data/public/manifests/, checked by test_inspect_vendor_manifests.py)
    helpers = {"quay.io/brancz/kube-rbac-proxy", "docker.io/falcosecurity/falcoctl",
               "docker.io/longhornio/longhorn-share-manager"}
    assert all(r["needs"] for r in rows if r["image"] not in helpers)
    assert all("/" in r["image"].split("/", 1)[1] or "." in r["image"].split("/")[0] for r in rows)
