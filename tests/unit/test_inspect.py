"""escape_engine.inspect / kube / specrules: the containers analytic's decisions, table by table."""
import copy
import csv
import json
from typing import Any, Dict, List, Optional

import pytest

from escape_engine import specrules
from escape_engine.allowlist import AllowRule, allow_rules, parse_allow_option
from escape_engine.inspect import Inspector, run
from tests.conftest import ROOT

DEFAULT_ALLOWED = "/var/log,/etc/localtime,/usr/share/zoneinfo"
SAMPLES = ROOT / "tests" / "knowledge" / "samples"
LOOKUP = ROOT / "package" / "lookups" / "escape_privileged_workloads.csv"


def shipped_rules() -> List[AllowRule]:
    with LOOKUP.open(newline="", encoding="utf-8") as handle:
        return allow_rules(csv.DictReader(handle), LOOKUP.name)


def audit(spec: Optional[Dict[str, Any]] = None, *, resource: str = "pods", verb: str = "create", code: int = 201,
          namespace: str = "default", name: str = "web", decision: str = "allow", stage: str = "ResponseComplete",
          obj: Optional[Dict[str, Any]] = None, response: Optional[Dict[str, Any]] = None,
          subresource: str = "", level: str = "Request", annotations: Optional[Dict[str, str]] = None) -> str:
    """An audit.k8s.io/v1 event as kube-apiserver writes it (keys as documented; values made up for the case)."""
    event: Dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": "a-" + name, "stage": stage,
        "requestURI": "/api/v1/namespaces/{}/{}".format(namespace, resource), "verb": verb,
        "user": {"username": "alice@example.com"}, "sourceIPs": ["10.1.2.3"],
        "objectRef": {"resource": resource, "namespace": namespace, "name": name, "apiVersion": "v1"},
        "responseStatus": {"code": code},
        "annotations": {"authorization.k8s.io/decision": decision},
    }
    if subresource:
        event["objectRef"]["subresource"] = subresource
    if annotations:
        event["annotations"].update(annotations)
    if obj is None and spec is not None:
        obj = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "namespace": namespace}, "spec": spec}
    if obj is not None:
        event["requestObject"] = obj
    if response is not None:
        event["responseObject"] = response
    return json.dumps(event)


def inspect(*raws: str, allowed: str = DEFAULT_ALLOWED, **options: Any) -> List[Dict[str, Any]]:
    records = [{"_raw": raw, "_cd": "0:{}".format(i), "host": "cluster-a", "_time": "1795923800"}
               for i, raw in enumerate(raws)]
    return list(run(records, allowed_host_paths=allowed, **options))


def kinds(row: Dict[str, Any]) -> List[str]:
    value = row["escape_finding"]
    return value if isinstance(value, list) else [value]


def pod(*containers: Dict[str, Any], **spec: Any) -> Dict[str, Any]:
    result: Dict[str, Any] = {"containers": list(containers) or [{"name": "app", "image": "nginx:1.27"}]}
    result.update(spec)
    return result


PRIV = {"name": "box", "image": "busybox", "securityContext": {"privileged": True}}
PLAIN = {"name": "app", "image": "nginx:1.27"}


