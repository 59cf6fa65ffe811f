"""Every rule that decides which container a Linux process belongs to, with the evidence that decided it and how sure
it is (`identity`, one of ground.CONTAINER_IDENTITIES).

A new process image (an execve, `attribute_exec`) is attributed, in order, by: an explicit container field, the
runtime call that started it (the container id a runc / crun `create`, `run` or `exec` names, carried to the
process that call forked, whichever process it is reparented to: a daemonized conmon is never seen), lineage through
a container runtime (containerd-shim, conmon, runc / crun exec), inheritance from an attributed parent, its own
previous image (exec without fork), the container's first process (stale `runc init` PROCTITLE), an LSM container
label, the executable's anonymous (overlay) device or a `/host/...` image path, and finally the kernel's usermode
helper (an unseen parent born just after a container armed a trap). A process seen only by what it does
(`attribute_running`: a syscall, a file write) keeps the attribution of its image, else inherits its parent's.

Identity: a runtime's arguments (or the kernel's audit container id) are exact. An anonymous device is the
container's only while it is known to be: from the first process of a container known exactly that ran from it
(HostLineage.claim_device) to the next such container start on the same, reused, device number. Without a known
owner, and for the other weak signs, the identity is uncertain, and the key names the unseen parent as well, so that
two containers never share a key (nor a chain) on a weak sign alone.

One container has one key whichever rule found it: `container_key_of_shim` names a container known only by its shim,
whether the shim was seen starting in this search or is known from the persisted state.
"""
from typing import List, NamedTuple, Optional, Sequence

from ..ground import CONTAINER_IDENTITIES
from ..scalars import is_ascii_digits
from .runtimeargs import RUNTIME_CLIS, SHIMS, STARTING_VERBS, container_id_from_argv, runtime_call, shim_args
from .table import HostLineage, Proc, anonymous_device, basename

EXACT, DEVICE, UNCERTAIN = CONTAINER_IDENTITIES
LSM_CONTAINER_LABELS = ("container_t", "spc_t", "container_runtime_t", "docker-default", "cri-containerd",
                        "containers-default")
RUNC_INIT_TITLE = ["runc", "init"]
RUNC_CLONE = "/memfd:runc_cloned:"  # the executable of runc's re-exec stage when runc runs a memfd copy of itself
# Where runtime packages install their binaries: the distributions' and a source build's (/usr/local) bin and sbin,
# libexec and lib trees (podman, CRI-O, docker plugins), /opt, k3s (/var/lib/rancher/k3s/data/<hash>/bin), snap.
RUNTIME_DIRS = ("/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/", "/usr/local/bin/", "/usr/local/sbin/")
RUNTIME_TREES = ("/usr/libexec/", "/usr/lib/", "/usr/local/libexec/", "/usr/local/lib/", "/opt/",
                 "/var/lib/rancher/", "/snap/")
IMAGE_PATH_KEY = "image-path:/host"  # processes running images of the host's root mounted under /host
HELPER_WINDOW = 10.0                 # seconds from a trap to the usermode helper's child
MONITOR_COMM = "(container monitor)"  # an unseen parent of a runtime call (conmon's daemonized copy), recorded
MONITOR_WINDOW = 10.0                # seconds from a runtime call to the exec of the process it started
PERSISTED = " [persisted state]"     # marks evidence that rests on a parent known from an earlier search


class Exec(NamedTuple):
    """One executed process (a successful execve, or a Sysmon process start): what attribution reads."""
    pid: str
    ppid: str
    time: float
    comm: str
    exe: str
    dev: str            # the executable's device
    argv: List[str]
    title: List[str]    # PROCTITLE
    uid: str
    subj: str           # LSM label
    explicit: str       # container id from the event itself (CONTAINER_ID record)
    cwd: str


class Running(NamedTuple):
    """A process seen by what it does (a syscall, a file write), not by its start."""
    pid: str
    ppid: str
    time: float
    comm: str
    exe: str


class Attribution(NamedTuple):
    """The container a process belongs to ("" for none), why, and how sure."""
    key: str
    evidence: str
    runtime: bool = False       # the process is the container runtime itself
    container_id: str = ""      # the container's id, when a runtime's command line (or the kernel) named it
    identity: str = ""          # ground.CONTAINER_IDENTITIES ("" for no container)
    serves: str = ""            # a runtime process: the container its runtime call starts a process in


