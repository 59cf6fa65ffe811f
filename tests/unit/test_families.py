"""The escape families' building blocks on small hand-made records (the real shapes are lab-run2's, replayed in
test_lab_run2.py): container file-system paths of the kernel's usermode helpers, device numbers of mknod, and a
helper seen only by Sysmon for Linux (its own start, which audit never records)."""
from typing import Dict, List, Optional

import pytest

from escape_engine import auditd
from escape_engine.auditfacts import facts_of
from escape_engine.correlate import run
from escape_engine.families import call_detail
from escape_engine.lineage import HostLineage, Proc
from escape_engine.lineage.helper import storage_path
from tests.unit.test_correlate import _sysmon

LAYER = "c5274be4d433d3075e33b2aedc292e5bfb4312291b406219b2545cd584fc8652"


@pytest.mark.parametrize("name, cwd, layer, container", [
    ("/var/lib/docker/overlay2/%s/diff/cmd" % LAYER, "/", "overlay:" + LAYER, ""),
    ("/var/lib/docker/overlay2/%s/merged/tmp/x" % LAYER, "/", "overlay:" + LAYER, ""),
    ("/var/lib/docker/overlay2/%s-init/diff/etc/hosts" % LAYER, "/", "overlay:" + LAYER, ""),
    ("/var/lib/containers/storage/overlay/%s/diff/cmd" % LAYER, "/", "overlay:" + LAYER, ""),   # podman, CRI-O
    ("/data/docker/overlay2/%s/diff/cmd" % LAYER, "/", "overlay:" + LAYER, ""),                # another data-root
    ("%s/diff/cmd" % LAYER, "/var/lib/docker/overlay2", "overlay:" + LAYER, ""),              # relative to cwd
    ("/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/42/fs/cmd", "/", "snapshot:42", ""),
    ("/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc123/rootfs/cmd", "/", "", "abc123"),
])
def test_container_file_system_paths(name: str, cwd: str, layer: str, container: str) -> None:
    found = storage_path(name, cwd)
    assert found is not None and (found.layer, found.container_id) == (layer, container)


@pytest.mark.parametrize("name", [
    "/usr/lib/systemd/systemd-coredump", "/var/lib/docker/overlay2/l/ABCDEF/cmd",
    "/var/lib/docker/overlay2/%s/work/x" % LAYER, "/var/lib/docker/overlay2/%s/diff/../../../../../usr/bin/id" % LAYER,
    "(null)", "",
])
def test_host_paths_are_no_container_file_system(name: str) -> None:
    assert storage_path(name) is None


def _record(rtype: str, fields: Dict[str, str]) -> auditd.AuditRecord:
    """A record written as the kernel writes it: strings quoted, numbers and enumerations bare."""
    text = " ".join(('%s="%s"' if key in ("name", "ocomm") else "%s=%s") % (key, value) for key, value in fields.items())
    return auditd.AuditRecord(rtype, "100.000", "1", "", text, "")


def _syscall(*paths: Dict[str, str]) -> List[auditd.AuditRecord]:
    return [_record("SYSCALL", {"pid": "1"})] + [_record("PATH", path) for path in paths]


def _detail(name: str, args: Dict[str, str], records: List[auditd.AuditRecord], table: HostLineage) -> Optional[str]:
    """call_detail of the facts the records give, for the call `name` with the arguments `args`."""
    return call_detail(facts_of(records)._replace(syscall=name, **args), table, "k", 100.0, 2.0)


def test_mknod_keeps_block_and_memory_devices_only() -> None:
    table = HostLineage("h")
    created = {"name": "/tmp/hd", "nametype": "CREATE"}
    block = _syscall(created)
    # mknodat(AT_FDCWD, path, S_IFBLK|0644, makedev(7, 0)): a2 = 61a4, a3 = 700 (lab-run2 E12)
    assert _detail("mknodat", {"a2": "61a4", "a3": "700"}, block, table) == \
        "block_node=/tmp/hd(7:0)"
    assert _detail("mknod", {"a1": "21a4", "a2": "101"}, block, table) == \
        "memory_node=/tmp/hd(mem 1:1)"
    assert _detail("mknod", {"a1": "21a4", "a2": "103"}, block, table) is None  # null
    # a minor above 255 (an NVMe partition): new_encode_dev(259, 300) = 0x2c | 259 << 8 | 0x100 << 12 = 0x11032c
    assert _detail("mknodat", {"a2": "6180", "a3": "11032c"}, block, table) == \
        "block_node=/tmp/hd(259:300)"


def test_ptrace_of_a_process_in_the_callers_own_pid_namespace_is_no_injection() -> None:
    table = HostLineage("h")
    table.add(Proc("12183", "1", 90.0, "sleep", "/usr/bin/sleep", "fe:00"))
    own = _syscall() + [_record("OBJ_PID", {"opid": "12534", "ocomm": "families"})]
    # lab-run2 B19: a1 = 8 (the child's pid in the container's namespace), OBJ_PID 12534 (the host's): inside
    assert _detail("ptrace", {"a0": "10", "a1": "8"}, own, table) is None
    host = _syscall() + [_record("OBJ_PID", {"opid": "12183", "ocomm": "families"})]
    # lab-run2 E13: --pid=host, a1 = 0x2f97 = 12183 = OBJ_PID: a host process
    assert _detail("ptrace", {"a0": "10", "a1": "2f97"}, host, table) == \
        "target=pid 12183(families) in the host request=attach"
    assert _detail("process_vm_writev", {"a0": "2f97"}, _syscall(), table) == \
        "target=pid 12183(sleep) in the host"
    assert _detail("process_vm_writev", {"a0": "8"}, _syscall(), table) is None


def test_a_usermode_helper_seen_only_by_sysmon_is_an_escape_of_its_layer() -> None:
    helper = "/var/lib/docker/overlay2/%s/diff/cmd" % LAYER
    events = [_sysmon(1, "2026-11-29 03:43:47.100", 9001, 2, helper, "", helper + " 4711"),
              _sysmon(1, "2026-11-29 03:43:47.120", 9002, 9001, "/usr/bin/id", helper, "id")]
    records = [{"_raw": raw, "host": "node1", "_cd": "1:%d" % i, "_time": "1795923827.1", "sourcetype": "sysmon:linux"}
               for i, raw in enumerate(events)]
    rows = list(run(list(reversed(records)), report="all"))
    assert [(r["escape_finding"], r["escape_severity"]) for r in rows] == [("usermode_helper_host_exec", "critical")]
    assert rows[0]["escape_container"] == "layer:overlay:%s@node1" % LAYER
    assert set(rows[0]["escape_evidence_cd"]) == {"1:0", "1:1"}


def test_a_host_crash_handler_started_by_kthreadd_is_the_hosts() -> None:
    handler = "/usr/lib/systemd/systemd-coredump"
    events = [_sysmon(1, "2026-11-29 03:43:47.100", 9001, 2, handler, "", handler),
              _sysmon(1, "2026-11-29 03:43:47.120", 9002, 9001, "/usr/bin/id", handler, "id")]
    records = [{"_raw": raw, "host": "node1", "_cd": "1:%d" % i, "_time": "1795923827.1", "sourcetype": "sysmon:linux"}
               for i, raw in enumerate(events)]
    assert list(run(list(reversed(records)), report="all")) == []
