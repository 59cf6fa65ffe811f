"""Issue 18 (names and one incident): escape_incident shared by the spec and chain alerts of one lab container, the
create call's host access in the chain summary, and the summary text fixes."""
import json
from typing import Dict, List

from escape_engine import inspect
from escape_engine.chains import Chain, alert_row
from escape_engine.containers import CreateJoin, parse_runtime_event, rfc3339
from escape_engine.correlate import Correlator
from escape_engine.incident import incident_key, plural
from escape_engine.registry import Registry
from escape_engine.threshold import run as threshold_run
from tests.conftest import DATA, ROOT
from tests.unit.linux_lab import lab_records

LAB = DATA / "lab-run1"
PODMAN = ROOT / "tests" / "knowledge" / "samples" / "podman_events_lab-h18.jsonl"


def _docker_records() -> List[Dict[str, str]]:
    import gzip

    from escape_engine import docker
    records = []
    text = gzip.decompress((LAB / "dockerd-debug.log.gz").read_bytes()).decode()
    for i, line in enumerate(text.split("\n")):
        when = docker.line_time(line)
        if when is not None:
            records.append({"_raw": line, "_time": "%.6f" % when, "host": "labvm", "sourcetype": "docker:daemon",
                            "_cd": "1:%d" % i, "source": "dockerd"})
    for i, line in enumerate((LAB / "docker-events.jsonl").read_text().split("\n")):
        if line:
            records.append({"_raw": line, "_time": "%.9f" % (json.loads(line)["timeNano"] / 1e9), "host": "labvm",
                            "sourcetype": "docker:events", "_cd": "2:%d" % i})
    records.sort(key=lambda r: float(r["_time"]), reverse=True)
    return records


def _registry_rows() -> List[Dict]:
    return list(inspect.run(_docker_records(), allowed_host_paths="", mode="registry"))


def test_a_docker_create_call_gets_its_container_id_from_the_create_event() -> None:
    rows = {r["escape_container"]: r for r in inspect.run(_docker_records(), allowed_host_paths="")}
    nsenter = rows["esc01-nsenter-r3"]
    assert nsenter["escape_container_id"] == "ceeb6cd20f98acb210675556a012202fdb51cc1b88eb9cc2c8904bc4e45f6815"
    assert nsenter["escape_incident"] == "container:labvm/" + nsenter["escape_container_id"]


def test_spec_and_chain_alerts_of_one_lab_container_share_the_incident_and_the_chain_names_it() -> None:
    spec = {r["escape_container_id"]: r for r in inspect.run(_docker_records(), allowed_host_paths="")
            if r.get("escape_container_id")}
    from escape_engine.containers import ContainerFacts
    facts = [ContainerFacts.from_document(row) for row in _registry_rows()]
    correlator = Correlator(containers=[f for f in facts if f is not None])
    correlator.feed(lab_records())
    chains = correlator.finish()
    nsenter = next(r for r in chains if r["escape_finding"] == "nsenter_host_exec")
    assert nsenter["escape_incident"] == spec[nsenter["escape_container_id"]]["escape_incident"]
    assert nsenter["escape_container_name"] == "esc01-nsenter-r3"
    summary = str(nsenter["escape_summary"])
    assert "container esc01-nsenter-r3 (id ceeb6cd20f98acb210675556a012202fdb51cc1b88eb9cc2c8904bc4e45f6815" in summary
    assert "Host access: privileged + host PID from the create at 2026-11-29T" in summary
    shared = [r for r in chains if r["escape_container_id"] in spec]
    assert len(shared) >= 8
    assert all(r["escape_incident"] == spec[r["escape_container_id"]]["escape_incident"] for r in shared)


def test_no_dangling_then_when_a_chain_has_no_host_execution() -> None:
    correlator = Correlator()
    correlator.feed(lab_records())
    rows = correlator.finish()
    mount = next(r for r in rows if r["escape_finding"] == "host_device_mount")
    assert "then ." not in str(mount["escape_summary"]) and "then" not in str(mount["escape_summary"])
    assert all("then ." not in str(r["escape_summary"]) for r in rows)


def test_an_lsm_label_key_is_never_cut() -> None:
    key = "lsm:system_u:system_r:container_t:s0:c123,c456"
    row = {"_time": "1.000", "host": "h1", "escape_category": "suspicious", "escape_finding": "namespace_syscall",
           "escape_container": key, "escape_syscalls": ["unshare"], "escape_tools": []}
    done = alert_row(Chain(dict(row), "h1", key, "suspicious", "lsm:container_t", "", []), {})
    assert key in str(done["escape_summary"])
    assert done["escape_incident"] == "workload:h1/" + key