class Trap(NamedTuple):
    """A container's cgroup (v1) mount or release_agent / core_pattern write: the kernel may run a host program
    for it through the usermode helper."""
    time: float
    pid: int
    key: str


NONE = Attribution("", "")


def is_runc_init(title: List[str]) -> bool:
    """A container's first process keeps the stale PROCTITLE of the runtime that prepared it: `runc init` (argv[0]
    may be a path), or crun's own call (crun prepares the container in a clone of itself, which executes nothing
    before the container's program)."""
    program = basename(title[0]) if title else ""
    return program == "crun" or (len(title) >= 2 and title[1] == "init" and program == "runc")


def container_key_of_shim(shim: Proc) -> str:
    """The key of the container a shim runs: its id from the shim's command line, else the shim's pid and start
    time (a pid alone could name another container's shim after pid reuse)."""
    return container_id_from_argv(shim.argv) or "shim:%s@%.3f" % (shim.pid, shim.start)


def _shim_child(shim: Proc, pid: str) -> Attribution:
    """A child of a shim: the shim's container when the shim runs exactly one (conmon, docker's shim: exact when its
    command line names the id); a pod's shim (Kubernetes) runs several, so the child is one of them: uncertain, and
    keyed by the child too."""
    evidence = "lineage:%s(pid %s)" % (basename(shim.exe) or shim.comm, shim.pid)
    key = container_key_of_shim(shim)
    named = shim_args(basename(shim.exe), shim.argv)
    if named.one_container:
        return Attribution(key, evidence, container_id=named.container_id, identity=EXACT)
    if named.container_id:
        return Attribution("%s/pid:%s" % (key, pid), evidence + " of a pod", identity=UNCERTAIN)
    return Attribution(key, evidence, identity=UNCERTAIN)


def runtime_path(table: HostLineage, exe: str) -> bool:
    """`exe` names a runtime (escape_container_runtime_processes) where a runtime package installs it, or is a full
    path that list names (a runtime installed elsewhere)."""
    if not exe.startswith("/") or "//" in exe or "/./" in exe or "/../" in exe:
        return False
    if exe in table.runtime_names:
        return True
    if basename(exe) not in table.runtime_names:
        return False
    directory = exe[:exe.rfind("/") + 1]
    return directory in RUNTIME_DIRS or directory.startswith(RUNTIME_TREES)


def is_shim(proc: Proc) -> bool:
    """A container shim: its executable (never a comm a process gave itself) is a shim's, and it is no container
    process."""
    return basename(proc.exe).startswith(SHIMS) and (proc.runtime or not proc.container)


def is_runtime(table: HostLineage, exe: str, dev: str, parent: Optional[Proc], previous: Optional[Proc] = None) -> bool:
    """Whether a process is the container runtime itself, by what the kernel says, never by its comm (any process can
    set it with prctl):

    - a child of a container process is never the runtime;
    - runc's re-exec stage (`runc init`, the `runc:[N:...]` clones) runs its runtime parent's binary: the parent's
      executable, runc's memfd clone of it, or "/" (the host file is out of reach once the stage has pivoted); so does
      a runtime that re-executes itself without a fork (crun's execveat of its own copy: `previous`, the same pid's
      image, with the same parent);
    - otherwise the executable is a runtime binary where a runtime package installs it (`runtime_path`) and, when its
      device is known (an execve's PATH item 0), on a host device, never a container's anonymous overlay device.
      Without a device (a Sysmon process start, a process seen only by its syscalls) the path and a runtime parent
      (or none known) must do."""
    if parent is not None and parent.container and not parent.runtime:
        return False
    if parent is not None and parent.runtime and (exe == parent.exe or exe == "/" or exe.startswith(RUNC_CLONE)):
        return True
    if previous is not None and previous.runtime and (exe == previous.exe or exe == "/" or exe.startswith(RUNC_CLONE)):
        return True
    if not runtime_path(table, exe):
        return False
    if dev:
        return not anonymous_device(dev)
    return parent is None or parent.runtime


