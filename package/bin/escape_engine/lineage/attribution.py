"""Every rule that decides which container a Linux process belongs to, with the evidence that decided it.

A new process image (an execve, `attribute_exec`) is attributed, in order, by: an explicit container field, lineage
through a container runtime (containerd-shim, conmon, runc / crun exec), inheritance from an attributed parent, its
own previous image (exec without fork), the container's first process (stale `runc init` PROCTITLE), an LSM container
label, the executable's anonymous (overlay) device or a `/host/...` image path, and finally the kernel's usermode
helper (an unseen parent born just after a container armed a trap). A process seen only by what it does
(`attribute_running`: a syscall, a file write) keeps the attribution of its image, else inherits its parent's.

One container has one key whichever rule found it: `container_key_of_shim` names a container known only by its shim,
whether the shim was seen starting in this search or is known from the persisted state.
"""
from typing import List, NamedTuple, Optional, Sequence

from ..scalars import is_ascii_digits
from .table import HostLineage, Proc, anonymous_device, basename

SHIMS = ("containerd-shim", "containerd-shim-runc-v2", "containerd-shim-runc-v1", "conmon")
RUNTIME_CLIS = ("runc", "crun")
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
    """The container a process belongs to ("" for none) and why."""
    key: str
    evidence: str
    runtime: bool = False       # the process is the container runtime itself
    container_id: str = ""      # the id a runtime parent's command line names


class Trap(NamedTuple):
    """A container's cgroup (v1) mount or release_agent / core_pattern write: the kernel may run a host program
    for it through the usermode helper."""
    time: float
    pid: int
    key: str


NONE = Attribution("", "")


def is_runc_init(title: List[str]) -> bool:
    """A container's first process keeps the stale PROCTITLE of `runc init` (argv[0] may be a path)."""
    return len(title) >= 2 and title[1] == "init" and basename(title[0]) in ("runc", "crun")


def container_id_from_argv(argv: List[str]) -> str:
    """Container id from a shim (`-id <id>`), conmon (`-c <id>` / `--cid`) or runc/crun (`exec|start|... <id>`) argv."""
    program = basename(argv[0]) if argv else ""
    if program in SHIMS:
        flags = ("-c", "--cid") if program == "conmon" else ("-id", "--id")
        for flag in flags:
            if flag in argv:
                position = argv.index(flag)
                if position + 1 < len(argv):
                    return argv[position + 1]
        return ""
    if program in RUNTIME_CLIS:
        for verb in ("exec", "create", "start", "run"):
            if verb in argv and argv[-1] != verb and not argv[-1].startswith("-"):
                return argv[-1]
    return ""


def container_key_of_shim(shim: Proc) -> str:
    """The key of the container a shim runs: its id from the shim's command line, else the shim's pid and start
    time (a pid alone could name another container's shim after pid reuse)."""
    return container_id_from_argv(shim.argv) or "shim:%s@%.3f" % (shim.pid, shim.start)


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


def is_runtime(table: HostLineage, exe: str, dev: str, parent: Optional[Proc]) -> bool:
    """Whether a process is the container runtime itself, by what the kernel says, never by its comm (any process can
    set it with prctl):

    - a child of a container process is never the runtime;
    - runc's re-exec stage (`runc init`, the `runc:[N:...]` clones) runs its runtime parent's binary: the parent's
      executable, runc's memfd clone of it, or "/" (the host file is out of reach once the stage has pivoted);
    - otherwise the executable is a runtime binary where a runtime package installs it (`runtime_path`) and, when its
      device is known (an execve's PATH item 0), on a host device, never a container's anonymous overlay device.
      Without a device (a Sysmon process start, a process seen only by its syscalls) the path and a runtime parent
      (or none known) must do."""
    if parent is not None and parent.container and not parent.runtime:
        return False
    if parent is not None and parent.runtime and (exe == parent.exe or exe == "/" or exe.startswith(RUNC_CLONE)):
        return True
    if not runtime_path(table, exe):
        return False
    if dev:
        return not anonymous_device(dev)
    return parent is None or parent.runtime


