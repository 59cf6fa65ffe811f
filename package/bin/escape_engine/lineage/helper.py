"""The kernel's usermode helpers, tied to the container whose file system they run.

The kernel starts a usermode helper (a `core_pattern` pipe program, a cgroup-v1 `release_agent`, `modprobe`) itself:
as root, in the host's namespaces, with cwd `/`, as a child of kthreadd (pid 2; `modprobe` waits for its helper and
gets a kworker as parent instead). Its exec is no syscall and leaves no audit record, but what it does next does:
`escape_to_host.rules` keeps every open and exec of a process whose parent is pid 2, so the script the kernel handed
to the interpreter, a payload binary (the `exe=` of its calls) and the files it writes are named in PATH records.
Sysmon for Linux reports the helper's own start (its Image and ParentProcessId 2).

When such a path lies in a container's file system (an overlay upperdir or merged directory of docker or
containers/storage, a containerd snapshot or task rootfs), the helper belongs to the container that owns it, whether
or not the trigger write was seen. Which container owns an overlay layer: the mount of its merged directory names the
layer and the anonymous device the mount got (a PATH record of the runtime's mount call), and the container's
processes run executables from that device.
"""
import posixpath
import re
from typing import Iterable, NamedTuple, Optional

from .table import HostLineage, Proc, anonymous_device

KTHREADD = "2"  # the parent the kernel gives a usermode helper started without waiting (core dumps, release agents)
# <root>/overlay2/<layer>/diff|merged (docker) and <root>/overlay/<layer>/diff|merged (containers/storage: podman,
# CRI-O); the "-init" layer is docker's per-container init layer, mounted under the same layer id.
OVERLAY_LAYER = re.compile(r"^/(?:[^/]+/)*overlay2?/(?P<layer>[0-9a-f]{64})(?:-init)?/(?P<part>diff|merged)(?:/|$)")
CONTAINERD_SNAPSHOT = re.compile(
    r"^/(?:[^/]+/)*io\.containerd\.snapshotter\.v1\.overlayfs/snapshots/(?P<layer>[0-9]+)/fs(?:/|$)")
CONTAINERD_TASK = re.compile(r"^/(?:[^/]+/)*io\.containerd\.runtime\.v2\.task/[^/]+/(?P<id>[^/]+)/rootfs(?:/|$)")


class StoragePath(NamedTuple):
    """A path inside a container's file system as the host sees it."""
    path: str
    layer: str          # "overlay:<id>" / "snapshot:<n>", or "" when the path names the container itself
    container_id: str   # the container id a containerd task rootfs path names


def storage_path(name: str, cwd: str = "/") -> Optional[StoragePath]:
    """The container file system `name` lies in (relative names are read against `cwd`), or None."""
    if not name or name == "(null)":
        return None
    path = posixpath.normpath(posixpath.join(cwd or "/", name))
    match = OVERLAY_LAYER.match(path)
    if match:
        return StoragePath(path, "overlay:" + match.group("layer"), "")
    match = CONTAINERD_SNAPSHOT.match(path)
    if match:
        return StoragePath(path, "snapshot:" + match.group("layer"), "")
    match = CONTAINERD_TASK.match(path)
    if match:
        return StoragePath(path, "", match.group("id"))
    return None


def first_storage_path(names: Iterable[str], cwd: str) -> Optional[StoragePath]:
    for name in names:
        found = storage_path(name, cwd)
        if found is not None:
            return found
    return None


def note_layer(table: HostLineage, name: str, dev: str, when: float) -> None:
    """A PATH record of a mount call: a merged directory that already sits on an anonymous device is the mounted
    layer (kept in the persisted lineage, so a container started before the search is still known by its layer)."""
    found = storage_path(name)
    if found is not None and found.layer and found.path.endswith("/merged") and anonymous_device(dev):
        table.layers[found.layer] = (dev, when)


def layer_owner(table: HostLineage, found: StoragePath, dev: str = "") -> str:
    """The key of the container that runs from the layer's device (`dev`: the device of the path itself, for a path
    under the merged directory), or "" when no container process was seen on it."""
    if found.container_id:
        return found.container_id
    device = table.layers.get(found.layer, ("", 0.0))[0]
    if not device and anonymous_device(dev):
        device = dev
    if not device:
        return ""
    owner: Optional[Proc] = None
    for images in table.procs.values():
        for proc in images:
            if proc.dev == device and proc.container and not proc.runtime and not proc.helper and (
                    owner is None or proc.start > owner.start):
                owner = proc
    return owner.container if owner is not None else ""


def helper_key(table: HostLineage, found: StoragePath, dev: str = "") -> str:
    """The container key of a helper that used `found`: its owner's, else one key per layer (the owner unseen)."""
    return layer_owner(table, found, dev) or "layer:%s@%s" % (found.layer or found.container_id, table.host)


def mark_helper(table: HostLineage, pid: str, ppid: str, when: float, comm: str, exe: str, key: str,
                evidence: str) -> None:
    """Record the helper process (container key "" for a host program) unless it is recorded so already."""
    known = table.lookup(pid, when)
    if known is not None and known.helper and known.ppid == ppid and (known.container == key or not key):
        return
    table.add(Proc(pid, ppid, when, comm, exe, "", [], container=key, evidence=evidence, helper=True))