# -- one test per finding type ---------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, finding, severity", [
    (pod(PRIV), "privileged", "critical"),
    (pod({"name": "c", "image": "x", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}), "capability",
     "critical"),
    (pod({"name": "c", "image": "x", "securityContext": {"capabilities": {"add": ["cap_sys_module"]}}}), "capability",
     "critical"),
    (pod({"name": "c", "image": "x", "securityContext": {"capabilities": {"add": ["ALL"]}}}), "capability", "critical"),
    (pod({"name": "c", "image": "x", "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}), "capability", "high"),
    (pod({"name": "c", "image": "x", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}), "capability",
     "medium"),
    (pod({"name": "c", "image": "x", "securityContext": {"allowPrivilegeEscalation": True,
                                                          "capabilities": {"add": ["BPF"]}}}),
     "privilege_escalation", "high"),
    (pod(PLAIN, hostPID=True), "host_pid", "high"),
    (pod(PLAIN, hostIPC=True), "host_ipc", "high"),
    (pod(PLAIN, hostNetwork=True), "host_network", "medium"),
    (pod(PLAIN, securityContext={"seccompProfile": {"type": "Unconfined"}}), "seccomp_unconfined", "low"),
    (pod({"name": "c", "image": "x", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}),
     "apparmor_unconfined", "low"),
    (pod({"name": "c", "image": "x", "securityContext": {"procMount": "Unmasked"}}), "proc_unmasked", "medium"),
    (pod(PLAIN, securityContext={"windowsOptions": {"hostProcess": True}}, hostNetwork=True), "host_process",
     "critical"),
    (pod(PLAIN, volumes=[{"name": "v", "hostPath": {"path": "/srv/data"}}]), "host_path", "high"),
    (pod(PLAIN, volumes=[{"name": "v", "hostPath": {"path": "/proc"}}]), "host_path", "critical"),
])
def test_each_finding_type(spec: Dict[str, Any], finding: str, severity: str) -> None:
    rows = inspect(audit(spec))
    assert len(rows) == 1
    assert finding in kinds(rows[0])
    assert rows[0]["escape_severity"] == severity
    assert rows[0]["escape_workload"] == "Pod/default/web"
    assert rows[0]["escape_evidence_cd"] == "0:0"
    assert rows[0]["escape_suppressed"] == "0"
    assert "alice@example.com" in rows[0]["escape_summary"]


@pytest.mark.parametrize("spec", [
    pod(PLAIN),
    pod({"name": "c", "image": "x", "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN"],
                                                                          "drop": ["ALL"]}}}),
    pod({"name": "c", "image": "x", "securityContext": {"privileged": False, "runAsUser": 0}}),
    pod(PLAIN, hostPID=False, hostIPC=False, hostNetwork=False),
    pod(PLAIN, securityContext={"seccompProfile": {"type": "RuntimeDefault"}}),
    pod(PLAIN, volumes=[{"name": "logs", "hostPath": {"path": "/var/log/pods"}}, {"name": "e", "emptyDir": {}}]),
    pod({"name": "c", "image": "x", "securityContext": {"allowPrivilegeEscalation": True}}),
])
def test_clean_specs_are_silent(spec: Dict[str, Any]) -> None:
    assert inspect(audit(spec)) == []


# -- every container list ----------------------------------------------------------------------------------------
def test_second_container_is_inspected() -> None:
    rows = inspect(audit(pod(PLAIN, PRIV)))
    assert kinds(rows[0]) == ["privileged"]
    assert "container box" in rows[0]["escape_detail"]


def test_init_container_is_inspected() -> None:
    rows = inspect(audit(pod(PLAIN, initContainers=[PRIV])))
    assert kinds(rows[0]) == ["privileged"] and "initContainer box" in rows[0]["escape_detail"]


def test_ephemeral_container_patch_is_inspected() -> None:
    patched = {"kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
               "spec": pod(PLAIN, ephemeralContainers=[{"name": "debugger", "image": "busybox",
                                                        "securityContext": {"privileged": True}}])}
    rows = inspect(audit(verb="patch", code=200, subresource="ephemeralcontainers", obj=patched, response=patched))
    assert kinds(rows[0]) == ["privileged"] and "ephemeralContainer debugger" in rows[0]["escape_detail"]


def test_every_volume_is_inspected_not_only_the_first() -> None:
    spec = pod(PLAIN, volumes=[{"name": "a", "hostPath": {"path": "/var/log"}},
                               {"name": "b", "configMap": {"name": "x"}},
                               {"name": "c", "hostPath": {"path": "/run/containerd/containerd.sock"}}])
    rows = inspect(audit(spec))
    assert rows[0]["escape_severity"] == "critical"
    assert "containerd.sock" in rows[0]["escape_detail"]