def attribute_exec(table: HostLineage, process: Exec, skew: float, traps: Sequence[Trap] = ()) -> Attribution:
    """The container of a new image of `process.pid`. A usermode-helper attribution records the unseen parent. A
    container known exactly that runs it from an anonymous device claims that device (HostLineage.claim_device)."""
    parent = table.lookup(process.ppid, process.time, skew)
    found = _exec_rules(table, process, parent, skew)
    if parent is not None and parent.persisted and found.key and "persisted state" not in found.evidence:
        found = found._replace(evidence=found.evidence + PERSISTED)
    if not found.key and not found.runtime and parent is None and process.cwd == "/" and \
            not table.known(process.ppid) and table.is_host_dev(process.dev):
        trap = helper_trap(traps, process.pid, process.ppid, process.time)
        if trap is not None:
            evidence = "usermode_helper:unseen parent pid %s born after container pid %s's mount" % (
                process.ppid, trap.pid)
            table.add(Proc(process.ppid, "", trap.time, "(usermode helper)", "", "", [], container=trap.key,
                           evidence=evidence, helper=True, identity=_identity_of(table, trap.key)))
            found = Attribution(trap.key, evidence, identity=_identity_of(table, trap.key))
    if found.runtime and found.serves and parent is None and is_ascii_digits(process.ppid) and \
            basename(process.exe) in RUNTIME_CLIS and runtime_call(process.argv).container_id == found.serves:
        # conmon daemonizes: the parent of its runtime call is never seen starting, and the process the call starts
        # is reparented to it before it executes its program (`_monitor_child`)
        table.add(Proc(process.ppid, "", process.time, MONITOR_COMM, container="", runtime=True, serves=found.serves,
                       evidence="monitor:parent of %s %s(pid %s)" % (
                           basename(process.exe), runtime_call(process.argv).verb, process.pid)))
    if found.key and found.identity == EXACT and anonymous_device(process.dev):
        table.claim_device(process.dev, process.time, found.key)
    if found.key and not found.container_id and found.identity in (EXACT, DEVICE):
        found = found._replace(container_id=str(table.containers.get(found.key, {}).get("id", "")))
    return found


def _identity_of(table: HostLineage, key: str) -> str:
    return str(table.containers.get(key, {}).get("identity", "")) or UNCERTAIN


def _previous_image(table: HostLineage, process: Exec, skew: float) -> Optional[Attribution]:
    """The container of the same pid's previous image (an exec without a fork, e.g. chroot then sh), if it had one."""
    previous = table.lookup(process.pid, process.time, skew)
    if previous is not None and previous.ppid == process.ppid and previous.container and not previous.runtime:
        return Attribution(previous.container, previous.evidence, identity=previous.identity or UNCERTAIN)
    return None


def _serves(process: Exec, parent: Optional[Proc], previous: Optional[Proc]) -> str:
    """The container a runtime process starts a process in: the id its own runc / crun create, run or exec call
    names, else what the same pid's previous runtime image (a re-exec) or its runtime parent (runc init under runc
    create) served."""
    if basename(process.exe) in RUNTIME_CLIS:
        call = runtime_call(process.argv)
        if call.verb in STARTING_VERBS and call.container_id:
            return call.container_id
    if previous is not None and previous.runtime and previous.serves:
        return previous.serves
    if parent is not None and parent.runtime and parent.serves:
        return parent.serves
    return ""


def _started_by_runtime(table: HostLineage, process: Exec, previous: Optional[Proc],
                        skew: float) -> Optional[Attribution]:
    """The container's process that a runtime call forked (runc init, crun's clone) now executes its program: it
    belongs to the container that call named. By then the call may have exited and the process been reparented to
    the call's own parent (the shim, or conmon's daemonized copy that no record shows), so either parent is its."""
    if previous is None or not previous.runtime or not previous.serves:
        return None
    starter = table.lookup(previous.ppid, previous.start, skew)
    if process.ppid != previous.ppid and (starter is None or process.ppid != starter.ppid):
        return None
    _monitor_done(table, process.ppid, process.time, skew)
    call = "runtime"
    if starter is not None and starter.argv:
        call = " ".join(part for part in (basename(starter.argv[0]), runtime_call(starter.argv).verb) if part)
    return Attribution(previous.serves, "runtime:%s(pid %s) started it" % (call, previous.ppid),
                       container_id=previous.serves, identity=EXACT)


