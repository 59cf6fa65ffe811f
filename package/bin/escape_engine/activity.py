"""What a Linux event means for the container it is attributed to: the items a chain may rest on.

Per container (attributed by escape_engine.lineage) it collects:

- triggers: the escape syscalls (ground.ESCAPE_SYSCALLS, minus the allowlist) of non-runtime container processes, the
  execve of escape tools, a container-side runtime client (`docker run --privileged ...` through a mounted socket) and
  writes to `release_agent` / `core_pattern` (file watches);
- results: host binaries (the host root device) executed by the container's lineage, children of the kernel usermode
  helper (a parent pid never seen, born after the container's mount or agent write, within HELPER_WINDOW seconds) and a
  new container started after a container-side runtime client.
"""
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, NamedTuple, Optional, Set, Tuple

from . import auditd
from .chains import Clusters, Item
from .ground import ESCAPE_SYSCALLS
from .lineage import (
    HELPER_WINDOW,
    Exec,
    HostLineage,
    Proc,
    Running,
    Trap,
    attribute_exec,
    attribute_running,
    basename,
    host_image_container,
    is_runc_init,
    sysmon_first_process,
)
from .scalars import is_ascii_digits
from .spoolline import Event

ESCAPE_TOOLS = frozenset(("nsenter", "unshare", "keyctl", "mount", "umount", "chroot", "debugfs", "pivot_root",
                          "insmod", "modprobe", "capsh", "switch_root", "docker", "podman", "nerdctl", "ctr",
                          "crictl", "kubectl"))
RUNTIME_CLIENTS = frozenset(("docker", "podman", "nerdctl", "ctr", "crictl", "kubectl"))
CLIENT_VERBS = frozenset(("run", "create", "exec", "debug"))
RISKY_CLIENT_MARKERS = ("--privileged", "--pid=host", "--pid", "/:/", "-v=/:", "docker.sock", "containerd.sock",
                        "crio.sock", "--cap-add", "seccomp=unconfined", "apparmor=unconfined", "--net=host",
                        "--userns=host", "--ipc=host")
AGENT_FILES = ("release_agent", "core_pattern")
_NS_FLAGS = ((0x10000000, "user"), (0x20000000, "pid"), (0x40000000, "net"), (0x20000, "mnt"), (0x8000000, "ipc"),
             (0x4000000, "uts"), (0x2000000, "cgroup"), (0x80, "time"))


class Client(NamedTuple):
    """A container-side runtime client run: a container it starts is its result."""
    time: float
    key: str
    risky: str
    argv: List[str]


def _ns_names(value: str) -> str:
    try:
        flags = int(value, 16)
    except ValueError:
        return value
    names = [name for bit, name in _NS_FLAGS if flags & bit]
    return "|".join(names) if names else value


