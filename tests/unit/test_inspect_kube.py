"""Kubernetes writes read as admitted and at the depth of the API (escape_engine.kube through escapeinspect).

Starts from the falco project's real audit events (tests/data/public/kube_apiserver), changed the way a mutating
webhook, a client with create rights, a dry run or the kubelet's mirror pods change them.
"""
import copy
import json
from typing import Any, Dict, List

import pytest

from escape_engine.inspect import Inspector
from tests.conftest import DATA

ALLOWED = "/var/log,/etc/localtime,/usr/share/zoneinfo"
KUBE = DATA / "public" / "kube_apiserver"


def falco(name: str) -> Dict[str, Any]:
    event: Dict[str, Any] = json.loads((KUBE / name).read_text(encoding="utf-8"))
    return event


def unprivileged() -> Dict[str, Any]:
    return falco("falco_create_nginx_pod_unprivileged.json")


def inspect(*events: Dict[str, Any]) -> List[Dict[str, Any]]:
    rows, _ = inspect_counted(*events)
    return rows


def inspect_counted(*events: Dict[str, Any]) -> Any:
    inspector = Inspector(allowed_host_paths=ALLOWED)
    records = [{"_raw": json.dumps(e), "_cd": "0:{}".format(i), "host": "c"} for i, e in enumerate(events)]
    return list(inspector.feed(records)) + list(inspector.flush()), inspector.counts


def kinds(row: Dict[str, Any]) -> List[str]:
    value = row["escape_finding"]
    return value if isinstance(value, list) else [value]


