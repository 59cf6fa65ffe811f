"""Every shipped allowlist row checked against the vendor's own, current manifest (escape_privileged_workloads.csv).

Each manifest in tests/data/public/manifests/ (provenance and version in tests/data/PROVENANCE.md) is turned into
what the add-on reads: the kube-apiserver audit `create` of the DaemonSet as an administrator sends it, and the
`create` of one of its pods as the daemon-set controller writes it. The stock manifest must give only the
informational allowlisted row; the same identity asking for more, a bare pod, another registry or an extra container
must give the full-severity alert the workload has without any allowlist.
"""
import copy
import csv
import json
from typing import Any, Dict, Iterator, List, NamedTuple

import pytest
import yaml

from escape_engine.allowlist import AllowRule, allow_rules
from escape_engine.inspect import run
from tests.conftest import DATA, ROOT
from tests.unit.test_inspect_dockerbody import form_line, lab_pair

ALLOWED = "/var/log,/etc/localtime,/usr/share/zoneinfo"     # the shipped escape_allowed_host_paths
LOOKUP = ROOT / "package" / "lookups" / "escape_privileged_workloads.csv"
MANIFESTS = DATA / "public" / "manifests"
CONTROLLER = "system:serviceaccount:kube-system:daemon-set-controller"


class Manifest(NamedTuple):
    file: str
    daemonset: str
    namespace: str      # the namespace the vendor's install puts it in when the file names none


# The namespace column: the file's own, else the install's (kustomize `namespace:` or the documented `helm -n`).
CASES = [
    Manifest("kube-prometheus_nodeExporter-daemonset.yaml", "node-exporter", "monitoring"),
    Manifest("aws-ebs-csi-driver_node.yaml", "ebs-csi-node", "kube-system"),          # base/kustomization.yaml
    Manifest("calico_v3.32.1_calico.yaml", "calico-node", "kube-system"),
    Manifest("flannel_kube-flannel.yml", "kube-flannel-ds", "kube-flannel"),
    Manifest("amazon-vpc-cni-k8s_aws-k8s-cni.yaml", "aws-node", "kube-system"),
    Manifest("kured_kured-ds.yaml", "kured", "kube-system"),
    Manifest("cadvisor_daemonset.yaml", "cadvisor", "cadvisor"),
    Manifest("longhorn_v1.12.1_longhorn.yaml", "longhorn-manager", "longhorn-system"),
    Manifest("elastic-agent-managed-kubernetes.yaml", "elastic-agent", "kube-system"),
    Manifest("falco_daemonset.yaml", "falco", "falco"),      # rendered for `default`; the chart's docs install in falco
]
IDS = [case.file for case in CASES]


def shipped() -> List[AllowRule]:
    with LOOKUP.open(newline="", encoding="utf-8") as handle:
        return allow_rules(csv.DictReader(handle), LOOKUP.name)


def daemonset(case: Manifest) -> Dict[str, Any]:
    with (MANIFESTS / case.file).open(encoding="utf-8") as handle:
        docs: Iterator[Any] = yaml.safe_load_all(handle)
        found = [d for d in docs if isinstance(d, dict) and d.get("kind") == "DaemonSet"
                 and d["metadata"]["name"] == case.daemonset]
    assert len(found) == 1, case.file
    obj: Dict[str, Any] = found[0]
    if obj["metadata"].get("namespace") in (None, "default"):
        obj["metadata"]["namespace"] = case.namespace
    return obj


def audit(resource: str, obj: Dict[str, Any], user: str) -> Dict[str, Any]:
    """An audit.k8s.io/v1 create as kube-apiserver writes it (keys as documented; ids made up)."""
    meta = obj["metadata"]
    return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request", "auditID": "m-" + meta["name"],
            "stage": "ResponseComplete", "verb": "create",
            "requestURI": "/apis/apps/v1/namespaces/{}/{}".format(meta["namespace"], resource),
            "user": {"username": user}, "sourceIPs": ["10.0.0.2"],
            "objectRef": {"resource": resource, "namespace": meta["namespace"], "name": meta["name"],
                          "apiVersion": "v1"},
            "responseStatus": {"code": 201}, "annotations": {"authorization.k8s.io/decision": "allow"},
            "requestObject": obj}


