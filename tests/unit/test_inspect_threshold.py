"""escape_engine.threshold: privileged launches per cluster or host and period against the threshold."""
import gzip
import json
from typing import Any, Dict, List

import pytest

from escape_engine.inspect import run as inspect_run
from escape_engine.threshold import ThresholdCounter, run
from tests.conftest import DATA

PERIOD = 3600
START = 1795921200      # a multiple of 3600


def launches(count: int, host: str = "cluster-a", start: int = START, finding: Any = "privileged",
             **extra: str) -> List[Dict[str, Any]]:
    rows = []
    for n in range(count):
        row = {"_time": str(start + n), "host": host, "escape_launch": "1", "escape_launch_id": "{}-{}".format(host, n),
               "escape_finding": finding, "escape_workload": "Pod/default/p{}".format(n),
               "escape_evidence_cd": "0:{}".format(n), "escape_suppressed": "0"}
        row.update(extra)
        rows.append(row)
    return rows


@pytest.mark.parametrize("threshold", [0, 1, 5, 20])
def test_fires_at_threshold_plus_one_not_at_threshold(threshold: int) -> None:
    assert list(run(launches(threshold), threshold=threshold, period=PERIOD)) == []
    rows = list(run(launches(threshold + 1), threshold=threshold, period=PERIOD))
    assert len(rows) == 1
    assert rows[0]["escape_count"] == str(threshold + 1)
    assert rows[0]["escape_finding"] == "privileged_launch_threshold"
    assert len(rows[0]["escape_workload"]) == threshold + 1
    assert rows[0]["_time"] == str(START)


def test_counts_per_cluster_and_period_separately() -> None:
    records = launches(3, host="a") + launches(3, host="b") + launches(3, host="a", start=START + PERIOD)
    assert list(run(records, threshold=3, period=PERIOD)) == []
    rows = list(run(records, threshold=2, period=PERIOD))
    assert sorted((r["escape_cluster"], r["_time"]) for r in rows) == [
        ("a", str(START)), ("a", str(START + PERIOD)), ("b", str(START))]


def test_by_field_names_the_cluster_and_falls_back_to_host() -> None:
    records = launches(2, host="node1", cluster="prod") + launches(2, host="node2", cluster="prod")
    rows = list(run(records, threshold=3, period=PERIOD, by="cluster"))
    assert len(rows) == 1 and rows[0]["escape_cluster"] == "prod" and rows[0]["escape_count"] == "4"
    assert next(iter(run(launches(4, host="dockerhost"), threshold=3, period=PERIOD, by="cluster")))[
        "escape_cluster"] == "dockerhost"


def test_duplicates_templates_and_unprivileged_rows_do_not_count() -> None:
    records = launches(3)
    records += [dict(r) for r in records]                                   # same launch seen twice
    records += launches(3, host="cluster-a", escape_launch="0")             # workload templates
    records += [dict(r, escape_launch_id="x{}".format(i)) for i, r in enumerate(launches(3, finding="host_network"))]
    assert list(run(records, threshold=3, period=PERIOD)) == []
    assert list(run(launches(4, finding=["host_pid", "privileged"]), threshold=3, period=PERIOD))


def test_state_is_kept_across_chunks() -> None:
    counter = ThresholdCounter(threshold=4, period=PERIOD)
    records = launches(5)
    for chunk in (records[:2], records[2:3], [], records[3:]):
        counter.feed(chunk)
    rows = list(counter.results())
    assert len(rows) == 1 and rows[0]["escape_count"] == "5"


@pytest.mark.parametrize("kwargs", [{"threshold": -1, "period": 60}, {"threshold": 1, "period": 0},
                                    {"threshold": 1, "period": 60, "by": ""}])
