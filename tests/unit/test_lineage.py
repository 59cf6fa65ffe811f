"""Per-host lineage: container attribution with evidence, pid reuse, runtime names, persistence and TTL."""
import json

from escape_engine.lineage import (Attribution, Exec, HostLineage, Proc, attribute_exec, container_id_from_argv,
                                   is_runtime)


def _table() -> HostLineage:
    table = HostLineage("h1")
    table.add(Proc("50", "1", 100.0, "containerd-shim", "/usr/bin/containerd-shim-runc-v2", "fe:00",
                   ["/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id", "abc123"], runtime=True))
    table.note_host_dev("fe:00", 100.0)
    return table


def _attribute(table: HostLineage, pid: str, ppid: str, when: float, comm: str = "sh", exe: str = "/bin/sh",
               dev: str = "00:27", title=(), subj: str = "", explicit: str = "", skew: float = 0.5) -> Attribution:
    return attribute_exec(table, Exec(pid, ppid, when, comm, exe, dev, [comm], list(title), "", subj, explicit, ""),
                          skew)


def test_shim_lineage_gives_the_container_id_from_the_shim_command_line() -> None:
    key, evidence, runtime, _ = _attribute(_table(), "60", "50", 101.0)
    assert (key, runtime) == ("abc123", False)
    assert evidence == "lineage:containerd-shim-runc-v2(pid 50)"


def test_descendants_inherit_and_runc_exec_children_are_attributed() -> None:
    table = _table()
    table.add(Proc("60", "50", 101.0, "sh", "/bin/sh", "00:27", ["sh"], container="abc123",
                   evidence="lineage:containerd-shim-runc-v2(pid 50)"))
    assert _attribute(table, "61", "60", 102.0)[0] == "abc123"
    table.add(Proc("70", "50", 103.0, "runc", "/usr/sbin/runc", "fe:00", ["runc", "exec", "--process", "p.json", "abc123"],
                   runtime=True))
    key, evidence, _, _ = _attribute(table, "71", "70", 103.1, "ps", "/bin/ps")
    assert key == "abc123" and evidence.startswith("lineage:runc exec")


def test_pid_reuse_replaces_the_old_lineage() -> None:
    table = _table()
    table.add(Proc("60", "50", 101.0, "sh", "/bin/sh", "00:27", container="abc123", evidence="lineage:x"))
    table.add(Proc("60", "1", 500.0, "bash", "/usr/bin/bash", "fe:00"))  # another parent: a new process
    assert table.lookup("60", 600.0).container == ""
    assert table.lookup("60", 200.0) is None  # the old image is gone with its lineage
    assert _attribute(table, "61", "60", 600.0, dev="fe:00")[0] == ""


def test_evidence_that_needs_no_history() -> None:
    table = HostLineage("h1")
    assert _attribute(table, "5", "4", 1.0, dev="00:31")[1] == "exe_dev:anonymous(00:31)"
    assert _attribute(table, "5", "4", 1.0, exe="/host/usr/bin/id", dev="")[1] == "image_path:/host"
    assert _attribute(table, "5", "4", 1.0, dev="", title=("runc", "init"))[1] == "proctitle:runc-init"
    assert _attribute(table, "5", "4", 1.0, dev="", subj="system_u:system_r:container_t:s0:c1,c2",
                      skew=0.0).evidence == "lsm:container_t"
    explicit = _attribute(table, "5", "4", 1.0, dev="fe:00", explicit="f00d", skew=0.0)
    assert explicit[:2] == ("f00d", "field:container_id")
    assert _attribute(table, "5", "4", 1.0, dev="fe:00") == ("", "", False, "")


def test_runtime_names_need_a_host_executable_or_runtime_parent() -> None:
    table = _table()
    assert is_runtime(table, "runc", "/usr/sbin/runc", "fe:00", None)
    assert not is_runtime(table, "runc", "/usr/sbin/runc", "00:27", None)  # a runc binary inside an image
    runc = Proc("55", "50", 100.5, "runc", "/usr/sbin/runc", "fe:00", runtime=True)
    assert is_runtime(table, "runc:[2:INIT]", "/", "", runc)
    assert not is_runtime(table, "runc:[2:INIT]", "/", "", None)
    assert not is_runtime(table, "nsenter", "/usr/bin/nsenter", "fe:00", runc)


def test_state_round_trips_through_json_and_drops_entries_past_the_ttl() -> None:
    table = _table()
    table.add(Proc("60", "50", 101.0, "sh", "/bin/sh", "00:27", container="abc123", evidence="lineage:x"))
    table.add(Proc("90", "1", 5000.0, "cron", "/usr/sbin/cron", "fe:00"))
    table.container_seen("abc123", 101.0, "lineage:x", "abc123")
    saved = json.loads(json.dumps(table.to_json(ttl=86400.0)))
    again = HostLineage.from_json(saved)
    assert again.lookup("60", 200.0).container == "abc123" and again.lookup("60", 200.0).persisted
    assert again.containers["abc123"]["id"] == "abc123"
    short = HostLineage.from_json(json.loads(json.dumps(table.to_json(ttl=100.0))))
    assert set(short.procs) == {"90"} and short.containers == {}


def test_container_ids_from_runtime_command_lines() -> None:
    assert container_id_from_argv(["conmon", "-c", "deadbeef", "-n", "x"]) == "deadbeef"
    assert container_id_from_argv(["runc", "--root", "/r", "exec", "--process", "/p.json", "cafe"]) == "cafe"
    assert container_id_from_argv(["sh", "-c", "id"]) == ""