def daemonset_create(obj: Dict[str, Any]) -> Dict[str, Any]:
    event = audit("daemonsets", obj, "admin@example.com")
    event["objectRef"]["apiGroup"] = "apps"
    return event


def pod_of(obj: Dict[str, Any]) -> Dict[str, Any]:
    """The pod the daemon-set controller writes from the template."""
    meta = obj["metadata"]
    pod = {"kind": "Pod", "apiVersion": "v1",
           "metadata": {"name": meta["name"] + "-x7k2p", "namespace": meta["namespace"],
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": meta["name"],
                                             "uid": "0f0e0d0c-0000-4000-8000-000000000001", "controller": True}]},
           "spec": copy.deepcopy(obj["spec"]["template"]["spec"])}
    return audit("pods", pod, CONTROLLER)


def inspect(event: Dict[str, Any], rules: Any = None) -> List[Dict[str, Any]]:
    return list(run([{"_raw": json.dumps(event), "_cd": "0:1", "host": "cluster-a"}], allowed_host_paths=ALLOWED,
                    allowlist=shipped() if rules is None else rules, suppressed="include"))


def verdict(event: Dict[str, Any]) -> List[Any]:
    return [(r["escape_suppressed"], r["escape_severity"]) for r in inspect(event)]


def full_alert(event: Dict[str, Any]) -> List[Any]:
    """What the workload gives with no allowlist at all."""
    return [("0", r["escape_severity"]) for r in inspect(event, rules=[])]


def spec_of(event: Dict[str, Any]) -> Dict[str, Any]:
    obj = event["requestObject"]
    spec: Dict[str, Any] = obj["spec"]["template"]["spec"] if obj["kind"] == "DaemonSet" else obj["spec"]
    return spec


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_stock_manifest_is_only_the_informational_allowlisted_row(case: Manifest) -> None:
    obj = daemonset(case)
    for event in (daemonset_create(obj), pod_of(obj)):
        assert full_alert(event)[0][1] in ("high", "critical"), "the row matters: unallowlisted it alerts"
        assert verdict(event) == [("1", "informational")], inspect(event)[0].get("escape_allowlist_exceeded")


def context(container: Dict[str, Any]) -> Dict[str, Any]:
    if not container.get("securityContext"):      # absent, or `securityContext: null` as a rendered chart writes it
        container["securityContext"] = {}
    result: Dict[str, Any] = container["securityContext"]
    return result


def host_root(spec: Dict[str, Any]) -> None:
    spec.setdefault("volumes", []).append({"name": "hostroot", "hostPath": {"path": "/"}})
    spec["containers"][0].setdefault("volumeMounts", []).append({"name": "hostroot", "mountPath": "/host"})


def privileged(spec: Dict[str, Any]) -> None:
    for container in spec["containers"]:
        context(container)["privileged"] = True


def privileged_with_root(spec: Dict[str, Any]) -> None:
    privileged(spec)
    host_root(spec)


def more_for_the_pod(spec: Dict[str, Any]) -> None:
    spec["hostIPC"] = True
    context(spec["containers"][0]).setdefault("capabilities", {})["add"] = ["SYS_MODULE"]


def other_registry(spec: Dict[str, Any]) -> None:
    image = spec["containers"][0]["image"]
    spec["containers"][0]["image"] = "registry.example.com/" + image.split("/", 1)[1]


def extra_container(spec: Dict[str, Any]) -> None:
    spec["containers"].append({"name": "debug", "image": "docker.io/library/busybox:1.36", "command": ["sleep", "1d"]})


MUTATIONS = {"privileged and / writable": privileged_with_root, "/ writable": host_root,
             "more than it needs": more_for_the_pod, "image from another registry": other_registry,
             "an extra container": extra_container}


SHELL = ["/bin/sh", "-c", "chroot /host /bin/sh"]