def attribute_exec(table: HostLineage, process: Exec, skew: float, traps: Sequence[Trap] = ()) -> Attribution:
    """The container of a new image of `process.pid`. A usermode-helper attribution records the unseen parent."""
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
                           evidence=evidence, helper=True))
            found = Attribution(trap.key, evidence)
    return found._replace(container_id=container_id_from_argv(parent.argv) if parent is not None else "")


def _previous_image(table: HostLineage, process: Exec, skew: float) -> Optional[Attribution]:
    """The container of the same pid's previous image (an exec without a fork, e.g. chroot then sh), if it had one."""
    previous = table.lookup(process.pid, process.time, skew)
    if previous is not None and previous.ppid == process.ppid and previous.container and not previous.runtime:
        return Attribution(previous.container, previous.evidence)
    return None


def _exec_rules(table: HostLineage, process: Exec, parent: Optional[Proc], skew: float) -> Attribution:
    if is_runtime(table, process.exe, process.dev, parent):
        # A container process that executes a runtime binary (one it planted on the host after a chroot into it, say)
        # stays in its container: the runtime starts container processes, never the other way round.
        return _previous_image(table, process, skew) or Attribution("", "", True)
    if process.explicit:
        return Attribution(process.explicit, "field:container_id")
    if parent is not None:
        parent_base = basename(parent.exe)
        if is_shim(parent):
            return Attribution(container_key_of_shim(parent),
                               "lineage:%s(pid %s)" % (parent_base or parent.comm, parent.pid))
        if parent_base in RUNTIME_CLIS and parent.runtime:
            cid = container_id_from_argv(parent.argv)
            if cid:
                return Attribution(cid, "lineage:%s exec(pid %s)" % (parent_base, parent.pid))
        if parent.container and not parent.runtime:
            evidence = parent.evidence if parent.evidence.startswith("lineage") or parent.helper else \
                "lineage:parent %s(pid %s) %s" % (parent.comm, parent.pid, parent.evidence)
            return Attribution(parent.container, evidence)
    previous = _previous_image(table, process, skew)
    if previous is not None:
        return previous
    if is_runc_init(process.title):
        return Attribution("runc-init:%s@%s" % (process.ppid, table.host), "proctitle:runc-init")
    for label in LSM_CONTAINER_LABELS:
        if label in process.subj:
            return Attribution("lsm:%s" % process.subj, "lsm:%s" % label)
    if process.exe.startswith("/host/"):
        return Attribution(IMAGE_PATH_KEY, "image_path:/host")
    if process.dev and anonymous_device(process.dev) and parent is None:
        return Attribution("overlay:%s@%s" % (process.dev, table.host), "exe_dev:anonymous(%s)" % process.dev)
    return NONE


def attribute_running(table: HostLineage, process: Running, skew: float) -> Attribution:
    """The container of a process seen by what it does: its known image's, else its parent's (a container's process
    started before the search, or never seen starting)."""
    proc = table.lookup(process.pid, process.time, skew)
    parent = table.lookup(process.ppid, process.time, skew)
    if proc is not None and proc.ppid == process.ppid:  # its image: a comm changed since (prctl) changes nothing
        table.touch(process.pid, process.time)
        return Attribution(proc.container, proc.evidence, proc.runtime)
    if proc is not None and parent is not None and parent.start > proc.start:
        proc = None  # a child is younger than its parent: the pid was reused, that image is another process's
    if proc is not None and proc.container and not proc.runtime:  # reparented after its parent exited
        table.touch(process.pid, process.time)
        return Attribution(proc.container, proc.evidence)
    if parent is not None and not parent.runtime and parent.container:
        return Attribution(parent.container, "lineage:parent %s(pid %s) %s" % (parent.comm, parent.pid,
                                                                              parent.evidence))
    if is_runtime(table, process.exe, "", parent if parent is not None else proc):
        return Attribution("", "", True)
    if parent is not None and is_shim(parent):
        return Attribution(container_key_of_shim(parent), "lineage:%s(pid %s)" % (basename(parent.exe), parent.pid))
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
