"""What a host's lineage keeps between searches, and what goes first when it is over its byte cap (docs/linux-analytic.md,
"State").

Kept, each while it was active within `ttl` of the host's newest time:
- container-side processes (a container key, not the runtime), with their arguments (at most ARGS, each cut at
  ARG_CHARS characters);
- the runtime's long-lived processes (shims, a daemonized monitor), with their arguments (they name the container);
- every ancestor of a kept container-side process (its runtime call, shim, or a host process), found by ppid;
- any other process (the host's, a runtime call that started nothing kept) only while it was active within `recent`
  seconds (the overlap the next scheduled search reads again), since no kept container process descends from it.
Host processes (no container, not the runtime) never keep their arguments: command lines carry secrets, and no rule
reads a host process's arguments once it is no container's ancestor.

Over the cap (`max_chars` of the state's JSON text), processes go first, in this order, until the state fits: those
kept for `recent` only (oldest activity first); then, repeatedly, processes no kept process names as its parent
(leaves: a finished command, before the shell or service that started it), host and runtime processes before
container ones, oldest activity first within each; last, containers (oldest last activity first) with their devices.
Every dropped entry is counted (`Capped`).
"""
import json
from typing import Any, Dict, List, NamedTuple, Set, Tuple

from .attribution import MONITOR_COMM, is_shim
from .table import HostLineage, Proc, key_of_newest

ARGS = 12
ARG_CHARS = 512
_CONTAINER, _RUNTIME, _ANCESTOR, _RECENT = 0, 1, 2, 3


class Capped(NamedTuple):
    """What the byte cap dropped from one host's state."""
    processes: int
    containers: int


def _entry(proc: Proc) -> Dict[str, Any]:
    data = proc.to_json()
    host = not proc.container and not proc.runtime
    data["argv"] = [] if host else [a[:ARG_CHARS] for a in proc.argv[:ARGS]]
    return data


def _size(value: Any) -> int:
    return len(json.dumps(value, sort_keys=True))


def _kept(table: HostLineage, horizon: float, recent: float) -> Dict[str, Tuple[int, Proc]]:
    """pid -> (why it is kept, its newest image), before any cap."""
    newest = {pid: images[-1] for pid, images in table.procs.items() if images and images[-1].last >= horizon}
    kept: Dict[str, Tuple[int, Proc]] = {}
    for pid, proc in newest.items():
        if proc.container and not proc.runtime:
            kept[pid] = (_CONTAINER, proc)
        elif proc.runtime and (is_shim(proc) or proc.comm == MONITOR_COMM):
            kept[pid] = (_RUNTIME, proc)
    for pid, (why, proc) in list(kept.items()):
        if why != _CONTAINER:
            continue
        seen: Set[str] = {pid}
        parent = newest.get(proc.ppid)
        while parent is not None and parent.pid not in seen:  # `seen` ends a ppid cycle left by pid reuse
            seen.add(parent.pid)
            if parent.pid not in kept:
                kept[parent.pid] = (_ANCESTOR, parent)
            parent = newest.get(parent.ppid)
    for pid, proc in newest.items():
        if pid not in kept and proc.last >= recent:
            kept[pid] = (_RECENT, proc)
    return kept


def bounded_state(table: HostLineage, ttl: float, recent: float, max_chars: int) -> Tuple[Dict[str, Any], Capped]:
    """The host's state to persist (HostLineage.to_json's format) and what the cap dropped from it."""
    state = table.frame_json(ttl)
    kept = _kept(table, table.max_time - ttl, table.max_time - recent)
    entries = {pid: _entry(proc) for pid, (_, proc) in kept.items()}
    sizes = {pid: _size(entry) + 2 for pid, entry in entries.items()}
    total = _size(state) + sum(sizes.values())
    dropped = 0

    def drop(order: List[str]) -> None:
        nonlocal total, dropped
        for pid in order:
            if total <= max_chars:
                return
            total -= sizes.pop(pid)
            del kept[pid]
            dropped += 1

    if total > max_chars:
        drop(sorted((p for p, (why, _) in kept.items() if why == _RECENT), key=lambda p: kept[p][1].last))
    while total > max_chars and kept:
        parents = {proc.ppid for _, proc in kept.values()}
        leaves = sorted((p for p in kept if p not in parents),
                        key=lambda p: (kept[p][0] == _CONTAINER, kept[p][1].last))
        # a ppid cycle (pid reuse) leaves no leaf: every process is someone's parent
        drop(leaves or sorted(kept, key=lambda p: kept[p][1].last))
    state["procs"] = [entries[pid] for pid in table.procs if pid in kept]  # the table's order, as to_json's
    containers = 0
    if total > max_chars:
        registry: Dict[str, Any] = state["containers"]
        for key in sorted(registry, key=lambda k: float(registry[k].get("last", 0.0))):
            if total <= max_chars:
                break
            total -= _size({key: registry.pop(key)})
            containers += 1
        state["devices"] = {d: c for d, c in state["devices"].items() if key_of_newest(c) in registry}
    return state, Capped(dropped, containers)