def command_shell(spec: Dict[str, Any]) -> None:
    spec["containers"][0]["command"] = SHELL
    spec["containers"][0].pop("args", None)


def args_shell(spec: Dict[str, Any]) -> None:
    # no command: the image's entrypoint gets the args (Falco's docker-entrypoint.sh execs them)
    spec["containers"][0].pop("command", None)
    spec["containers"][0]["args"] = SHELL


def probe_shell(spec: Dict[str, Any]) -> None:
    spec["containers"][0]["livenessProbe"] = {"exec": {"command": SHELL}, "periodSeconds": 3600}


def hook_shell(spec: Dict[str, Any]) -> None:
    spec["containers"][0].setdefault("lifecycle", {})["postStart"] = {"exec": {"command": SHELL}}


def init_shell(spec: Dict[str, Any]) -> None:
    # a second container of the agent's own image that runs a shell (the init container of a pod runs first)
    shell = dict(copy.deepcopy(spec["containers"][0]), name="setup", command=SHELL)
    shell.pop("args", None)
    spec["initContainers"] = list(spec.get("initContainers") or []) + [shell]


# what the container runs: the shell, and where the summary says it came from
SHELLS = {"a shell as command": (command_shell, "command"), "a shell in args": (args_shell, "args"),
          "a shell probe": (probe_shell, "livenessProbe"), "a shell hook": (hook_shell, "postStart"),
          "a shell init container": (init_shell, "command")}
MUTATIONS.update({name: change for name, (change, _) in SHELLS.items()})


@pytest.mark.parametrize("change", sorted(MUTATIONS))
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_same_identity_asking_for_more_is_a_full_alert(case: Manifest, change: str) -> None:
    obj = daemonset(case)
    MUTATIONS[change](obj["spec"]["template"]["spec"])
    for event in (daemonset_create(obj), pod_of(obj)):
        assert verdict(event) == full_alert(event)
        assert full_alert(event)[0][1] in ("high", "critical")
        if change in SHELLS:
            assert "runs /bin/sh ({}), not the agent's own command".format(SHELLS[change][1]) in inspect(
                event)[0]["escape_summary"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_bare_pod_reusing_the_agents_image_namespace_and_account_is_a_full_alert(case: Manifest) -> None:
    obj = daemonset(case)
    for more in (False, True):
        event = pod_of(obj)
        event["user"] = {"username": "dev@example.com", "groups": ["system:authenticated"]}
        del event["requestObject"]["metadata"]["ownerReferences"]
        if more:
            more_for_the_pod(spec_of(event))
        assert verdict(event) == full_alert(event)
        assert full_alert(event)[0][1] in ("high", "critical")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_privileged_patch_of_an_unprivileged_agent_is_a_full_alert(case: Manifest) -> None:
    obj = daemonset(case)
    spec = obj["spec"]["template"]["spec"]
    if all(context(c).get("privileged") for c in spec["containers"]):
        pytest.skip("every container of this agent is privileged already")
    privileged(spec)
    event = daemonset_create(obj)
    assert verdict(event) == full_alert(event) == [("0", "critical")]



@pytest.mark.parametrize("case, sidecar, volume, mount", [
    # kube-rbac-proxy may share node-exporter's pod, not its read-only view of the host's root
    (CASES[0], "kube-rbac-proxy", "root", {"mountPath": "/host/root", "readOnly": True}),
    # falcoctl fetches rules; the runtime socket is Falco's need
    (CASES[-1], "falcoctl-artifact-follow", "container-engine-socket-0", {"mountPath": "/host/var/run/docker.sock"}),
    # the driver loader reads /proc; only the falco container may write it
    (CASES[-1], "falco-driver-loader", "proc-fs", {"mountPath": "/host/proc", "readOnly": False}),
])
def test_a_container_may_not_borrow_a_host_path_its_own_entry_does_not_need(
        case: Manifest, sidecar: str, volume: str, mount: Dict[str, Any]) -> None:
    obj = daemonset(case)
    spec = obj["spec"]["template"]["spec"]
    container = next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == sidecar)
    mounts = [m for m in container.get("volumeMounts") or [] if m["name"] != volume]
    container["volumeMounts"] = mounts + [dict(mount, name=volume)]
    for event in (daemonset_create(obj), pod_of(obj)):
        assert verdict(event) == full_alert(event) == [("0", "critical")]
        beyond = inspect(event)[0]["escape_allowlist_exceeded"]
        assert any("volume " + volume in text for text in ([beyond] if isinstance(beyond, str) else beyond))