class Activity:
    """Turns events, in replay order, into items of the containers' clusters."""

    def __init__(self, clusters: Clusters, table: Callable[[str], HostLineage], *, window: float, skew: float,
                 allowlist: FrozenSet[str], summary: Dict[str, int]) -> None:
        self.clusters = clusters
        self.table = table
        self.window = window
        self.skew = skew
        self.allowlist = allowlist
        self.summary = summary
        self.traps: Dict[str, List[Trap]] = {}
        self.clients: Dict[str, List[Client]] = {}
        self.started: Set[Tuple[str, str]] = set()

    def forget(self, host: str) -> None:
        """A host with no more events: its traps and clients can match nothing."""
        self.traps.pop(host, None)
        self.clients.pop(host, None)

    def prune(self, host: str, now: float) -> None:
        """Forget traps and clients too old to match."""
        if host in self.traps:
            self.traps[host] = [t for t in self.traps[host] if now - t.time <= HELPER_WINDOW]
        if host in self.clients:
            self.clients[host] = [c for c in self.clients[host] if now - c.time <= self.window]

    def reset(self) -> None:
        self.traps, self.clients = {}, {}

    # ---- events ------------------------------------------------------------------------------------------------
    def audit_event(self, event: Event) -> None:
        syscall = next((r for r in event.records if r.rtype == "SYSCALL"), None)
        if syscall is None:
            return
        fields = syscall.fields
        name = auditd.syscall_name(syscall)
        pid = fields.get("pid", "")
        ppid = fields.get("ppid", "")
        comm = auditd.decode_string(fields.get("comm", ""))
        exe = auditd.decode_string(fields.get("exe", ""))
        success = fields.get("success", "") in ("yes", "1")
        paths = [r for r in event.records if r.rtype == "PATH"]
        table = self.table(event.host)
        if name in ("execve", "execveat"):
            if not success:
                return
            argv = auditd.execve_argv([r for r in event.records if r.rtype == "EXECVE"])  # argv split over records
            title_record = next((r for r in event.records if r.rtype == "PROCTITLE"), None)
            title = auditd.proctitle(title_record) if title_record is not None else []
            item0 = next((p for p in paths if p.fields.get("item") == "0"), None)
            dev = item0.fields.get("dev", "") if item0 is not None else ""
            explicit = ""
            cwd_record = next((r for r in event.records if r.rtype == "CWD"), None)
            cwd = auditd.decode_string(cwd_record.fields.get("cwd", "")) if cwd_record is not None else ""
            for record in event.records:
                if record.rtype == "CONTAINER_ID":
                    explicit = record.fields.get("contid", "")
            self.exec(event, table, Exec(pid, ppid, event.time, comm, exe, dev, argv, title, fields.get("uid", ""),
                                         fields.get("subj", ""), explicit, cwd))
            return
        running = Running(pid, ppid, event.time, comm, exe)
        if name in ESCAPE_SYSCALLS:
            self.syscall(event, table, running, name, success, fields, paths)
            return
        for path in paths:
            target = auditd.decode_string(path.fields.get("name", ""))
            if target.endswith(AGENT_FILES):
                self.agent_write(event, table, running, target)
                return

    def sysmon_event(self, event: Event) -> None:
        data = event.sysmon or {}
        table = self.table(event.host)
        if data.get("EventID") == "1":
            image = data.get("Image", "")
            pid, ppid = data.get("ProcessId", ""), data.get("ParentProcessId", "")
            title = sysmon_first_process(table, ppid, data.get("ParentImage", ""), event.time, self.skew)
            self.exec(event, table, Exec(pid, ppid, event.time, basename(image), image, "",
                                         data.get("CommandLine", "").split(), title, data.get("User", ""), "", "",
                                         data.get("CurrentDirectory", "")))
            if image.startswith("/host/"):
                key = host_image_container(table, pid, event.time, self.skew)
                self.clusters.add(event.host, key, Item(event.time, "host_exec", list(event.cds),
                                                        "%s ran %s from the host root mounted under /host" % (
                                                            pid, image), True, image,
                                                        source=event.source, sourcetype=event.sourcetype))
        elif data.get("EventID") == "11":
            target = data.get("TargetFilename", "")
            if target.endswith(AGENT_FILES):
                image = data.get("Image", "")
                self.agent_write(event, table, Running(data.get("ProcessId", ""), "", event.time, basename(image),
                                                       image), target)

    # ---- what a process did -----------------------------------------------------------------------------------
    def exec(self, event: Event, table: HostLineage, process: Exec) -> None:
        when, pid, exe, dev, argv = process.time, process.pid, process.exe, process.dev, process.argv
        found = attribute_exec(table, process, self.skew, self.traps.get(table.host, ()))
        key, evidence = found.key, found.evidence
        proc = Proc(pid, process.ppid, when, process.comm, exe, dev, argv, process.uid, key, evidence, found.runtime,
                    identity=found.identity, serves=found.serves)
        proc.cds = list(event.cds)
        table.add(proc)
        if not key:
            table.note_host_dev(dev, when)
            return
        table.container_seen(key, when, evidence, found.container_id, found.identity)
        labels: Dict[str, Any] = {"source": event.source, "sourcetype": event.sourcetype, "attribution": evidence,
                                  "identity": found.identity}
        if is_runc_init(process.title) and (table.host, key) not in self.started:
            self.started.add((table.host, key))
            self._child_start(event, table, key, argv)
        command = " ".join(argv)[:200] or exe
        if table.is_host_dev(dev):
            spawner = table.lookup(process.ppid, when, self.skew)
            kind = "helper_exec" if spawner is not None and spawner.helper else "host_exec"
            self.clusters.add(table.host, key, Item(when, kind, list(event.cds),
                                                    "pid %s executed the host binary %s (dev %s): %s"
                                                    % (pid, exe, dev, command), True, exe, **labels))
        tool = basename(process.comm) if basename(process.comm) in ESCAPE_TOOLS else basename(exe)
        if tool in ESCAPE_TOOLS:
            if tool in RUNTIME_CLIENTS and any(v in argv for v in CLIENT_VERBS):
                risky = [a for a in argv if a.startswith(RISKY_CLIENT_MARKERS) or any(
                    m in a for m in ("/:/", "docker.sock", "containerd.sock"))]
                self.clusters.add(table.host, key, Item(when, "socket_client", list(event.cds),
                                                        "pid %s ran the runtime client %s" % (pid, command),
                                                        True, tool, " ".join(risky), **labels))
                self.clients.setdefault(table.host, []).append(Client(when, key, " ".join(risky), argv))
            else:
                self.clusters.add(table.host, key, Item(when, "tool", list(event.cds),
                                                        "pid %s executed %s" % (pid, command), True, tool, **labels))

    def _child_start(self, event: Event, table: HostLineage, key: str, argv: List[str]) -> None:
        """Link a container's first process to a container-side client whose command line ends with its argv."""
        if not argv:
            return
        for client in reversed(self.clients.get(table.host, [])):
            if client.key == key or not 0.0 <= event.time - client.time <= self.window:
                continue
            if len(client.argv) <= len(argv) or client.argv[-len(argv):] != argv:
                continue
            self.clusters.add(table.host, client.key, Item(
                event.time, "child_start", list(event.cds),
                "a new container (%s) started running %s, as the container-side client asked (%s)" % (
                    key[:24], " ".join(argv)[:120], client.risky or "-"), True, key,
                source=event.source, sourcetype=event.sourcetype))
            self.clients[table.host] = [c for c in self.clients[table.host] if c.time != client.time]
            return

    def syscall(self, event: Event, table: HostLineage, running: Running, name: str, success: bool,
                fields: Mapping[str, str], paths: List[auditd.AuditRecord]) -> None:
        found = attribute_running(table, running, self.skew)
        if found.runtime:
            self.summary["runtime_suppressed"] += 1
            return
        if not found.key:
            return
        if name in self.allowlist:
            self.summary["allowlisted"] += 1
            return
        proc = table.lookup(running.pid, running.time, self.skew)
        detail = self._detail(name, fields, paths, table)
        cds = list(event.cds)
        if proc is not None:
            for cd in proc.cds:
                if cd not in cds:
                    cds.append(cd)
        text = "%s %s(pid %s, %s) %s%s" % (name, "succeeded" if success else "failed", running.pid, running.comm,
                                            detail, "" if success else " exit=%s" % fields.get("exit", ""))
        self.clusters.add(table.host, found.key, Item(running.time, "syscall", cds, text.strip(), success, name,
                                                      detail, source=event.source, sourcetype=event.sourcetype,
                                                      attribution=found.evidence, identity=found.identity))
        if name == "mount" and success and is_ascii_digits(running.pid) and self._cgroup_mount(proc, detail):
            self.traps.setdefault(table.host, []).append(Trap(running.time, int(running.pid), found.key))

    def agent_write(self, event: Event, table: HostLineage, running: Running, target: str) -> None:
        found = attribute_running(table, running, self.skew)
        if found.runtime or not found.key:
            return
        self.clusters.add(table.host, found.key, Item(event.time, "agent_write", list(event.cds),
                                                      "pid %s (%s) wrote %s" % (running.pid, running.comm, target),
                                                      True, "write", target, source=event.source,
                                                      sourcetype=event.sourcetype, identity=found.identity))
        if is_ascii_digits(running.pid):
            self.traps.setdefault(table.host, []).append(Trap(event.time, int(running.pid), found.key))

    @staticmethod
    def _cgroup_mount(proc: Optional[Proc], detail: str) -> bool:
        """A cgroup (v1) mount arms the release_agent trap: the mounting command names cgroup, or the target does."""
        return "cgroup" in detail or (proc is not None and any("cgroup" in a for a in proc.argv))

    @staticmethod
    def _detail(name: str, fields: Mapping[str, str], paths: List[auditd.AuditRecord], table: HostLineage) -> str:
        a0 = fields.get("a0", "")
        a1 = fields.get("a1", "")
        if name == "unshare":
            return "flags=%s" % _ns_names(a0)
        if name == "setns":
            return "nstype=%s" % (_ns_names(a1) if a1 != "0" else "any")
        if name in ("keyctl",):
            return "op=%s key=%s" % (a0, a1)
        parts = []
        for path in paths:
            pf = path.fields
            target = auditd.decode_string(pf.get("name", ""))
            mode = pf.get("mode", "")
            if mode.startswith(("060", "block")):
                parts.append("block_device=%s(rdev %s)" % (target, pf.get("rdev", "")))
            elif pf.get("inode") == "2" and table.is_host_dev(pf.get("dev", "")):
                parts.append("host_root=%s(dev %s inode 2)" % (target or "-", pf.get("dev", "")))
            elif target and target != "(null)" and pf.get("item") == "0":
                parts.append("path=%s" % target)
        return " ".join(parts)