# -- the spec as admitted ---------------------------------------------------------------------------------------------
def test_a_mutating_webhook_that_makes_the_pod_privileged_is_read_from_the_response() -> None:
    event = unprivileged()
    assert inspect(event) == []
    event["responseObject"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    rows = inspect(event)
    assert kinds(rows[0]) == ["privileged"] and rows[0]["escape_severity"] == "critical"


def test_a_webhook_patch_logged_only_as_an_annotation_is_applied_to_the_request() -> None:
    event = unprivileged()
    del event["responseObject"]
    event["level"] = "Request"
    patch = [{"op": "add", "path": "/spec/containers/0/securityContext", "value": {"privileged": True}},
             {"op": "add", "path": "/spec/volumes", "value": [{"name": "h", "hostPath": {"path": "/"}}]}]
    event.setdefault("annotations", {})["patch.webhook.admission.k8s.io/round_0_index_2"] = json.dumps(
        {"configuration": "injector", "webhook": "inject.example.com", "patch": patch, "patchType": "JSONPatch"})
    rows = inspect(event)
    assert sorted(kinds(rows[0])) == ["host_path", "privileged"]


# -- host access outside the pod spec and critical paths -----------------------------------------------------------
def persistent_volume(spec: Dict[str, Any], name: str = "hostroot") -> Dict[str, Any]:
    event = unprivileged()
    event.update(requestURI="/api/v1/persistentvolumes", objectRef={"resource": "persistentvolumes", "name": name,
                                                                    "apiVersion": "v1"})
    event["requestObject"] = {"kind": "PersistentVolume", "apiVersion": "v1", "metadata": {"name": name},
                              "spec": spec}
    event["responseObject"] = copy.deepcopy(event["requestObject"])
    return event


def test_a_persistent_volume_backed_by_the_host_root_is_rated() -> None:
    rows = inspect(persistent_volume({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                      "hostPath": {"path": "/"}}))
    assert kinds(rows[0]) == ["host_path"] and rows[0]["escape_severity"] == "critical"
    assert rows[0]["escape_workload"] == "PersistentVolume/-/hostroot" and rows[0]["escape_launch"] == "0"
    local = persistent_volume({"local": {"path": "/mnt/disks/ssd1"}, "capacity": {"storage": "1Gi"}})
    assert inspect(local)[0]["escape_severity"] == "high"
    assert inspect(persistent_volume({"nfs": {"server": "nfs", "path": "/"}})) == []


def test_a_read_only_host_path_of_the_etcd_data_dir_is_critical() -> None:
    event = unprivileged()
    spec = event["responseObject"]["spec"]
    spec["volumes"] = [{"name": "etcd", "hostPath": {"path": "/var/lib/etcd"}}]
    spec["containers"][0]["volumeMounts"] = [{"name": "etcd", "mountPath": "/e", "readOnly": True}]
    rows = inspect(event)
    assert kinds(rows[0]) == ["host_path"] and rows[0]["escape_severity"] == "critical"


# -- what did not run ---------------------------------------------------------------------------------------------------
def test_a_dry_run_create_is_counted_not_alerted() -> None:
    event = falco("falco_create_nginx_pod_privileged.json")
    assert inspect(event)
    event["requestURI"] += "?dryRun=All"
    rows, counts = inspect_counted(event)
    assert rows == [] and counts == {"dry_run": 1}


def test_a_refused_create_is_not_alerted() -> None:
    event = falco("falco_create_nginx_pod_privileged.json")
    event["responseStatus"] = {"metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403}
    assert inspect(event) == []


# -- legacy and odd write forms -------------------------------------------------------------------------------------
def ephemeral(body: Any) -> Dict[str, Any]:
    event = unprivileged()
    event.update(verb="patch", requestURI="/api/v1/namespaces/default/pods/nginx/ephemeralcontainers",
                 objectRef={"resource": "pods", "namespace": "default", "name": "nginx", "apiVersion": "v1",
                            "subresource": "ephemeralcontainers"}, responseStatus={"metadata": {}, "code": 200},
                 requestObject=body)
    del event["responseObject"]
    return event


DEBUGGER = {"name": "debugger", "image": "busybox", "targetContainerName": "nginx",
            "securityContext": {"privileged": True}}


@pytest.mark.parametrize("body", [
    [{"op": "add", "path": "/ephemeralContainers/-", "value": DEBUGGER}],               # 1.16-1.21 JSON patch
    {"kind": "EphemeralContainers", "apiVersion": "v1", "metadata": {"name": "nginx"},
     "ephemeralContainers": [DEBUGGER]},                                                # 1.16-1.21 object
])
def test_the_pre_1_22_ephemeral_containers_forms_are_read(body: Any) -> None:
    rows = inspect(ephemeral(body))
    assert kinds(rows[0]) == ["privileged"] and "ephemeralContainer debugger" in rows[0]["escape_detail"]


def mirror_pod(name: str, node: str = "node-1") -> Dict[str, Any]:
    event = falco("falco_create_nginx_pod_privileged.json")
    event["objectRef"]["namespace"] = "kube-system"
    obj = event["requestObject"]
    obj["metadata"] = {"name": "{}-{}".format(name, node), "namespace": "kube-system",
                       "annotations": {"kubernetes.io/config.mirror": "abc", "kubernetes.io/config.source": "file"},
                       "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "controller": True}]}
    event.pop("responseObject", None)
    return event


def test_static_pods_mirrored_by_the_kubelet_keep_their_own_workload_label() -> None:
    rows = inspect(mirror_pod("kube-apiserver"), mirror_pod("planted"))
    assert [r["escape_workload"] for r in rows] == ["StaticPod/kube-system/kube-apiserver-node-1",
                                                    "StaticPod/kube-system/planted-node-1"]


# -- the depth of the API (these were rated before; kept here so that a change cannot lose them) ------------------
@pytest.mark.parametrize("where, value, finding", [
    ("container", {"procMount": "Unmasked"}, "proc_unmasked"),
    ("container", {"seccompProfile": {"type": "Unconfined"}}, "seccomp_unconfined"),
    ("pod", {"seccompProfile": {"type": "unconfined"}}, "seccomp_unconfined"),
    ("container", {"appArmorProfile": {"type": "Unconfined"}}, "apparmor_unconfined"),
    ("pod", {"appArmorProfile": {"type": "Unconfined"}}, "apparmor_unconfined"),
    ("container", {"capabilities": {"add": ["cap_sys_admin"]}}, "capability"),
    ("container", {"capabilities": {"add": ["CAP_SYS_ADMIN"]}}, "capability"),
    ("container", {"capabilities": {"add": ["Sys_Admin"]}}, "capability"),
    ("annotation", {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}, "seccomp_unconfined"),
    ("annotation", {"container.seccomp.security.alpha.kubernetes.io/nginx": "unconfined"}, "seccomp_unconfined"),
    ("annotation", {"container.apparmor.security.beta.kubernetes.io/nginx": "unconfined"}, "apparmor_unconfined"),
])
def test_security_settings_at_pod_and_container_level(where: str, value: Dict[str, Any], finding: str) -> None:
    event = unprivileged()
    obj = event["responseObject"]
    if where == "container":
        obj["spec"]["containers"][0]["securityContext"] = value
    elif where == "pod":
        obj["spec"]["securityContext"] = value
    else:
        obj["metadata"].setdefault("annotations", {}).update(value)
    assert finding in kinds(inspect(event)[0])


# -- duplicate keys as the API server's Go decoder reads them -----------------------------------------------------------
def test_an_empty_duplicate_security_context_does_not_hide_privileged() -> None:
    """`"securityContext": {"privileged": true}, "securityContext": {}`: Go decodes both into the same struct, so the
    container stays privileged; Python's json alone would keep only the empty second object."""
    text = (KUBE / "falco_create_nginx_pod_privileged.json").read_text(encoding="utf-8")
    marker = '"securityContext":{"privileged":true}'
    assert marker in text.replace(" ", "")
    compact = json.dumps(json.loads(text), separators=(",", ":"))
    doubled = compact.replace(marker, marker + ',"securityContext":{}')  # the request and the response object
    assert doubled != compact
    inspector = Inspector(allowed_host_paths=ALLOWED)
    rows = list(inspector.feed([{"_raw": doubled, "_cd": "0:0", "host": "c"}])) + list(inspector.flush())
    assert any("privileged" in kinds(r) for r in rows)


def test_a_duplicate_containers_list_is_decoded_into_the_first_element_by_element() -> None:
    """`"containers": [{... privileged}], "containers": [{"name": "nginx"}]`: Go re-decodes the second array into the
    elements the first left, so the container keeps its securityContext; replacing the list would drop it."""
    event = json.loads((KUBE / "falco_create_nginx_pod_privileged.json").read_text(encoding="utf-8"))
    compact = json.dumps(event, separators=(",", ":"))
    doubled = compact
    for side in ("requestObject", "responseObject"):  # the spec as sent and as admitted
        first = '"containers":' + json.dumps(event[side]["spec"]["containers"], separators=(",", ":"))
        assert first in doubled
        doubled = doubled.replace(first, first + ',"containers":[{"name":"nginx"}]')
    assert doubled.count('"containers":[{"name":"nginx"}]') == 2
    inspector = Inspector(allowed_host_paths=ALLOWED)
    rows = list(inspector.feed([{"_raw": doubled, "_cd": "0:0", "host": "c"}])) + list(inspector.flush())
    assert any("privileged" in kinds(r) for r in rows)
