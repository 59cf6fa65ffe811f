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
from tests.unit.test_inspect_dockerbody import form_line
from tests.unit.test_inspect_vendor_manifests import CASES, ECS_AGENT, ECS_README, daemonset, docker_run, pod_of

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


# -- what the container runs -------------------------------------------------------------------------------------
KURED = next(case for case in CASES if case.daemonset == "kured")             # command: [/usr/bin/kured, ...]
EXPORTER = next(case for case in CASES if case.daemonset == "node-exporter")     # args only, all flags


def kured_pod(command: List[str]) -> str:
    obj = daemonset(KURED)
    obj["spec"]["template"]["spec"]["containers"][0]["command"] = command
    return json.dumps(pod_of(obj))


def verdicts(rows: List[Dict[str, Any]]) -> List[Any]:
    return [(r["escape_suppressed"], r["escape_severity"]) for r in rows]


@pytest.mark.parametrize("command, allowed", [
    (["/usr/bin/kured", "--period=1h"], True),
    (["//usr/bin/./kured"], True),                  # the same path, spelt otherwise
    (["kured"], False),                             # a bare name is another command than the path the row names
    (["/bin/sh", "-c", "chroot /host"], False),
    (["python3", "-c", "import os; os.system('nsenter -t 1 -a')"], False),
    (["/host/usr/bin/kured"], False),               # a lookalike path (on a host mount)
    (["", "/bin/sh"], False),                       # an empty command word: the next word runs
])
def test_an_allowlisted_agent_runs_only_its_own_command(command: List[str], allowed: bool) -> None:
    rows = inspect(kured_pod(command))
    assert verdicts(rows) == ([("1", "informational")] if allowed else [("0", "critical")])
    if not allowed:
        assert "not the agent's own command" in rows[0]["escape_summary"]
        assert "runs {} (".format(command[0] or command[1]) in rows[0]["escape_allowlist_exceeded"]


def test_flags_in_args_are_the_agents_own_but_a_first_word_is_a_command() -> None:
    obj = daemonset(EXPORTER)
    agent = obj["spec"]["template"]["spec"]["containers"][0]
    assert verdicts(inspect(json.dumps(pod_of(obj)))) == [("1", "informational")]
    agent["args"] = ["--path.rootfs=/host/root", "/bin/sh"]      # a flag first: the entrypoint's own arguments
    assert verdicts(inspect(json.dumps(pod_of(obj)))) == [("1", "informational")]
    agent["args"] = ["sh", "-c", "nsenter -t 1 -m"]             # a word first: what a CMD-only image would run
    rows = inspect(json.dumps(pod_of(obj)))
    assert verdicts(rows) == [("0", "critical")] and "runs sh (args)" in rows[0]["escape_summary"]


def local_rows(with_commands: bool) -> List[AllowRule]:
    """The shipped rows as a user's older local copy of the lookup has them: without the commands column."""
    with LOOKUP.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not with_commands:
        rows = [{k: v for k, v in row.items() if k != "commands"} for row in rows]
    return allow_rules(rows, "local.csv")


def test_a_row_without_the_commands_column_allows_the_images_own_entrypoint_only() -> None:
    kured = kured_pod(["/usr/bin/kured", "--period=1h"])          # the stock manifest's command
    assert verdicts(inspect(kured, rules=local_rows(True))) == [("1", "informational")]
    assert verdicts(inspect(kured, rules=local_rows(False))) == [("0", "critical")]
    node_exporter = json.dumps(pod_of(daemonset(EXPORTER)))  # no command: the image's entrypoint
    assert verdicts(inspect(node_exporter, rules=local_rows(False))) == [("1", "informational")]
    # the same for the escape_allowed_workloads option: no command: token, the image's entrypoint only
    option = "kube-system/kured=ghcr.io/kubereboot/kured[privileged;host_pid;host_path:/run:ro{}]"
    assert verdicts(inspect(kured, rules=parse_allow_option(option.format("")))) == [("0", "critical")]
    assert verdicts(inspect(kured, rules=parse_allow_option(option.format(";command:/usr/bin/kured")))) == [
        ("1", "informational")]


def ecs_run(**body: Any) -> List[Dict[str, Any]]:
    records = docker_run(ECS_AGENT, ECS_README)
    create = json.loads(records[0]["_raw"].split("form data: ", 1)[1][:-1].replace('\\"', '"'))
    create.update(body)
    records[0]["_raw"] = form_line(json.dumps(create, separators=(",", ":")))
    return list(run(records, allowed_host_paths=ALLOWED, allowlist=shipped(), suppressed="include"))


@pytest.mark.parametrize("body, allowed", [
    ({}, True),                                                  # the README's run: the image's entrypoint
    ({"Cmd": ["-loglevel=debug"]}, True),                        # flags for the entrypoint
    ({"Entrypoint": ["/agent"]}, True),                          # the image's own entrypoint, named
    ({"Entrypoint": ["/bin/sh"], "Cmd": ["-c", "chroot /host"]}, False),     # docker run --entrypoint /bin/sh
    ({"Entrypoint": "/bin/sh", "Cmd": ["-c", "chroot /host"]}, False),       # one string: dockerd's StrSlice
    ({"Cmd": ["/bin/sh", "-c", "chroot /host"]}, False),         # an image without ENTRYPOINT would run it
    ({"Entrypoint": [""], "Cmd": ["-c"]}, False),                # --entrypoint "": Cmd is the command
    ({"Entrypoint": [], "Cmd": ["/agent"]}, True),
])
def test_an_allowlisted_docker_agent_runs_only_its_own_entrypoint(body: Dict[str, Any], allowed: bool) -> None:
    rows = ecs_run(**body)
    assert verdicts(rows) == ([("1", "informational")] if allowed else [("0", "critical")])
    if not allowed:
        assert "not the agent's own command" in rows[0]["escape_summary"]


@pytest.mark.parametrize("path, allowed", [("/agent", True), ("/bin/sh", False), ("", True)])
def test_docker_inspect_of_an_allowlisted_agent_judges_the_executable_it_runs(path: str, allowed: bool) -> None:
    item = {"Id": "c" * 64, "Name": "/ecs-agent", "Path": path, "Image": "sha256:" + "e" * 64,
            "Config": {"Image": ECS_AGENT}, "HostConfig": dict(ECS_README, Binds=ECS_README["Binds"])}
    rows = inspect(json.dumps([item]))
    assert verdicts(rows) == ([("1", "informational")] if allowed else [("0", "critical")])