def _monitor_done(table: HostLineage, pid: str, when: float, skew: float) -> None:
    """The container process a monitor's runtime call started has executed: the monitor's later children (its exit
    command, podman's cleanup) are its own."""
    monitor = table.lookup(pid, when, skew)
    if monitor is not None and monitor.comm == MONITOR_COMM and not monitor.exe:
        monitor.serves = ""


def _monitor_child(table: HostLineage, process: Exec, parent: Proc, skew: float) -> Optional[Attribution]:
    """The first process a daemonized monitor's runtime call started (`runc/crun exec --detach`: the call forks the
    process inside the container and exits): the next exec under the monitor within MONITOR_WINDOW seconds of the
    call, from an anonymous (container) device or still titled as the runtime."""
    if parent.comm != MONITOR_COMM or parent.exe or not parent.serves:
        return None
    if not 0.0 <= process.time - parent.start <= MONITOR_WINDOW + skew:
        return None
    titled = bool(process.title) and basename(process.title[0]) in RUNTIME_CLIS
    if not titled and not (process.dev and anonymous_device(process.dev)):
        return None
    cid = parent.serves
    _monitor_done(table, parent.pid, process.time, skew)
    return Attribution(cid, "runtime:first exec under %s" % parent.evidence[len("monitor:"):], container_id=cid,
                       identity=EXACT)


def _exec_rules(table: HostLineage, process: Exec, parent: Optional[Proc], skew: float) -> Attribution:
    previous = table.lookup(process.pid, process.time, skew)
    reexec = previous if previous is not None and previous.ppid == process.ppid and not (
        process.dev and anonymous_device(process.dev)) else None
    if is_runtime(table, process.exe, process.dev, parent, reexec):
        # A container process that executes a runtime binary (one it planted on the host after a chroot into it, say)
        # stays in its container: the runtime starts container processes, never the other way round.
        return _previous_image(table, process, skew) or Attribution("", "", True,
                                                                    serves=_serves(process, parent, reexec))
    if process.explicit:
        return Attribution(process.explicit, "field:container_id", container_id=process.explicit, identity=EXACT)
    started = _started_by_runtime(table, process, previous, skew)
    if started is not None:
        return started
    if parent is not None and parent.comm == MONITOR_COMM and not parent.exe:
        started = _monitor_child(table, process, parent, skew)
        if started is not None:
            return started
        parent = None  # recorded for its runtime call only: for the rest the monitor is as unseen as before
    if parent is not None:
        parent_base = basename(parent.exe)
        if is_shim(parent):
            return _shim_child(parent, process.pid)
        if parent.runtime and (parent.serves or parent_base in RUNTIME_CLIS):
            cid = parent.serves or container_id_from_argv(parent.argv)
            if cid:
                return Attribution(cid, "lineage:%s exec(pid %s)" % (parent_base, parent.pid), container_id=cid,
                                   identity=EXACT)
        if parent.container and not parent.runtime:
            evidence = parent.evidence if parent.evidence.startswith("lineage") or parent.helper else \
                "lineage:parent %s(pid %s) %s" % (parent.comm, parent.pid, parent.evidence)
            return Attribution(parent.container, evidence, identity=parent.identity or UNCERTAIN)
    kept = _previous_image(table, process, skew)
    if kept is not None:
        return kept
    return _weak_signs(table, process, parent, skew)


def _weak_signs(table: HostLineage, process: Exec, parent: Optional[Proc], skew: float) -> Attribution:
    """A process whose lineage names no container: what it carries. Only a device known to belong to one container
    names that container; every other sign is uncertain and its key names the unseen parent too."""
    orphan = "@%s/ppid:%s" % (table.host, process.ppid)
    if is_runc_init(process.title):
        # a container's first process whose runtime call was not seen: a container start all the same, so the
        # device it runs from is no longer the last container's
        key = "runc-init:%s@%s" % (process.ppid, table.host)
        if process.dev and anonymous_device(process.dev):
            table.claim_device(process.dev, process.time, key)
        return Attribution(key, "proctitle:runc-init", identity=UNCERTAIN)
    for label in LSM_CONTAINER_LABELS:
        if label in process.subj:
            return Attribution("lsm:%s%s" % (process.subj, orphan), "lsm:%s" % label, identity=UNCERTAIN)
    if process.exe.startswith("/host/"):
        return Attribution(IMAGE_PATH_KEY + orphan, "image_path:/host", identity=UNCERTAIN)
    if process.dev and anonymous_device(process.dev) and parent is None:
        owner = table.device_owner(process.dev, process.time, skew)
        if owner:
            exact = table.containers.get(owner, {}).get("identity") == EXACT
            return Attribution(owner, "exe_dev:anonymous(%s) of the container last started on it" % process.dev,
                               identity=DEVICE if exact else UNCERTAIN)
        return Attribution("overlay:%s%s" % (process.dev, orphan), "exe_dev:anonymous(%s)" % process.dev,
                           identity=UNCERTAIN)
    return NONE


