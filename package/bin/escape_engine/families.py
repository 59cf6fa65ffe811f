"""Escape families that rest on one call of a container process, read from its audit record: raw device access
(mknod of block or memory devices, opens of block devices), host process injection (ptrace attach and pokes,
process_vm_writev into a process outside the container) and kernel code (eBPF program loads). The syscalls are kept by
their own rules in escape_to_host.rules (keys escape_to_host_dev, _ptrace, _bpf), not by the escape-syscall list.

`call_detail` says what a call means for the caller's container, or None when it means nothing (a character device
that is no memory device, a ptrace of the container's own process, a bpf command that loads no program). Whether the
chain is an escape, a suspicious call or an attempt is escape_engine.chains' decision, from the call's result.
"""
from typing import List, Optional, Tuple

from .auditfacts import (
    BLOCK_MODE,
    DEVICE_CALLS,
    INJECTION_CALLS,
    KERNEL_CODE_CALLS,
    OPEN_CALLS,
    AuditFacts,
    PathItem,
)
from .lineage import HostLineage, Proc
from .scalars import is_ascii_digits

S_IFMT, S_IFBLK, S_IFCHR = 0o170000, 0o060000, 0o020000
MEMORY_DEVICES = {(1, 1): "mem", (1, 2): "kmem", (1, 4): "port"}  # character devices that read or write host memory
PTRACE_REQUESTS = {0x10: "attach", 0x4206: "seize", 0x4: "poketext", 0x5: "pokedata", 0x6: "pokeuser"}
BPF_PROG_LOAD = 5


def _number(text: str) -> Optional[int]:
    """An audit argument: hex without prefix (a0=...)."""
    try:
        return int(text, 16)
    except ValueError:
        return None


def _decimal(text: str) -> Optional[int]:
    return int(text) if is_ascii_digits(text) else None


def _decode_dev(dev: int) -> Tuple[int, int]:
    """major, minor of a dev_t as the kernel decodes mknod's argument (new_decode_dev)."""
    return (dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00)


def _created(paths: List[PathItem]) -> str:
    return next((path.name for path in paths if path.nametype == "CREATE"), "")


def call_detail(facts: AuditFacts, table: HostLineage, key: str, when: float, skew: float) -> Optional[str]:
    """What the call of a process of container `key` means (see the module docstring), or None."""
    name, paths = facts.syscall, facts.paths
    if name in DEVICE_CALLS:
        mode_arg, dev_arg = (facts.a1, facts.a2) if name == "mknod" else (facts.a2, facts.a3)
        mode, dev = _number(mode_arg), _number(dev_arg)
        if mode is None or dev is None:
            return None
        major, minor = _decode_dev(dev)
        if mode & S_IFMT == S_IFBLK:
            return "block_node=%s(%d:%d)" % (_created(paths) or "-", major, minor)
        if mode & S_IFMT == S_IFCHR and (major, minor) in MEMORY_DEVICES:
            return "memory_node=%s(%s %d:%d)" % (_created(paths) or "-", MEMORY_DEVICES[(major, minor)], major, minor)
        return None
    if name in OPEN_CALLS:
        for path in paths:
            if path.mode.startswith(BLOCK_MODE):
                return "block_device=%s(rdev %s)" % (path.name, path.rdev)
        return None
    if name in INJECTION_CALLS:
        return _target(facts, table, key, when, skew)
    if name in KERNEL_CODE_CALLS:
        return "bpf_prog_load" if _number(facts.a0) == BPF_PROG_LOAD else None
    return None


def _target(facts: AuditFacts, table: HostLineage, key: str, when: float, skew: float) -> Optional[str]:
    """The target of a write into another process, when it lies outside the caller's container.

    ptrace attach: the OBJ_PID record names the target by its pid in the host's pid namespace, the argument a1 by its
    pid in the caller's. When they differ the caller has a pid namespace of its own, and a process can trace only what
    its pid namespace holds: the target is in its container. When they agree (a container sharing the host's pid
    namespace), a target of the same container's lineage is inside, any other (the host's, another container's, a
    process never seen starting) outside.
    ptrace pokes (the kernel writes no OBJ_PID for them) and process_vm_writev name the target only by its pid in the
    caller's namespace, so they count only when that pid is a process seen starting outside the container (a
    container with its own pid namespace names small pids that the host's lineage does not hold)."""
    request, name = "", facts.syscall
    if name == "ptrace":
        request = PTRACE_REQUESTS.get(_number(facts.a0) or -1, "")
        if not request:
            return None
        pid = facts.opid
        if pid:
            if _number(facts.a1) != _decimal(pid):
                return None
            target = table.lookup(pid, when, skew)
            if target is not None and target.container == key:
                return None
            return "target=pid %s(%s) in %s request=%s" % (pid, facts.ocomm or "?", _where(target), request)
    number = _number(facts.a1 if name == "ptrace" else facts.a0)
    target = table.lookup(str(number), when, skew) if number is not None else None
    if target is None or target.container == key or target.helper:
        return None
    return "target=pid %s(%s) in %s%s" % (number, target.comm or "?", _where(target),
                                          " request=%s" % request if request else "")


def _where(target: Optional[Proc]) -> str:
    return "container %s" % target.container[:24] if target is not None and target.container else "the host"