@pytest.mark.parametrize("resource, obj", [
    ("deployments", {"kind": "Deployment", "spec": {"template": {"spec": pod(PRIV)}}}),
    ("daemonsets", {"kind": "DaemonSet", "spec": {"template": {"spec": pod(PRIV)}}}),
    ("statefulsets", {"kind": "StatefulSet", "spec": {"template": {"spec": pod(PRIV)}}}),
    ("replicasets", {"kind": "ReplicaSet", "spec": {"template": {"spec": pod(PRIV)}}}),
    ("jobs", {"kind": "Job", "spec": {"template": {"spec": pod(PRIV)}}}),
    ("cronjobs", {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": pod(PRIV)}}}}}),
])
def test_workload_templates(resource: str, obj: Dict[str, Any]) -> None:
    rows = inspect(audit(resource=resource, obj=obj, name="tpl"))
    assert kinds(rows[0]) == ["privileged"]
    assert rows[0]["escape_workload"] == "{}/default/tpl".format(obj["kind"])
    assert rows[0]["escape_launch"] == "0"   # a template is not a launch; its pods are


def test_controller_made_pod_is_attributed_to_its_owner() -> None:
    obj = {"kind": "Pod", "metadata": {"generateName": "agent-", "labels": {"pod-template-hash": "5d9f8b7c6"},
                                       "ownerReferences": [{"kind": "ReplicaSet", "name": "agent-5d9f8b7c6",
                                                            "controller": True}]},
           "spec": pod(PRIV)}
    rows = inspect(audit(obj=obj, name=""))
    assert rows[0]["escape_workload"] == "Deployment/default/agent"
    obj["metadata"]["ownerReferences"] = [{"kind": "DaemonSet", "name": "node-agent", "controller": True}]
    assert inspect(audit(obj=obj, name=""))[0]["escape_workload"] == "DaemonSet/default/node-agent"


# -- only allowed, successful writes at the final stage -----------------------------------------------------------
@pytest.mark.parametrize("change", [
    {"verb": "get", "code": 200},
    {"verb": "list", "code": 200},
    {"verb": "delete", "code": 200},
    {"code": 403},
    {"code": 409},
    {"decision": "forbid"},
    {"stage": "RequestReceived"},
    {"subresource": "status", "verb": "update", "code": 200},
    {"resource": "configmaps"},
])
def test_only_allowed_successful_final_writes_count(change: Dict[str, Any]) -> None:
    assert inspect(audit(pod(PRIV), **change)) == []


def test_a_get_whose_response_object_carries_a_host_path_is_never_a_finding() -> None:
    response = {"kind": "Pod", "metadata": {"name": "web"},
                "spec": pod(PRIV, volumes=[{"name": "root", "hostPath": {"path": "/"}}])}
    raw = audit(verb="get", code=200, response=response, level="RequestResponse")
    assert "requestObject" not in json.loads(raw)
    assert inspect(raw) == [] and inspect(raw, mode="health") == []


def test_patch_reads_the_merged_response_object() -> None:
    patch_doc = {"metadata": {"labels": {"x": "y"}}}
    merged = {"kind": "Pod", "metadata": {"name": "web", "namespace": "default"}, "spec": pod(PRIV)}
    rows = inspect(audit(verb="patch", code=200, obj=patch_doc, response=merged, level="RequestResponse"))
    assert kinds(rows[0]) == ["privileged"]


# -- paths -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path, expected", [
    ("/var/log", None),
    ("/var/log/", None),
    ("/var/log/pods", None),
    ("/var//log///containers/", None),
    ("/var/logs", "high"),                       # whole components: /var/log does not allow /var/logs
    ("/var/log/../../etc", "critical"),          # `..` resolved before matching
    ("/var/log/../lib/kubelet", "critical"),
    ("/var/./log/./x", None),
    ("/", "critical"),
    ("//", "critical"),
    ("/proc/1/root", "critical"),
    ("/sys/fs/cgroup", "critical"),
    ("/etc/", "critical"),
    ("/root/.ssh", "critical"),
    ("/dev", "critical"),
    ("/var/run/docker.sock", "critical"),
    ("/run/docker.sock", "critical"),            # /var/run is a link to /run
    ("/var/run/crio/crio.sock", "critical"),
    ("/run/containerd/containerd.sock", "critical"),
    ("/var/lib/kubelet/pki", "critical"),
    ("/var/lib/docker/overlay2", "critical"),
    ("/var", "critical"),                        # contains the kubelet state and the docker socket
    ("/run", "critical"),
    ("/etc/localtime", None),
    ("/etc/localtime2", "critical"),
    ("/srv/data", "high"),
    ("/usr/share/zoneinfo/Europe", None),
])
def test_host_path_rating(path: str, expected: Optional[str]) -> None:
    allowed = specrules.parse_allowed_paths(DEFAULT_ALLOWED)
    assert specrules.host_path_severity(path, allowed) == expected


