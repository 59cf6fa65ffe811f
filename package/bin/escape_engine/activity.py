"""What a Linux event means for the container it is attributed to: the items a chain may rest on.

Per container (attributed by escape_engine.lineage) it collects:

- triggers: the escape syscalls (ground.ESCAPE_SYSCALLS, minus the allowlist) of non-runtime container processes, the
  execve of escape tools, a container-side runtime client (`docker run --privileged ...` through a mounted socket) and
  writes to `release_agent` / `core_pattern` (file watches);
- results: host binaries (the host root device) executed by the container's lineage, the kernel's usermode helpers
  tied to the container (escape_engine.lineage.helper: a helper that used a path in the container's file system, or
  a parent pid never seen, born after the container's mount, agent write or crash, within HELPER_WINDOW seconds) and
  their children, and a new container started after a container-side runtime client;
- the family calls of escape_engine.families (device nodes, block-device opens, writes into other processes, eBPF
  program loads) as syscall items, and a container process's crash (ANOM_ABEND: a core_pattern pipe runs then).
"""
from typing import Any, Callable, Dict, FrozenSet, List, NamedTuple, Optional, Set, Tuple

from . import families
from .auditfacts import (
    EXEC_SYSCALLS,
    FAMILY_CALLS,
    OPEN_CALLS,
    SYSMON_FILE,
    SYSMON_PROCESS,
    AuditFacts,
    PathItem,
    agent_target,
    facts_of,
    is_helper_call,
    runtime_socket,
    sysmon_matters,
)
from .chains import Clusters, Item
from .ground import ESCAPE_SYSCALLS
from .lineage import (
    HELPER_WINDOW,
    Attribution,
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
from .lineage.helper import KTHREADD, first_storage_path, helper_key, mark_helper, note_layer
from .scalars import is_ascii_digits
from .spoolline import Event

ESCAPE_TOOLS = frozenset(("nsenter", "unshare", "keyctl", "mount", "umount", "chroot", "debugfs", "pivot_root",
                          "insmod", "modprobe", "capsh", "switch_root", "docker", "podman", "nerdctl", "ctr",
                          "crictl", "kubectl"))
RUNTIME_CLIENTS = frozenset(("docker", "podman", "nerdctl", "ctr", "crictl", "kubectl"))
CLIENT_VERBS = frozenset(("run", "create", "exec", "debug"))
# Verbs that start a container created before (`ctr task start <id>`, `crictl start <id>`, `docker start <id>`):
# the client names the new container's id.
START_VERBS = frozenset(("start",))
# Verbs of a client that only reads (a monitoring container's `ctr version`, `ctr containers ls`, `docker ps`, `crictl
# ps`, `crictl pods`, `kubectl get`): a runtime client that asks for no container and names one of these is no escape
# tool.
READ_VERBS = frozenset(("version", "info", "ls", "list", "ps", "pods", "get", "describe", "inspect", "logs", "stats",
                        "top", "events"))
RISKY_CLIENT_MARKERS = ("--privileged", "--pid=host", "/:/", "-v=/:", "docker.sock", "containerd.sock",
                        "crio.sock", "--cap-add", "seccomp=unconfined", "apparmor=unconfined", "--net=host",
                        "--userns=host", "--ipc=host", "--net-host", "--with-ns", "src=/,", "source=/,")
# Inside an argument: a host-root bind (docker `-v /:/host`, ctr `--mount type=bind,src=/,dst=/host`) or a runtime
# socket handed on.
RISKY_CLIENT_PARTS = ("/:/", "docker.sock", "containerd.sock", "crio.sock", ",src=/,", ",source=/,")
CLIENT_ID_MIN = 12  # a container id prefix a client may name (docker and crictl accept unique prefixes of 12 hex)
UNNAMED_MIN_ARGS = 2     # see _asks_for
CLIENTS_PER_HOST = 4096  # requests held per host within the window (`npm run ...` is shaped like one too)
_NS_FLAGS = ((0x10000000, "user"), (0x20000000, "pid"), (0x40000000, "net"), (0x20000, "mnt"), (0x8000000, "ipc"),
             (0x4000000, "uts"), (0x2000000, "cgroup"), (0x80, "time"))


class Client(NamedTuple):
    """A container-side runtime client run: a container it starts is its result. `item` is the socket_client item
    already added (a client known by its request), else None: a command shaped like a client request whose file name
    says nothing, which becomes a trigger only when a container it asked for starts."""
    time: float
    key: str
    risky: str
    argv: List[str]
    verb: int            # position of the create or start verb in argv
    item: Optional[Item]
    pid: str


def client_request(argv: List[str]) -> Optional[Tuple[int, List[str]]]:
    """Where a command line asks a runtime for a container (its first create or start verb) and the options that
    give the container host access; None when it asks for none. The shape of the request, not the client's file name:
    a docker, ctr or nerdctl client copied to any name still needs its verb and options, and a container it asks for
    runs the command that ends its argv."""
    verb = next((i for i, a in enumerate(argv) if i > 0 and (a in CLIENT_VERBS or a in START_VERBS)), -1)
    if verb < 0:
        return None
    risky = [a for a in argv[verb + 1:] if a == "--pid" or a.startswith(RISKY_CLIENT_MARKERS)
             or any(m in a for m in RISKY_CLIENT_PARTS)]
    return verb, risky


def _opens_for_writing(facts: AuditFacts) -> bool:
    """open's flags are its a1, openat's a2 (openat2 passes them in a struct: read as not writing)."""
    try:
        flags = int(facts.a1 if facts.syscall == "open" else facts.a2, 16) if facts.syscall != "openat2" else 0
    except ValueError:
        return False
    return bool(flags & 0o3 or flags & 0o100)  # O_WRONLY, O_RDWR, O_CREAT


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
        facts = event.facts if event.facts is not None else facts_of(event.records)
        if not facts.syscall:
            if facts.abend:
                self.crash(event, facts)
            return
        name, pid, ppid, success = facts.syscall, facts.pid, facts.ppid, facts.success
        table = self.table(event.host)
        if name == "mount":
            for path in facts.paths:
                note_layer(table, path.name, path.dev, event.time)
        if is_helper_call(facts):
            verb = ("wrote" if _opens_for_writing(facts) else "opened") if name in OPEN_CALLS else \
                "ran" if name in EXEC_SYSCALLS else name
            self.helper_call(event, table, Running(pid, ppid, event.time, facts.comm, facts.exe), verb, facts)
            if name not in EXEC_SYSCALLS:
                return
        if name in EXEC_SYSCALLS:
            if not success:
                return
            self.exec(event, table, Exec(pid, ppid, event.time, facts.comm, facts.exe, facts.dev, facts.argv,
                                         facts.title, facts.uid, facts.subj, facts.contid, facts.cwd))
            return
        running = Running(pid, ppid, event.time, facts.comm, facts.exe)
        if name in ESCAPE_SYSCALLS:
            self.syscall(event, table, running, facts)
            return
        if name in FAMILY_CALLS:
            self.family_call(event, table, running, facts)
            return
        socket = runtime_socket(facts)
        if socket:
            self.socket_connect(event, table, running, socket)
            return
        target = agent_target(facts)
        if target:
            self.agent_write(event, table, running, target)

    def sysmon_event(self, event: Event) -> None:
        data = event.sysmon or {}
        table = self.table(event.host)
        if data.get("EventID") == SYSMON_PROCESS:
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
            if ppid == KTHREADD:
                self.helper_call(event, table, Running(pid, ppid, event.time, basename(image), image), "ran", None,
                                 [image] + data.get("CommandLine", "").split(), data.get("CurrentDirectory", ""))
        elif data.get("EventID") == SYSMON_FILE:
            target = data.get("TargetFilename", "")
            if sysmon_matters(data):
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
        spawner = table.lookup(process.ppid, when, self.skew)
        helper_child = spawner is not None and spawner.helper and spawner.container == key
        if table.is_host_dev(dev) or helper_child:  # a helper's child runs on the host, whatever its device
            kind = "helper_exec" if helper_child else "host_exec"
            self.clusters.add(table.host, key, Item(when, kind, list(event.cds),
                                                    "pid %s executed the host binary %s (dev %s): %s"
                                                    % (pid, exe, dev, command), True, exe, **labels))
        tool = basename(process.comm) if basename(process.comm) in ESCAPE_TOOLS else basename(exe)
        request = client_request(argv)
        named = tool in RUNTIME_CLIENTS and request is not None and argv[request[0]] in CLIENT_VERBS
        if named or (request is not None and request[1]):
            # a named client's request, or any command asking for a container with host access: a trigger now
            assert request is not None
            risky = " ".join(request[1])
            item = Item(when, "socket_client", list(event.cds), "pid %s ran the runtime client %s" % (pid, command),
                        True, tool, risky, **labels)
            self.clusters.add(table.host, key, item)
            self.clients.setdefault(table.host, []).append(Client(when, key, risky, argv, request[0], item, pid))
            return
        if request is not None:
            # shaped like a plain request (`... run image cmd`, `... task start id`): a trigger once its container
            # starts (_child_start)
            held = self.clients.setdefault(table.host, [])
            held.append(Client(when, key, "", argv, request[0], None, pid))
            if len(held) > CLIENTS_PER_HOST:
                del held[:len(held) - CLIENTS_PER_HOST]
        if tool in ESCAPE_TOOLS and not (tool in RUNTIME_CLIENTS and request is None and READ_VERBS & set(argv[1:])):
            self.clusters.add(table.host, key, Item(when, "tool", list(event.cds),
                                                    "pid %s executed %s" % (pid, command), True, tool, **labels))

    def _child_start(self, event: Event, table: HostLineage, key: str, argv: List[str]) -> None:
        """Link a container's first process to the container-side client that asked for it: a create request whose
        command line ends, after its verb, with the new container's argv, or a start request that names the new
        container's id (or a prefix of at least CLIENT_ID_MIN characters)."""
        if not argv:
            return
        for client in reversed(self.clients.get(table.host, [])):
            if client.key == key or not 0.0 <= event.time - client.time <= self.window:
                continue
            if not (_asks_for(client, argv) or _names(client, key)):
                continue
            if client.item is None:  # the request's container started: the client is a trigger after all
                command = " ".join(client.argv)[:200]
                self.clusters.add(table.host, client.key, Item(
                    client.time, "socket_client", [], "pid %s ran %s, a runtime client by what it asked for" % (
                        client.pid, command), True, basename(client.argv[0]), "", source=event.source,
                    sourcetype=event.sourcetype))
            self.clusters.add(table.host, client.key, Item(
                event.time, "child_start", list(event.cds),
                "a new container (%s) started running %s, as the container-side client asked (%s)" % (
                    key, " ".join(argv)[:120], client.risky or "-"), True, key,
                source=event.source, sourcetype=event.sourcetype))
            self.clients[table.host] = [c for c in self.clients[table.host] if c is not client]
            return

    def _container_call(self, table: HostLineage, running: Running) -> Optional[Attribution]:
        """The attribution of a call by a container process; None for the runtime's own calls (counted) and for the
        host's."""
        found = attribute_running(table, running, self.skew)
        if found.runtime:
            self.summary["runtime_suppressed"] += 1
            return None
        return found if found.key else None

    def syscall(self, event: Event, table: HostLineage, running: Running, facts: AuditFacts) -> None:
        name, success = facts.syscall, facts.success
        found = self._container_call(table, running)
        if found is None:
            return
        if name in self.allowlist:
            self.summary["allowlisted"] += 1
            return
        proc = table.lookup(running.pid, running.time, self.skew)
        detail = self._detail(facts, table)
        self._call_item(event, table, running, found, facts, detail)
        if name == "mount" and success and is_ascii_digits(running.pid) and self._cgroup_mount(proc, detail):
            self.traps.setdefault(table.host, []).append(Trap(running.time, int(running.pid), found.key))

    def family_call(self, event: Event, table: HostLineage, running: Running, facts: AuditFacts) -> None:
        """A call of escape_engine.families by a container process, when it means something for its container."""
        found = self._container_call(table, running)
        if found is None:
            return
        detail = families.call_detail(facts, table, found.key, running.time, self.skew)
        if detail is not None:
            self._call_item(event, table, running, found, facts, detail)

    def _call_item(self, event: Event, table: HostLineage, running: Running, found: Attribution,
                   facts: AuditFacts, detail: str) -> None:
        name, success, key = facts.syscall, facts.success, found.key
        proc = table.lookup(running.pid, running.time, self.skew)
        cds = list(event.cds)
        if proc is not None:
            for cd in proc.cds:
                if cd not in cds:
                    cds.append(cd)
        text = "%s %s(pid %s, %s) %s%s" % (name, "succeeded" if success else "failed", running.pid, running.comm,
                                            detail, "" if success else " exit=%s" % facts.exit)
        self.clusters.add(table.host, key, Item(running.time, "syscall", cds, text.strip(), success, name, detail,
                                                source=event.source, sourcetype=event.sourcetype,
                                                attribution=found.evidence, identity=found.identity))

    def socket_connect(self, event: Event, table: HostLineage, running: Running, socket: str) -> None:
        """A container process reached a runtime's API socket (the kernel's connect record): a command of it shaped
        like a plain container request (held until its container starts) is a runtime client by that fact, whatever
        its file name: a trigger now. A connect without such a request (listing containers, a monitoring agent)
        adds nothing: what it asked for is not in the record."""
        found = attribute_running(table, running, self.skew)
        if found.runtime or not found.key:
            return
        held = self.clients.get(table.host, [])
        client = next((c for c in reversed(held) if c.item is None and c.pid == running.pid and c.key == found.key
                       and 0.0 <= running.time - c.time <= self.window), None)
        if client is None:
            return
        command = " ".join(client.argv)[:200]
        item = Item(running.time, "socket_client", list(event.cds), "pid %s (%s) connected to the runtime socket %s "
                    "and asked: %s" % (running.pid, running.comm, socket, command), True,
                    basename(client.argv[0]) if client.argv else running.comm, "connect:" + socket,
                    source=event.source, sourcetype=event.sourcetype, attribution=found.evidence,
                    identity=found.identity)
        self.clusters.add(table.host, found.key, item)
        held[held.index(client)] = client._replace(item=item, risky=client.risky or "connect:" + socket)

    def crash(self, event: Event, facts: AuditFacts) -> None:
        """A container process dumped core: the kernel runs a core_pattern pipe program now, which arms the trap
        for an unseen helper's children (lineage.attribution.helper_trap) and is evidence of the chain."""
        table = self.table(event.host)
        running = Running(facts.pid, "", event.time, facts.comm, facts.exe)
        found = attribute_running(table, running, self.skew)
        if found.runtime or not found.key:
            return
        self.clusters.add(table.host, found.key, Item(event.time, "crash", list(event.cds), "pid %s (%s) crashed "
                                                      "(signal %s): the kernel runs a core_pattern pipe program" % (
                                                          running.pid, running.comm, facts.abend),
                                                      True, "crash", source=event.source,
                                                      sourcetype=event.sourcetype))
        if is_ascii_digits(running.pid):
            self.traps.setdefault(table.host, []).append(Trap(event.time, int(running.pid), found.key))

    def helper_call(self, event: Event, table: HostLineage, running: Running, name: str,
                    facts: Optional[AuditFacts], names: Optional[List[str]] = None, cwd: str = "/") -> None:
        """A call of a kernel usermode helper (parent kthreadd, root): tied to a container when it used a path in
        the container's file system (lineage.helper), else recorded as the host's own helper, whose children are
        the host's. `facts` is the audit call's (None for Sysmon, whose `names` and `cwd` are given)."""
        paths = facts.paths if facts is not None else []
        if facts is not None:
            cwd = facts.cwd or "/"
            names = [running.exe] + [p.name for p in paths if p.nametype != "PARENT"] + facts.title
        found = first_storage_path(names or [], cwd)
        if found is None:
            mark_helper(table, running.pid, running.ppid, running.time, running.comm, running.exe, "", "")
            return
        dev = next((p.dev for p in paths if p.name.startswith(found.path)), "")
        key = helper_key(table, found, dev)
        evidence = "usermode_helper:pid %s (parent kthreadd, root) used %s" % (running.pid, found.path)
        mark_helper(table, running.pid, running.ppid, running.time, running.comm, running.exe, key, evidence)
        table.container_seen(key, running.time, evidence)
        self.clusters.add(table.host, key, Item(running.time, "helper_exec", list(event.cds),
                                                "the kernel's usermode helper pid %s (%s, parent kthreadd, root, "
                                                "host namespaces) %s %s in the container's file system" % (
                                                    running.pid, running.comm, name, found.path),
                                                True, found.path, source=event.source, sourcetype=event.sourcetype,
                                                attribution=evidence))

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
    def _detail(facts: AuditFacts, table: HostLineage) -> str:
        name, a0, a1 = facts.syscall, facts.a0, facts.a1
        if name == "unshare":
            return "flags=%s" % _ns_names(a0)
        if name == "setns":
            return "nstype=%s" % (_ns_names(a1) if a1 != "0" else "any")
        if name in ("keyctl",):
            return "op=%s key=%s" % (a0, a1)
        return " ".join(filter(None, (_path_detail(path, table) for path in facts.paths)))


def _path_detail(path: PathItem, table: HostLineage) -> str:
    if path.mode.startswith(("060", "block")):
        return "block_device=%s(rdev %s)" % (path.name, path.rdev)
    if path.inode == "2" and table.is_host_dev(path.dev):
        return "host_root=%s(dev %s inode 2)" % (path.name or "-", path.dev)
    if path.name and path.name != "(null)" and path.item == "0":
        return "path=%s" % path.name
    return ""


def _asks_for(client: Client, argv: List[str]) -> bool:
    """A create request whose arguments after the verb end with `argv` (the image or options come first). A request
    that is no trigger of its own (`npm run build -- sh` is shaped like one) must name at least UNNAMED_MIN_ARGS
    arguments of the command: a one-word command (`sh`) is the first command of too many containers."""
    if client.argv[client.verb] not in CLIENT_VERBS:
        return False
    if client.item is None and len(argv) < UNNAMED_MIN_ARGS:
        return False
    asked = client.argv[client.verb + 1:]
    return len(asked) > len(argv) and asked[-len(argv):] == argv


def _names(client: Client, key: str) -> bool:
    """A start request naming the container `key` (its id, or a prefix docker and crictl accept)."""
    if client.argv[client.verb] not in START_VERBS:
        return False
    return any(a == key or (len(a) >= CLIENT_ID_MIN and key.startswith(a)) for a in client.argv[client.verb + 1:])
