"""escape_engine.lineage.persist: what a host's lineage keeps between searches and what its byte cap drops first."""
import json

from escape_engine.lineage import HostLineage, Proc
from escape_engine.lineage.persist import bounded_state

SHIM = ["/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id", "abc123"]


def _table() -> HostLineage:
    table = HostLineage("h1")
    table.add(Proc("10", "1", 100.0, "containerd-shim", SHIM[0], "fe:00", SHIM, runtime=True))
    table.add(Proc("20", "10", 101.0, "sh", "/bin/sh", "00:27", ["sh", "-c", "app"], container="abc123",
                   evidence="lineage:x", identity="exact"))
    table.add(Proc("21", "20", 102.0, "app", "/app", "00:27", ["app"], container="abc123", evidence="lineage:x"))
    table.add(Proc("30", "1", 105.0, "bash", "/usr/bin/bash", "fe:00", ["bash", "-c", "PASSWORD=hunter2 job"]))
    table.add(Proc("40", "1", 9000.0, "cron", "/usr/sbin/cron", "fe:00", ["cron", "--token=s3cret"]))
    table.container_seen("abc123", 101.0, "lineage:x", "abc123", "exact")
    return table


def test_a_save_keeps_container_processes_and_runtime_but_old_host_processes_and_host_arguments_never() -> None:
    state, capped = bounded_state(_table(), 7 * 86400.0, 300.0, 1 << 30)
    procs = {p["pid"]: p for p in state["procs"]}
    assert sorted(procs) == ["10", "20", "21", "40"]  # bash (host, idle for longer than the window) is left out
    assert procs["10"]["argv"] == SHIM and procs["20"]["argv"] == ["sh", "-c", "app"]
    assert procs["40"]["argv"] == []  # a host process never keeps its arguments
    assert "hunter2" not in json.dumps(state) and "s3cret" not in json.dumps(state)
    assert capped.processes == capped.containers == 0


def test_a_host_ancestor_of_a_container_process_is_kept() -> None:
    table = _table()
    table.add(Proc("50", "30", 106.0, "sh", "/bin/sh", "00:27", [], container="abc123", evidence="lineage:x"))
    state, _ = bounded_state(table, 7 * 86400.0, 300.0, 1 << 30)
    procs = {p["pid"]: p for p in state["procs"]}
    assert "30" in procs and procs["30"]["argv"] == []


def test_over_the_cap_recent_host_processes_go_first_then_leaves_then_containers() -> None:
    table = _table()
    full, _ = bounded_state(table, 7 * 86400.0, 300.0, 1 << 30)
    # the cap counts ", " after every process, the last one too: 2 characters more than the text
    without_host = len(json.dumps(full, sort_keys=True)) - len(json.dumps(full["procs"][-1], sort_keys=True))
    state, capped = bounded_state(table, 7 * 86400.0, 300.0, without_host)
    assert sorted(p["pid"] for p in state["procs"]) == ["10", "20", "21"] and capped.processes == 1
    state, capped = bounded_state(table, 7 * 86400.0, 300.0, without_host - 10)
    assert sorted(p["pid"] for p in state["procs"]) == ["10", "20"]  # the leaf app goes before its shell
    state, capped = bounded_state(table, 7 * 86400.0, 300.0, 50)
    assert state["procs"] == [] and state["containers"] == {} and capped == (4, 1)