def attribute_running(table: HostLineage, process: Running, skew: float) -> Attribution:
    """The container of a process seen by what it does: its known image's, else its parent's (a container's process
    started before the search, or never seen starting). A runtime's child seen only by its calls (crun's clone
    preparing the container, which audits mounts but no exec) is recorded, with the container it serves, so that its
    exec of the container's program is known (`_started_by_runtime`)."""
    proc = table.lookup(process.pid, process.time, skew)
    parent = table.lookup(process.ppid, process.time, skew)
    if proc is not None and proc.ppid == process.ppid:  # its image: a comm changed since (prctl) changes nothing
        table.touch(process.pid, process.time)
        return Attribution(proc.container, proc.evidence, proc.runtime, identity=proc.identity)
    if proc is not None and parent is not None and parent.start > proc.start:
        proc = None  # a child is younger than its parent: the pid was reused, that image is another process's
    if proc is not None and proc.container and not proc.runtime:  # reparented after its parent exited
        table.touch(process.pid, process.time)
        return Attribution(proc.container, proc.evidence, identity=proc.identity or UNCERTAIN)
    if parent is not None and not parent.runtime and parent.container:
        return Attribution(parent.container, "lineage:parent %s(pid %s) %s" % (parent.comm, parent.pid,
                                                                              parent.evidence),
                           identity=parent.identity or UNCERTAIN)
    if is_runtime(table, process.exe, "", parent if parent is not None else proc):
        if proc is None and parent is not None and parent.runtime and parent.serves:
            table.add(Proc(process.pid, process.ppid, process.time, process.comm, process.exe, runtime=True,
                           serves=parent.serves))
        return Attribution("", "", True)
    if parent is not None and is_shim(parent):
        return _shim_child(parent, process.pid)
    return NONE


def helper_trap(traps: Sequence[Trap], pid: str, ppid: str, when: float) -> Optional[Trap]:
    """The kernel's usermode helper: an unseen parent born after the container's trap (cgroup mount or agent write)
    and just before its child (pids grow: trap pid < parent pid < child pid, close together), cwd "/" (checked by
    the caller), within HELPER_WINDOW seconds. A fork of a long-lived unseen process fails the pid order."""
    if not is_ascii_digits(ppid) or not is_ascii_digits(pid):
        return None
    parent, child = int(ppid), int(pid)
    if not parent < child <= parent + 1000:
        return None
    for trap in reversed(traps):
        if 0.0 <= when - trap.time <= HELPER_WINDOW and trap.pid < parent:
            return trap
    return None


def sysmon_first_process(table: HostLineage, parent_pid: str, parent_image: str, when: float,
                         skew: float) -> List[str]:
    """A Sysmon process start under a containerd shim is its container's first process (the PROCTITLE that stands
    for `runc init` is returned). Sysmon reports no shim start, so an unknown shim parent is recorded as a runtime
    shim that started just before."""
    if not basename(parent_image).startswith("containerd-shim"):
        return []
    if table.lookup(parent_pid, when, skew) is None:
        table.add(Proc(parent_pid, "", when - skew, basename(parent_image), parent_image, "", [], runtime=True))
    return list(RUNC_INIT_TITLE)


def host_image_container(table: HostLineage, pid: str, when: float, skew: float) -> str:
    """The container of a process that runs an image of the host's root mounted under /host."""
    proc = table.lookup(pid, when, skew)
    return proc.container if proc is not None and proc.container else IMAGE_PATH_KEY