def test_bad_settings_raise(kwargs: Dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ThresholdCounter(**kwargs)


def _twenty_creates_named_job() -> List[Dict[str, Any]]:
    """The lab's privileged ben14-priv-agent create (Calling line and form data), replayed twenty times a second
    apart under one name, `job`, as a CI system or an attacker re-using a name would."""
    lines = gzip.decompress((DATA / "lab-run1" / "dockerd-debug.log.gz").read_bytes()).decode("utf-8").split("\n")
    at = next(i for i, line in enumerate(lines) if line.endswith("create?name=ben14-priv-agent\""))
    call, form = lines[at], next(line for line in lines[at + 1:at + 4] if "form data:" in line)
    records = []
    for n in range(20):
        for offset, line in ((0, call), (1, form)):
            stamp = "2026-11-29T03:50:{:02d}.00000000{}Z".format(n, offset)
            text = line.replace("name=ben14-priv-agent", "name=job")
            text = 'time="{}"'.format(stamp) + text[text.index(" level="):]
            records.append({"_raw": text, "_cd": "0:{}".format(len(records)), "host": "lab", "source": "dockerd",
                            "_time": str(1795924200 + n + offset / 1e9)})
    return records[::-1]


def test_twenty_privileged_containers_named_job_are_twenty_launches() -> None:
    rows = list(inspect_run(_twenty_creates_named_job(), allowed_host_paths="/var/log", suppressed="include"))
    assert len(rows) == 20 and len({r["escape_launch_id"] for r in rows}) == 20
    alerts = list(run(rows, threshold=19, period=PERIOD))
    assert [a["escape_count"] for a in alerts] == ["20"]


def test_docker_inspect_launches_are_keyed_by_container_id() -> None:
    item = {"Id": "", "Name": "/job", "Config": {"Image": "lab/busybox"}, "HostConfig": {"Privileged": True}}
    raws = [json.dumps(dict(item, Id="{:064x}".format(n))) for n in range(3)]
    rows = list(inspect_run(({"_raw": r, "_cd": "0:{}".format(i), "host": "lab", "_time": str(START + i)}
                             for i, r in enumerate(raws)), allowed_host_paths="/var/log"))
    assert [a["escape_count"] for a in run(rows, threshold=2, period=PERIOD)] == ["3"]


# ---- launches are counted by identity: audit ID, container ID, else the event's index, splunk_server and _cd -----
KUBE = DATA / "public" / "kube_apiserver" / "falco_create_nginx_pod_privileged.json"


def _pod_create(cd: str, audit_id: str = "", name: str = "job", index: str = "main", server: str = "idx1",
                time: int = START) -> Dict[str, Any]:
    """The public privileged pod create, as pod `name` (none: generateName only) with this audit ID (none: "")."""
    event = json.loads(KUBE.read_text())
    event["auditID"] = audit_id
    event["requestObject"]["metadata"] = {"name": name} if name else {"generateName": "job-"}
    event["responseObject"]["metadata"]["name"] = name or "job-x7k2p"
    if name:
        event["objectRef"]["name"] = name
    return {"_raw": json.dumps(event), "_cd": cd, "index": index, "splunk_server": server, "host": "apiserver",
            "_time": str(time), "sourcetype": "kube:apiserver-audit"}


def _count(records: List[Dict[str, Any]]) -> List[str]:
    rows = list(inspect_run(records, allowed_host_paths="/var/log", suppressed="include"))
    return [a["escape_count"] for a in run(rows, threshold=0, period=PERIOD)]


def test_twenty_pods_named_job_without_an_audit_id_are_twenty_launches() -> None:
    # a pod name is reused once the earlier pod is gone; without the audit ID only the event itself tells them apart
    records = [_pod_create("0:{}".format(n), time=START + 60 * n) for n in range(20)]
    assert _count(records) == ["20"]


@pytest.mark.parametrize("where", [{"index": "k8s_audit"}, {"server": "idx2"}])
def test_the_same_cd_on_another_index_or_peer_is_another_launch(where: Dict[str, str]) -> None:
    # _cd is unique only within one index on one indexer: two peers each hold an event 12:345
    assert _count([_pod_create("12:345"), _pod_create("12:345", **where)]) == ["2"]
    assert _count([_pod_create("12:345", name=""), _pod_create("12:345", name="", **where)]) == ["2"]
    rows = [dict(r, escape_launch_id="") for r in launches(2)]
    rows[0].update(_cd="12:345", index="main", splunk_server="idx1")
    rows[1].update(_cd="12:345", index=where.get("index", "main"), splunk_server=where.get("server", "idx1"))
    assert [a["escape_count"] for a in run(rows, threshold=0, period=PERIOD)] == ["2"]


def test_one_launch_seen_twice_counts_once() -> None:
    # the same pod create in two indexes (two audit pipelines): one audit ID, one launch
    assert _count([_pod_create("12:345", audit_id="a362d22b"),
                   _pod_create("9:876", audit_id="a362d22b", index="k8s_audit", server="idx2")]) == ["1"]
    # docker: the lab's privileged ben14-priv-agent, by its create call (joined with its create event) and by
    # docker inspect: one container ID, one launch
    lines = gzip.decompress((DATA / "lab-run1" / "dockerd-debug.log.gz").read_bytes()).decode("utf-8").split("\n")
    at = next(i for i, line in enumerate(lines) if line.endswith("create?name=ben14-priv-agent\""))
    form = next(line for line in lines[at + 1:at + 4] if "form data:" in line)
    created = next(line for line in (DATA / "lab-run1" / "docker-events.jsonl").read_text().split("\n")
                   if '"ben14-priv-agent"' in line and '"Action":"create"' in line)
    item = next(i for i in json.loads((DATA / "lab-run1" / "docker-inspect.json").read_text())
                if i["Name"] == "/ben14-priv-agent")
    base = {"host": "lab", "index": "docker", "splunk_server": "idx1", "_time": "1795923904"}
    records = [dict(base, _raw=json.dumps([item]), _cd="3:1", sourcetype="docker:inspect"),
               dict(base, _raw=created, _cd="2:7", sourcetype="docker:events"),
               dict(base, _raw=form, _cd="1:2", sourcetype="docker:daemon", source="dockerd"),
               dict(base, _raw=lines[at], _cd="1:1", sourcetype="docker:daemon", source="dockerd")]
    rows = list(inspect_run(records, allowed_host_paths="/var/log", suppressed="include"))
    assert len(rows) == 2 and {r["escape_launch_id"] for r in rows} == {"docker:lab/" + item["Id"]}
    assert [a["escape_count"] for a in run(rows, threshold=0, period=PERIOD)] == ["1"]


def test_the_alert_names_each_launch_event_by_index_peer_and_cd() -> None:
    records = [_pod_create("12:345", audit_id="a"), _pod_create("12:345", audit_id="b", index="k8s", server="idx2")]
    alert = next(run(inspect_run(records, allowed_host_paths="/var/log"), threshold=0, period=PERIOD))
    assert alert["escape_evidence_cd"] == ["12:345", "12:345"]
    assert alert["escape_evidence"] == ["index=main splunk_server=idx1 _cd=12:345",
                                        "index=k8s splunk_server=idx2 _cd=12:345"]
