"""Per-host lineage: container attribution with evidence, pid reuse, runtime names, persistence and TTL."""
import json
import re
from typing import Any, Dict, List, Tuple

import pytest

from escape_engine.correlate import Correlator
from escape_engine.lineage import (
    Attribution,
    Exec,
    HostLineage,
    Proc,
    Running,
    attribute_exec,
    attribute_running,
    container_id_from_argv,
    is_runtime,
    runtime_call,
    shim_args,
)
from tests.unit.linux_lab import lab_lines, to_records


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
    found = _attribute(_table(), "60", "50", 101.0)
    assert (found.key, found.runtime, found.identity, found.container_id) == ("abc123", False, "exact", "abc123")
    assert found.evidence == "lineage:containerd-shim-runc-v2(pid 50)"


def test_descendants_inherit_and_runc_exec_children_are_attributed() -> None:
    table = _table()
    table.add(Proc("60", "50", 101.0, "sh", "/bin/sh", "00:27", ["sh"], container="abc123",
                   evidence="lineage:containerd-shim-runc-v2(pid 50)"))
    assert _attribute(table, "61", "60", 102.0)[0] == "abc123"
    table.add(Proc("70", "50", 103.0, "runc", "/usr/sbin/runc", "fe:00",
                   ["runc", "exec", "--process", "p.json", "abc123"],
                   runtime=True))
    found = _attribute(table, "71", "70", 103.1, "ps", "/bin/ps")
    assert found.key == "abc123" and found.evidence.startswith("lineage:runc exec") and found.identity == "exact"


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
    assert explicit[:2] == ("f00d", "field:container_id") and explicit.identity == "exact"
    assert _attribute(table, "5", "4", 1.0, dev="fe:00") == ("", "", False, "", "", "")


def test_runtime_names_need_a_host_executable_or_runtime_parent() -> None:
    table = _table()
    assert is_runtime(table, "/usr/sbin/runc", "fe:00", None)
    assert not is_runtime(table, "/usr/sbin/runc", "00:27", None)  # a runc binary inside an image
    runc = Proc("55", "50", 100.5, "runc", "/usr/sbin/runc", "fe:00", runtime=True)
    assert is_runtime(table, "/", "", runc)
    assert not is_runtime(table, "/", "", None)
    assert not is_runtime(table, "/usr/bin/nsenter", "fe:00", runc)


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


# ---- one container, one key (lab-run1 records) -------------------------------------------------------------------
# Container bab024d1... of lab-run1: its shim (pid 26141) and first process (sh, pid 26162). The shim's EXECVE record is
# left out, as when an audit backlog drops it, so nothing names the container's id and the container is known by its
# shim alone. Two more of the lab's records are moved into it: a `mount` that sh executes (an item attributed through
# the process's start) and an `unshare` by a process never seen starting whose parent is the shim (an item
# attributed from the running process). Both must land under one key, whether the shim's start is in the search or
# only in the state persisted by an earlier one.
SHIM_KEY = "shim:26141@1795923727.334"


def _event(serial: str, *, drop: str = "", stamp: str = "", pids: Tuple[str, str] = ("", "")) -> List[bytes]:
    """The lab's records of one audit event, optionally moved to another stamp and pid/ppid."""
    lines = [line for line in lab_lines() if (b":%s): " % serial.encode()) in line and line.startswith(b"type=")]
    assert lines, serial
    out = []
    for line in lines:
        if drop and line.startswith(("type=%s " % drop).encode()):
            continue
        text = line.decode("utf-8", "surrogateescape")
        if stamp:
            text = re.sub(r"msg=audit\([0-9.]+:[0-9]+\)", "msg=audit(%s)" % stamp, text)
        if pids[0]:
            text = re.sub(r" ppid=[0-9]+ pid=[0-9]+ ", " ppid=%s pid=%s " % (pids[1], pids[0]), text)
        out.append(text.encode("utf-8", "surrogateescape"))
    return out


def _records(*events: List[bytes]) -> List[Dict[str, str]]:
    return to_records(list(enumerate(line for event in events for line in event)))


def _shim() -> List[bytes]:
    return _event("4905", drop="EXECVE")


def _container_activity() -> List[bytes]:
    first = _event("4980")  # sh, the container's first process (PROCTITLE runc init), child of the shim
    mount = _event("6129", stamp="1795923727.510:4990", pids=("26210", "26162"))
    unshare = _event("19", stamp="1795923727.520:4991", pids=("26300", "26141"))
    return first + mount + unshare