def test_allowed_paths_match_after_normalisation_and_var_run_alias() -> None:
    allowed = specrules.parse_allowed_paths("/var/run/app/, /data//shared")
    assert specrules.host_path_severity("/run/app/socket", allowed) is None
    assert specrules.host_path_severity("/data/shared/x", allowed) is None
    assert specrules.host_path_severity("/data/sharedx", allowed) == "high"


def test_relative_allowed_path_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="not absolute"):
        Inspector(allowed_host_paths="var/log")


def test_read_only_mount_of_an_ordinary_path_is_silent_but_a_critical_one_is_not() -> None:
    mounts = [{"name": "app", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/d", "readOnly": True}]}]
    assert inspect(audit(pod(*mounts, volumes=[{"name": "v", "hostPath": {"path": "/srv/data"}}]))) == []
    rows = inspect(audit(pod(*mounts, volumes=[{"name": "v", "hostPath": {"path": "/etc"}}])))
    assert rows[0]["escape_severity"] == "critical"
    writable = mounts + [{"name": "b", "image": "y", "volumeMounts": [{"name": "v", "mountPath": "/d"}]}]
    assert inspect(audit(pod(*writable, volumes=[{"name": "v", "hostPath": {"path": "/srv/data"}}])))


# -- images and the allowlist ----------------------------------------------------------------------------------
@pytest.mark.parametrize("image, normalised", [
    ("nginx", "docker.io/library/nginx"),
    ("nginx:1.27", "docker.io/library/nginx"),
    ("docker.io/library/nginx@sha256:abc", "docker.io/library/nginx"),
    ("calico/node:v3.27.0", "docker.io/calico/node"),
    ("docker.io/calico/node", "docker.io/calico/node"),
    ("evil.io/calico/node", "evil.io/calico/node"),
    ("localhost:5000/calico/node:v1", "localhost:5000/calico/node"),
    ("Quay.io/Cilium/Cilium:v1.15", "quay.io/cilium/cilium"),
])
def test_image_normalisation(image: str, normalised: str) -> None:
    assert specrules.normalise_image(image) == normalised


def daemonset_pod(spec: Dict[str, Any], namespace: str, name: str = "web") -> str:
    """A pod of DaemonSet `name` as the daemon-set controller writes it (the shipped entries are DaemonSet agents)."""
    obj = {"kind": "Pod", "apiVersion": "v1", "spec": spec,
           "metadata": {"name": name + "-x1", "namespace": namespace,
                        "ownerReferences": [{"kind": "DaemonSet", "name": name, "controller": True}]}}
    event = json.loads(audit(obj=obj, namespace=namespace, name=name))
    event["user"]["username"] = "system:serviceaccount:kube-system:daemon-set-controller"
    return json.dumps(event)


CALICO_POD = pod({"name": "calico-node", "image": "calico/node:v3.27.0", "securityContext": {"privileged": True}},
                 serviceAccountName="calico-node", hostNetwork=True)


@pytest.mark.parametrize("image, namespace, service_account, suppressed", [
    ("calico/node:v3.27.0", "kube-system", "calico-node", True),
    ("docker.io/calico/node:v3.27.0", "kube-system", "calico-node", True),
    ("evil.io/calico/node:v3.27.0", "kube-system", "calico-node", False),       # another registry
    ("calico/node:v3.27.0", "default", "calico-node", False),                   # wrong namespace
    ("calico/node:v3.27.0", "kube-system", "default", False),                   # wrong service account
    ("calico/nodes:v3.27.0", "kube-system", "calico-node", False),
    # identity right, but privileged is beyond what aws-node needs (its init container is the privileged one)
    ("602401143452.dkr.ecr.eu-west-1.amazonaws.com/amazon-k8s-cni:v1.18", "kube-system", "aws-node", False),
    ("602401143452.dkr.ecr.evil.io/x.amazonaws.com/amazon-k8s-cni:v1", "kube-system", "aws-node", False),
])
def test_allowlist_needs_image_namespace_and_service_account(image: str, namespace: str, service_account: str,
                                                             suppressed: bool) -> None:
    spec = copy.deepcopy(CALICO_POD)
    spec["containers"][0]["image"] = image
    spec["serviceAccountName"] = service_account
    raw = daemonset_pod(spec, namespace)
    excluded = inspect(raw, allowlist=shipped_rules())
    included = inspect(raw, allowlist=shipped_rules(), suppressed="include")
    assert len(included) == 1
    if suppressed:
        assert excluded == []
        assert included[0]["escape_suppressed"] == "1"
        assert included[0]["escape_severity"] == "informational"
        assert included[0]["escape_summary"].startswith("Allowlisted")
    else:
        assert len(excluded) == 1 and excluded[0]["escape_suppressed"] == "0"
        assert excluded[0]["escape_severity"] == "critical"


def test_an_unlisted_sidecar_keeps_an_allowlisted_pod_alerting() -> None:
    spec = copy.deepcopy(CALICO_POD)
    spec["containers"].append({"name": "extra", "image": "evil.io/tools:1"})
    rows = inspect(audit(spec, namespace="kube-system"), allowlist=shipped_rules())
    assert rows and rows[0]["escape_suppressed"] == "0"


def test_suppressed_only_keeps_just_the_allowlisted_records() -> None:
    calico = daemonset_pod(CALICO_POD, namespace="kube-system", name="calico")
    other = audit(pod(PRIV), name="other")
    rows = inspect(calico, other, allowlist=shipped_rules(), suppressed="only")
    assert [r["escape_workload"] for r in rows] == ["DaemonSet/kube-system/calico"]


def test_users_allow_option() -> None:
    rules = parse_allow_option(" team-a/builder=registry.example.com/ci/builder[privileged] , docker=gcr.io/x/y ")
    assert [(r.platform, r.namespace, r.service_account) for r in rules] == [
        ("kubernetes", "team-a", "builder"), ("docker", "", "")]
    spec = pod({"name": "b", "image": "registry.example.com/ci/builder:7", "securityContext": {"privileged": True}},
               serviceAccountName="builder")
    assert inspect(audit(spec, namespace="team-a"), allowlist=rules) == []
    assert inspect(audit(spec, namespace="team-b"), allowlist=rules)
    for bad in ("calico/node", "kube-system=calico/node", "a/b/c=img"):
        with pytest.raises(ValueError):
            parse_allow_option(bad)


def test_shipped_lookup_parses_and_every_kubernetes_row_names_namespace_and_account() -> None:
    rules = shipped_rules()
    assert len(rules) >= 20
    assert all(r.namespace and r.service_account for r in rules if r.platform == "kubernetes")


# -- data health ---------------------------------------------------------------------------------------------------
def test_metadata_level_and_truncated_writes_are_counted_for_data_health() -> None:
    metadata_level = audit(level="Metadata")
    truncated = audit(level="RequestResponse", annotations={"audit.k8s.io/truncated": "true"})
    cut = audit(pod(PRIV))[:300]
    inspector = Inspector(allowed_host_paths=DEFAULT_ALLOWED)
    records = [{"_raw": r, "_cd": "0:{}".format(i)} for i, r in enumerate((metadata_level, truncated, cut))]
    assert list(inspector.feed(records)) == []
    assert inspector.counts == {"spec_missing": 1, "spec_truncated": 1, "event_unparseable": 1}
    assert len(inspector.report()) == 3
    rows = inspect(metadata_level, truncated, cut, mode="health")
    assert [r["escape_finding"] for r in rows] == ["spec_missing", "spec_truncated", "event_unparseable"]
    assert "level Metadata" in rows[0]["escape_summary"]
    # A refused or read-only request without a body is no data problem.
    assert inspect(audit(level="Metadata", code=403), audit(level="Metadata", verb="get", code=200),
                   mode="health") == []


def test_the_20kb_multi_container_event_is_read_whole() -> None:
    raw = (SAMPLES / "kube_audit_pod_20kb_multicontainer.json").read_text(encoding="utf-8").strip()
    assert len(raw) >= 20000 and raw.index('"privileged"') > 5000   # past Splunk's automatic JSON extraction
    rows = inspect(raw)
    assert len(rows) == 1
    assert sorted(kinds(rows[0])) == ["host_path", "privileged"]
    assert "container sidecar-late" in " ".join(rows[0]["escape_detail"])
    assert rows[0]["escape_severity"] == "critical"


def test_malformed_events_are_counted_never_raised() -> None:
    inspector = Inspector(allowed_host_paths=DEFAULT_ALLOWED)
    junk = ["{", "[1,2", "null", '{"kind":"Event"}', "plain text", '{"protoPayload":{"methodName":"x"}}',
            '{"properties":{"log":"{not json"}}', 'time="x" msg="form data: {bad"']
    assert list(inspector.feed({"_raw": j} for j in junk)) == [] and list(inspector.flush()) == []
    assert inspector.counts == {"event_unparseable": 4, "not_inspectable": 4}   # every one counted, none lost


@pytest.mark.parametrize("option, value", [("suppressed", "maybe"), ("mode", "fast"), ("finding", "root")])
def test_bad_options_raise_value_errors_naming_the_option(option: str, value: str) -> None:
    with pytest.raises(ValueError, match=option):
        Inspector(allowed_host_paths=DEFAULT_ALLOWED, **{option: value})


def test_finding_option_keeps_only_the_named_types() -> None:
    raw = audit(pod(PRIV, hostNetwork=True))
    assert sorted(kinds(inspect(raw)[0])) == ["host_network", "privileged"]
    rows = inspect(raw, finding="host_network")
    assert kinds(rows[0]) == ["host_network"] and rows[0]["escape_severity"] == "medium"
    assert inspect(audit(pod(PLAIN, hostNetwork=True)), finding="privileged") == []


def test_json_patch_without_response_object_is_read_from_its_operations() -> None:
    operations = [{"op": "add", "path": "/spec/template/spec/containers/0/securityContext",
                   "value": {"privileged": True}},
                  {"op": "replace", "path": "/spec/template/spec/hostPID", "value": True},
                  {"op": "add", "path": "/spec/template/spec/volumes/-",
                   "value": {"name": "r", "hostPath": {"path": "/"}}},
                  {"op": "remove", "path": "/spec/template/spec/hostIPC"}]
    rows = inspect(audit(resource="daemonsets", verb="patch", code=200, obj=operations, name="ds"))  # type: ignore
    assert sorted(kinds(rows[0])) == ["host_path", "host_pid", "privileged"]
    assert rows[0]["escape_workload"] == "DaemonSet/default/ds"
    harmless = [{"op": "replace", "path": "/metadata/labels/app", "value": "x"}]
    assert inspect(audit(resource="daemonsets", verb="patch", code=200, obj=harmless)) == []  # type: ignore


@pytest.mark.parametrize("body", [{"metadata": {"labels": {"a": "b"}}}, {"spec": {"replicas": 3}},
                                  [{"op": "replace", "path": "/spec/replicas", "value": 3}]])
def test_patch_that_sets_no_pod_spec_is_neither_finding_nor_data_problem(body: Any) -> None:
    raw = audit(resource="deployments", verb="patch", code=200, obj=body)
    inspector = Inspector(allowed_host_paths=DEFAULT_ALLOWED, mode="health")
    assert list(inspector.feed([{"_raw": raw}])) == [] and inspector.counts == {}