@pytest.mark.parametrize("logged", ["Request", "RequestResponse"])
def test_a_patch_of_the_agents_daemonset_to_privileged_with_a_writable_root_is_a_full_alert(logged: str) -> None:
    obj = daemonset(CASES[0])      # node-exporter: neither privileged nor writing the host's root
    event = daemonset_create(obj)
    event["verb"], event["level"] = "patch", logged
    event["objectRef"]["name"] = obj["metadata"]["name"]
    # kubectl patch --type=strategic: only what changes, containers merged by name
    event["requestObject"] = {"spec": {"template": {"spec": {
        "containers": [{"name": "node-exporter", "securityContext": {"privileged": True},
                        "volumeMounts": [{"name": "root", "mountPath": "/host/root", "readOnly": False}]}]}}}}
    if logged == "RequestResponse":     # the DaemonSet as stored after the patch
        patched = copy.deepcopy(obj)
        agent = patched["spec"]["template"]["spec"]["containers"][0]
        context(agent)["privileged"] = True
        agent["volumeMounts"] = [dict(m, readOnly=False) if m["name"] == "root" else m for m in agent["volumeMounts"]]
        event["responseObject"] = patched
    assert verdict(event) == full_alert(event) == [("0", "critical")]

# -- docker: the vendors' documented `docker run` as the create body dockerd logs ---------------------------------
# The docker CLI sends each flag as one HostConfig field (--volume: Binds as written, --net=host: NetworkMode,
# --cap-add: CapAdd as written, --privileged, --device: Devices, --init: Init). The body around them is the lab's
# real CLI body (tests/data/lab-run1), so only the flags differ from what a real client sends.
ECS_AGENT = "public.ecr.aws/ecs/amazon-ecs-agent:latest"
ECS_README_LOCAL_TAG = "amazon/amazon-ecs-agent:latest"     # the README's (and ecs-init's) image: a local tag
# aws/amazon-ecs-agent README.md @ 8dfceca6cf38, "On Other Linux AMIs"
ECS_README = {"Binds": ["/var/run/docker.sock:/var/run/docker.sock", "/var/log/ecs:/log", "/var/lib/ecs/data:/data"],
              "NetworkMode": "host", "RestartPolicy": {"MaximumRetryCount": 10, "Name": "on-failure"}}
# the same README, "when awsvpc networking mode is enabled"
ECS_README_AWSVPC = {"Binds": ["/var/run:/var/run", "/var/log/ecs/:/log:Z", "/var/lib/ecs/data:/data:Z",
                               "/etc/ecs:/etc/ecs", "/sbin:/host/sbin", "/lib:/lib", "/lib64:/lib64",
                               "/usr/lib:/usr/lib", "/usr/lib64:/usr/lib64", "/proc:/host/proc",
                               "/sys/fs/cgroup:/sys/fs/cgroup"],
                     "NetworkMode": "host", "CapAdd": ["sys_admin", "net_admin"], "Init": True,
                     "RestartPolicy": {"MaximumRetryCount": 10, "Name": "on-failure"}}