def _one_chain(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    assert [(r["escape_container"], r["escape_tools"], r["escape_syscalls"]) for r in rows] == [
        (SHIM_KEY, ["mount"], ["unshare"])]
    return rows[0]


def test_a_container_known_by_its_shim_started_in_the_search_is_one_key() -> None:
    correlator = Correlator(report="all")
    correlator.feed(_records(_shim(), _container_activity()))
    _one_chain(correlator.finish())


def test_a_container_known_by_its_shim_from_the_persisted_state_is_the_same_key() -> None:
    earlier = Correlator(report="all")
    earlier.feed(_records(_shim()))
    assert earlier.finish() == []
    state = json.loads(json.dumps(earlier.state()))
    later = Correlator(report="all", state=state)
    later.feed(_records(_container_activity()))
    row = _one_chain(later.finish())
    assert "[persisted state]" in str(row["escape_attribution"])


@pytest.mark.parametrize("exe, dev, runtime", [
    ("/usr/bin/containerd-shim-runc-v2", "fe:00", True),
    ("/usr/local/sbin/runc", "fe:00", True),                               # a source build's prefix
    ("/var/lib/rancher/k3s/data/abc/bin/runc", "fe:00", True),             # k3s' bundled runtime
    ("/usr/local/bin/runc", "00:27", False),                               # a runtime name on an overlay device
    ("/tmp/runc", "fe:00", False),                                         # not where a runtime package installs
    ("/usr/bin/../../tmp/runc", "fe:00", False),                           # path tricks
    ("/usr//bin/runc", "fe:00", False),
    ("/usr/bin/./runc", "fe:00", False),
    ("/usr/bin/nsenter", "fe:00", False),                                  # a host binary that is no runtime
])
def test_a_runtime_is_a_runtime_binary_on_a_host_device_where_its_package_installs_it(exe: str, dev: str,
                                                                                      runtime: bool) -> None:
    assert is_runtime(_table(), exe, dev, None) is runtime


def test_the_runtime_stage_and_the_children_of_container_processes() -> None:
    table = _table()
    runc = Proc("55", "50", 100.5, "runc", "/usr/sbin/runc", "fe:00", runtime=True)
    assert is_runtime(table, "/memfd:runc_cloned:/proc/self/exe (deleted)", "00:01", runc)  # runc's memfd clone
    assert is_runtime(table, "/usr/sbin/runc", "fe:00", runc)                                # runc init
    shell = Proc("60", "50", 101.0, "sh", "/bin/sh", "00:27", container="abc123", evidence="lineage:x")
    assert not is_runtime(table, "/usr/sbin/runc", "fe:00", shell)  # a container process's child is no runtime
    shim = Proc("50", "1", 100.0, "containerd-shim", "/usr/bin/containerd-shim-runc-v2", "fe:00", runtime=True)
    assert is_runtime(table, "/usr/sbin/runc", "", shim)             # Sysmon: no device, path and parent
    assert not is_runtime(table, "/tmp/runc", "", shim)
    assert is_runtime(table, "/usr/bin/dockerd", "", None)           # no history: the path must do


def test_a_runtime_installed_elsewhere_is_named_by_its_full_path() -> None:
    table = HostLineage("h1", ("runc", "/home/ops/bin/runc"))
    assert is_runtime(table, "/home/ops/bin/runc", "fe:00", None)
    assert not is_runtime(table, "/home/ops/bin/runc", "00:27", None)
    assert not is_runtime(table, "/home/other/bin/runc", "fe:00", None)


def test_a_process_seen_by_its_syscalls_keeps_its_image_unless_its_pid_was_reused() -> None:
    table = _table()
    table.add(Proc("50", "1", 100.0, "containerd-shim", "/usr/bin/containerd-shim-runc-v2", "fe:00", runtime=True))
    table.add(Proc("60", "55", 101.0, "sh", "/usr/local/bin/runc", "00:27", container="abc123", evidence="lineage:x"))
    renamed = attribute_running(table, Running("60", "55", 102.0, "runc", "/usr/local/bin/runc"), 0.0)  # prctl
    orphan = attribute_running(table, Running("60", "50", 103.0, "runc", "/usr/local/bin/runc"), 0.0)   # reparented
    assert renamed.key == orphan.key == "abc123" and not renamed.runtime and not orphan.runtime
    # Later pid 60 is a runc:[2:INIT] clone of a new runc create (pid 70, started after the old image): pid reuse.
    table.add(Proc("70", "50", 500.0, "runc", "/usr/sbin/runc", "fe:00", runtime=True))
    stage = attribute_running(table, Running("60", "70", 500.5, "runc:[2:INIT]", "/"), 0.0)
    assert stage.runtime and not stage.key


def test_a_container_process_that_executes_a_host_runtime_binary_stays_in_its_container() -> None:
    """After `chroot /host`, a container's first process can exec a binary it planted at /usr/local/bin/runc on the
    host disk: a host device and a runtime's install path, yet the same process, so still the container's."""
    table = _table()
    table.add(Proc("60", "50", 101.0, "sh", "/bin/sh", "00:27", ["sh"], container="abc123",
                   evidence="lineage:containerd-shim-runc-v2(pid 50)"))
    key, _, runtime = _attribute(table, "60", "50", 102.0, "runc", "/usr/local/bin/runc", "fe:00")[:3]
    assert (key, runtime) == ("abc123", False)
    # The runtime's own re-exec (runc init, then the container's entrypoint) still starts as the runtime.
    table.add(Proc("70", "50", 103.0, "runc", "/usr/sbin/runc", "fe:00", ["runc", "init"], runtime=True))
    assert _attribute(table, "71", "70", 103.1, "runc", "/usr/sbin/runc", "fe:00")[2] is True


# ---- exact identity from the runtime's own arguments (issue 18) ---------------------------------------------------
PODMAN_ID = "61818860c9ea1b8b299d06366bca70e017a89a13b55d8629c6574f715abc7a45"
CRUN_CREATE = ["/usr/bin/crun", "--log-format=json", "--log", "/run/containers/storage/overlay-containers/%s/userdata/"
               "oci-log" % PODMAN_ID, "create", "--bundle", "/var/lib/containers/storage/overlay-containers/%s/userdata"
               % PODMAN_ID, "--pid-file", "/run/containers/storage/overlay-containers/%s/userdata/pidfile" % PODMAN_ID,
               PODMAN_ID]


def _exec(table: HostLineage, pid: str, ppid: str, when: float, exe: str, dev: str, argv: List[str],
          title: Tuple[str, ...] = ()) -> Attribution:
    found = attribute_exec(table, Exec(pid, ppid, when, exe.rpartition("/")[2], exe, dev, argv, list(title), "0", "",
                                       "", "/"), 0.5)
    table.add(Proc(pid, ppid, when, exe.rpartition("/")[2], exe, dev, argv, container=found.key,
                   evidence=found.evidence, runtime=found.runtime, identity=found.identity, serves=found.serves))
    if found.key:
        table.container_seen(found.key, when, found.evidence, found.container_id, found.identity)
    return found


def test_runtime_calls_name_their_verb_and_container_whatever_the_options() -> None:
    assert runtime_call(CRUN_CREATE) == ("create", PODMAN_ID)
    assert runtime_call(["runc", "--root", "/run/runc", "exec", "-e", "A=1", "--detach", "cafe", "ps", "-ef"]) == \
        ("exec", "cafe")
    assert runtime_call(["runc", "--log=/l", "run", "-b", "/b", "beef"]) == ("run", "beef")
    assert runtime_call(["crun", "--version"]) == ("", "")
    assert shim_args("conmon", ["conmon", "--api-version", "1", "-c", "abc", "-u", "def"]) == ("abc", True)
    assert shim_args("containerd-shim-runc-v2", ["s", "-namespace", "k8s.io", "-id", "pod1"]) == ("pod1", False)
    assert shim_args("containerd-shim-runc-v2", ["s", "-namespace", "moby", "-id", "c1"]) == ("c1", True)


def test_a_daemonized_monitors_runtime_call_gives_its_clone_the_exact_id() -> None:
    # podman: conmon double-forks, so crun's parent (2048) is never seen; crun re-executes itself (execveat, "/"),
    # its clone (2050) prepares the container by mounts only, then executes the program reparented to 2048.
    table = HostLineage("h1")
    crun = _exec(table, "2049", "2048", 10.0, "/usr/bin/crun", "fe:00", CRUN_CREATE)
    assert crun.runtime and crun.serves == PODMAN_ID
    assert _exec(table, "2049", "2048", 10.01, "/", "fe:00", CRUN_CREATE).serves == PODMAN_ID
    assert attribute_running(table, Running("2050", "2049", 10.02, "crun", "/"), 0.5).runtime
    first = _exec(table, "2050", "2048", 10.05, "/bin/busybox", "00:2a", ["unshare", "-m", "true"],
                  tuple(CRUN_CREATE[:3]))
    assert (first.key, first.identity, first.container_id) == (PODMAN_ID, "exact", PODMAN_ID)
    assert first.evidence == "runtime:crun create(pid 2049) started it"
    cleanup = _exec(table, "2052", "2048", 10.2, "/usr/bin/podman", "fe:00", ["/usr/bin/podman", "container",
                                                                            "cleanup", PODMAN_ID])
    assert cleanup.key == "" and not cleanup.runtime  # the monitor's exit command is the host's


def test_the_first_exec_under_a_monitor_after_a_detached_exec_call_is_the_containers() -> None:
    table = HostLineage("h1")
    _exec(table, "2568", "2566", 20.0, "/usr/bin/crun", "fe:00", ["/usr/bin/crun", "exec", "--pid-file", "/p",
                                                                 "--process", "/q", "--detach", PODMAN_ID])
    late = attribute_exec(table, Exec("2570", "2566", 40.0, "sh", "/bin/sh", "00:2a", ["sh"], [], "0", "", "", "/"),
                          0.5)
    assert late.identity == "uncertain"  # past MONITOR_WINDOW: the call's process is not this one
    found = _exec(table, "2571", "2566", 20.01, "/bin/busybox", "00:2a", ["nsenter", "-t", "1"])
    assert (found.key, found.identity) == (PODMAN_ID, "exact") and "crun exec" in found.evidence
    host = _exec(table, "2574", "2566", 20.02, "/usr/bin/podman", "fe:00", ["/usr/bin/podman", "cleanup"])
    assert host.key == ""  # the monitor served one process: its later children are the host's


def test_a_device_names_a_container_only_from_its_start_to_the_next_start_on_it() -> None:
    table = HostLineage("h1")
    table.container_seen("c1", 5.0, "x", "c1", "exact")
    table.claim_device("00:2a", 10.0, "c1")
    orphan = _attribute(table, "30", "29", 11.0, dev="00:2a")
    assert (orphan.key, orphan.identity) == ("c1", "device")
    assert _attribute(table, "30", "29", 9.0, dev="00:2a", skew=0.0).identity == "uncertain"  # before c1 started
    # a container whose runtime call was not seen starts on the same number: its first process keeps crun's title
    started = _attribute(table, "40", "39", 20.0, dev="00:2a", title=("/usr/bin/crun", "--log-format=json"))
    assert started.identity == "uncertain" and started.key.startswith("runc-init:")
    later = _attribute(table, "50", "49", 21.0, dev="00:2a")
    assert later.key != "c1" and later.identity == "uncertain"


def test_uncertain_signs_never_give_two_orphans_one_key() -> None:
    table = HostLineage("h1")
    one, two = (_attribute(table, pid, ppid, 1.0, dev="00:31") for pid, ppid in (("5", "4"), ("7", "6")))
    assert one.key != two.key and {one.identity, two.identity} == {"uncertain"}
    label = "system_u:system_r:container_t:s0:c1,c2"
    assert _attribute(table, "5", "4", 1.0, dev="", subj=label).key != \
        _attribute(table, "7", "6", 1.0, dev="", subj=label).key
    pod = HostLineage("h1")
    pod.add(Proc("50", "1", 1.0, "containerd-shim", "/usr/bin/containerd-shim-runc-v2", "fe:00",
                 ["/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "sandbox1"], runtime=True))
    first, second = (_attribute(pod, pid, "50", 2.0) for pid in ("60", "61"))
    assert first.key != second.key and first.identity == "uncertain"


def test_identity_serves_and_device_owners_survive_the_persisted_state() -> None:
    table = HostLineage("h1")
    table.add(Proc("60", "50", 101.0, "sh", "/bin/sh", "00:27", container="c1", evidence="x", identity="exact"))
    table.add(Proc("70", "50", 101.0, "crun", "/usr/bin/crun", "fe:00", runtime=True, serves="c1"))
    table.container_seen("c1", 101.0, "x", "c1", "exact")
    table.claim_device("00:27", 101.0, "c1")
    again = HostLineage.from_json(json.loads(json.dumps(table.to_json(ttl=86400.0))))
    assert again.lookup("60", 200.0).identity == "exact" and again.lookup("70", 200.0).serves == "c1"
    assert again.device_owner("00:27", 200.0) == "c1" and again.containers["c1"]["identity"] == "exact"
    assert again.dropped == 0