def test_threshold_summary_says_launch_in_the_singular_and_lists_incidents() -> None:
    rows = list(threshold_run([{"escape_launch": "1", "escape_finding": "privileged", "_time": "100",
                                "escape_launch_id": "a", "host": "h", "escape_incident": "container:h/" + "a" * 64}],
                              threshold=0, period=3600))
    assert rows[0]["escape_summary"].startswith("1 privileged container launch on ")
    assert rows[0]["escape_incident"] == ["container:h/" + "a" * 64]
    assert plural(2, "launch", "launches") == "2 launches"


def test_incident_key_rules() -> None:
    assert incident_key("H", "ABC" * 4) == "container:h/" + "abc" * 4
    assert incident_key("h", "a" * 64, pod="ns/p") == "pod:ns/p"
    assert incident_key("h", "not-an-id", workload="docker:h/x") == "workload:docker:h/x"


def test_podman_events_from_the_lab_give_id_name_and_image() -> None:
    lines = [line for line in PODMAN.read_text().split("\n") if line]
    creates = [parse_runtime_event(line, "vm", "podman:events") for line in lines]
    named = {f.name: f for action, f in filter(None, creates) if action == "create"}
    assert set(named) == {"pod01-benign", "pod02-privpid", "pod03-hostroot", "pod04-created"}
    assert len(named["pod02-privpid"].container_id) == 64 and named["pod02-privpid"].runtime == "podman"
    # read as docker events (the wrong sourcetype), nothing is taken
    assert all(parse_runtime_event(line, "vm", "docker:events") is None for line in lines)
    registry = Registry()
    for action, facts in filter(None, creates):
        registry.add(facts)
    registry.add_create("vm", "pod02-privpid", named["pod02-privpid"].created - 0.05, "", "privileged + host PID")
    rows = {r["name"]: r for r in registry.rows()}
    assert rows["pod02-privpid"]["host_access"] == "privileged + host PID"
    assert rows["pod01-benign"]["host_access"] == ""


def test_the_create_join_refuses_an_event_far_from_the_call() -> None:
    join = CreateJoin()
    _, facts = parse_runtime_event(json.dumps({"Type": "container", "Action": "create", "timeNano": 1000 * 10 ** 9,
                                               "Actor": {"ID": "b" * 64, "Attributes": {"name": "job"}}}),
                                   "h", "docker:events")
    join.add(facts)
    assert join.find("h", "job", 999.5) is facts
    assert join.find("h", "job", 900.0) is None
    assert rfc3339("2026-12-06T12:20:37.29Z") == rfc3339("2026-12-06T13:20:37.29+01:00")


def test_a_kubernetes_container_is_named_with_its_pod_namespace_and_node() -> None:
    event = {"Type": "container", "Action": "create", "timeNano": 1796000000 * 10 ** 9,
             "Actor": {"ID": "c" * 64, "Attributes": {"name": "k8s_app_web-0_shop_uid_0", "image": "shop/web:1",
                                                      "io.kubernetes.pod.name": "web-0",
                                                      "io.kubernetes.pod.namespace": "shop"}}}
    _, facts = parse_runtime_event(json.dumps(event), "node7", "docker:events")
    assert (facts.pod, facts.namespace, facts.node) == ("web-0", "shop", "node7")
    registry = Registry()
    registry.add(facts)
    registry.add_pod_create("shop", "web-0", 1795999999.0, "alice", "privileged + host PID")
    (row,) = registry.rows()
    assert row["escape_incident"] == "pod:shop/web-0" and row["node"] == "node7"
    assert row["create_actor"] == "alice" and row["host_access"] == "privileged + host PID"
    key = "c" * 64
    chain = Chain({"_time": "1796000100.000", "host": "node7", "escape_category": "escape",
                   "escape_finding": "nsenter_host_exec", "escape_container": key, "escape_syscalls": ["setns"],
                   "escape_tools": ["nsenter"]}, "node7", key, "escape", "runtime:shim", "nsenter -t 1", ["bash"])
    from escape_engine.containers import ContainerFacts
    done = alert_row(chain, {"id": key}, ContainerFacts.from_document(row))
    summary = str(done["escape_summary"])
    assert "container k8s_app_web-0_shop_uid_0 (id {}, image shop/web:1, pod shop/web-0, node node7)".format(key) \
        in summary
    assert summary.endswith("Host access: privileged + host PID from the create by alice at 2026-11-30T00:53:19Z.")
    assert done["escape_incident"] == "pod:shop/web-0" and done["escape_node"] == "node7"