# google/cadvisor README.md @ 6a0c4f2539a8 ("for versions prior to v0.53.0, use gcr.io/cadvisor/cadvisor")
CADVISOR_README = {"Binds": ["/:/rootfs:ro", "/var/run:/var/run:ro", "/sys:/sys:ro", "/var/lib/docker/:/var/lib/docker:ro",
                             "/dev/disk/:/dev/disk:ro"],
                   "Privileged": True, "PortBindings": {"8080/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                   "Devices": [{"CgroupPermissions": "rwm", "PathInContainer": "/dev/kmsg", "PathOnHost": "/dev/kmsg"}]}


def docker_run(image: str, host_config: Dict[str, Any], **more: Any) -> List[Dict[str, Any]]:
    call, body = lab_pair("ben14-priv-agent")
    create = json.loads(body)
    create["Image"] = image
    create["Cmd"] = None        # the documented runs name no command: the image's entrypoint runs
    create["HostConfig"]["Privileged"] = False
    create["HostConfig"].update(copy.deepcopy(host_config))
    create["HostConfig"].update(more)
    form = form_line(json.dumps(create, separators=(",", ":")))
    return [{"_raw": line, "_cd": "0:{}".format(i), "host": "lab", "source": "dockerd"}
            for i, line in enumerate((form, call))]


def docker_verdict(records: List[Dict[str, Any]], rules: Any = None) -> List[Any]:
    rows = run(records, allowed_host_paths=ALLOWED, allowlist=shipped() if rules is None else rules,
               suppressed="include")
    return [(r["escape_suppressed"], r["escape_severity"]) for r in rows if r.get("escape_action") == "docker create of"]


@pytest.mark.parametrize("image, host_config", [
    (ECS_AGENT, ECS_README), ("docker.io/amazon/amazon-ecs-agent:latest", ECS_README),
    ("ghcr.io/google/cadvisor:0.55.1", CADVISOR_README), ("gcr.io/cadvisor/cadvisor:v0.52.1", CADVISOR_README)])
def test_the_documented_docker_run_of_a_registry_qualified_agent_is_informational(
        image: str, host_config: Dict[str, Any]) -> None:
    records = docker_run(image, host_config)
    assert docker_verdict(records, rules=[])[0][1] in ("high", "critical")
    assert docker_verdict(records) == [("1", "informational")]


@pytest.mark.parametrize("image, host_config, more", [
    (ECS_README_LOCAL_TAG, ECS_README, {}),           # the README's own image name: any local image can carry it
    ("registry.example.com/ecs/amazon-ecs-agent:latest", ECS_README, {}),
    (ECS_AGENT, ECS_README, {"Privileged": True}),    # no documented form of the agent asks for privileged
    (ECS_AGENT, ECS_README, {"Binds": ECS_README["Binds"] + ["/:/host"]}),
    # writable host /proc with CAP_SYS_ADMIN is an escape of its own (core_pattern): never allowlisted by name
    (ECS_AGENT, ECS_README_AWSVPC, {}),
    ("ghcr.io/google/cadvisor:0.55.1", CADVISOR_README, {"Binds": ["/:/rootfs"]}),
    ("ghcr.io/google/cadvisor:0.55.1", CADVISOR_README, {"CapAdd": ["SYS_MODULE"]}),
    ("google/cadvisor:0.55.1", CADVISOR_README, {}),
])
def test_a_docker_run_beyond_the_documented_one_is_a_full_alert(image: str, host_config: Dict[str, Any],
                                                                 more: Dict[str, Any]) -> None:
    records = docker_run(image, host_config, **more)
    assert docker_verdict(records) == docker_verdict(records, rules=[])
    assert docker_verdict(records)[0] in (("0", "high"), ("0", "critical"))


def test_every_shipped_row_says_which_manifest_it_was_checked_against() -> None:
    text = (ROOT / "docs" / "lookups.md").read_text(encoding="utf-8")
    section = text.split("### `escape_privileged_workloads`: each row and the manifest it was checked against", 1)[1]
    documented = []
    for line in section.split("\n"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] in ("kubernetes", "docker"):
            documented.append((cells[0], cells[1].strip("`"), "" if cells[2] == "-" else cells[2]))
    with LOOKUP.open(newline="", encoding="utf-8") as handle:
        rows = [(r["platform"], r["image"], r["namespace"]) for r in csv.DictReader(handle)]
    assert sorted(documented) == sorted(rows)
