"""Chains: a container's items closer than `window` seconds form one cluster, classified into an alert row when
replay time has passed it by more than `window` (no later item can join it).

A trigger plus a result is an escape (critical); successful suspicious syscalls alone are a suspicious-syscall finding
(medium or high); failed calls and tool execs alone (seccomp-blocked attempts leave only the execve) are an attempt
(low). What reads the container table (its id, the attribution, the summary) is filled in at the end of the search,
as a container's id or evidence may be learnt after its chain closed.
"""
import hashlib
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from .ground import CONTAINER_ID_FIELD, CONTAINER_IDENTITIES, IDENTITY_FIELD, Row, Value

REPORTS = ("escapes", "attempts", "all")
TRIGGERS = ("syscall", "tool", "socket_client", "agent_write")
RESULTS = ("host_exec", "helper_exec", "child_start")
_COUNTS = {"escape": "escapes", "suspicious": "suspicious", "attempt": "attempts"}


class Item:
    """One event of a container's activity that a chain may rest on."""

    __slots__ = ("attribution", "cds", "detail", "identity", "kind", "name", "order", "source", "sourcetype",
                 "success", "text", "time")

    def __init__(self, time: float, kind: str, cds: List[str], text: str, success: bool, name: str,
                 detail: str = "", order: int = 0, source: str = "", sourcetype: str = "",
                 attribution: str = "", identity: str = "") -> None:
        self.time = time
        self.attribution = attribution
        self.identity = identity  # how the item's process was tied to the container (ground.CONTAINER_IDENTITIES)
        self.kind = kind
        self.cds = cds
        self.text = text
        self.success = success
        self.name = name
        self.detail = detail
        self.order = order
        self.source = source
        self.sourcetype = sourcetype


class Chain:
    """A classified cluster: its alert row but for what reads the container table (see the module docstring)."""

    __slots__ = ("attribution", "category", "host", "key", "result_texts", "row", "trigger_text")

    def __init__(self, row: Row, host: str, key: str, category: str, attribution: str, trigger_text: str,
                 result_texts: List[str]) -> None:
        self.row = row
        self.host = host
        self.key = key
        self.category = category
        self.attribution = attribution
        self.trigger_text = trigger_text
        self.result_texts = result_texts


class Clusters:
    """The open cluster of each container, per host, and the chains closed so far. What is held is bounded by the
    window, not by the search range."""

    def __init__(self, window: float, skew: float, report: str, summary: Dict[str, int]) -> None:
        self.window = window
        self.skew = skew
        self.report = report
        self.summary = summary
        self._items: Dict[str, Dict[str, List[Item]]] = {}
        self._chains: List[Tuple[Tuple[str, str, int], Chain]] = []
        self._order = 0

    def add(self, host: str, key: str, item: Item) -> None:
        """Items arrive in replay order, so per container in time order: a gap over `window` closes the cluster."""
        self._order += 1
        item.order = self._order
        clusters = self._items.setdefault(host, {})
        cluster = clusters.get(key)
        if cluster and item.time - cluster[-1].time > self.window:
            self._close(host, key, cluster)
            cluster = None
        if cluster:
            cluster.append(item)
        else:
            clusters[key] = [item]

    def held(self) -> int:
        """How many items the open clusters hold (what the window bounds)."""
        return sum(len(cluster) for clusters in self._items.values() for cluster in clusters.values())

    def close_host(self, host: str) -> None:
        """Classify every cluster of a host that has no more events."""
        for key, cluster in sorted(self._items.pop(host, {}).items()):
            self._close(host, key, cluster)

    def close_idle(self, host: str, now: float) -> None:
        """Classify the clusters of `host` whose last item replay time has left more than `window` behind."""
        clusters = self._items.get(host, {})
        for key in [k for k, cluster in clusters.items() if now - cluster[-1].time > self.window]:
            self._close(host, key, clusters.pop(key))

    def close_all(self) -> List[Chain]:
        """Classify what is still open and hand over every chain, in the order their clusters began."""
        for host in sorted(self._items):
            for key, cluster in sorted(self._items[host].items()):
                self._close(host, key, cluster)
        self._items = {}
        self._chains.sort(key=lambda pair: pair[0])
        chains = [chain for _, chain in self._chains]
        self._chains = []
        return chains

    def _close(self, host: str, key: str, cluster: List[Item]) -> None:
        chain = classify(host, key, cluster, self.skew, self.report)
        if chain is not None:
            self.summary[_COUNTS[chain.category]] += 1
            self._chains.append(((host, key, cluster[0].order), chain))


def classify(host: str, key: str, items: List[Item], skew: float, report: str) -> Optional["Chain"]:
    """The chain a closed cluster of one container forms, or None when it holds no trigger or is not reported."""
    triggers = [i for i in items if i.kind in TRIGGERS]
    if not triggers:
        return None
    first_trigger = triggers[0]
    results = [i for i in items if i.kind in RESULTS
               and i.time >= first_trigger.time - skew]
    ok_calls = [i for i in triggers if i.kind == "syscall" and i.success]
    names = sorted({i.name for i in triggers if i.kind == "syscall"})
    if results:
        kinds = {i.kind for i in results}
        if "helper_exec" in kinds:
            finding, severity = "release_agent_host_exec", "critical"
        elif "child_start" in kinds:
            finding, severity = "runtime_socket_escape", "critical"
        elif "setns" in {i.name for i in ok_calls}:
            finding, severity = "nsenter_host_exec", "critical"
        elif "chroot" in {i.name for i in ok_calls}:
            finding, severity = "chroot_host_exec", "critical"
        else:
            finding, severity = "container_host_exec", "high"
        category = "escape"
    elif ok_calls:
        details = " ".join(i.detail for i in ok_calls)
        ok_names = {i.name for i in ok_calls}
        category = "suspicious"
        if "block_device=" in details and "mount" in ok_names:
            # A container mounting a block device reads the host's disk: an escape of the file system.
            finding, severity, category = "host_device_mount", "high", "escape"
        elif "open_by_handle_at" in ok_names:
            finding, severity = "host_file_handle", "high"
            if "host_root=" in details:  # a handle on inode 2 of the host device: the host's / (Shocker)
                category = "escape"
        elif ok_names & {"init_module", "finit_module"}:
            finding, severity = "kernel_module_load", "high"
        elif ok_names & {"keyctl", "add_key", "request_key"}:
            finding, severity = "host_keyring_access", "medium"
        else:
            finding, severity = "namespace_syscall", "medium"
    else:
        socket = [i for i in triggers if i.kind == "socket_client" and i.detail]
        finding, severity = ("runtime_socket_attempt", "medium") if socket else ("escape_attempt", "low")
        category = "attempt"
    if report == "escapes" and category == "attempt":
        return None
    if report == "attempts" and category != "attempt":
        return None
    evidence: List[str] = []
    for item in items:
        if item.kind in RESULTS and item.time < first_trigger.time - skew:
            continue
        for cd in item.cds:
            if cd not in evidence:
                evidence.append(cd)
    anchor = results[0] if results else first_trigger
    chain_seed = "%s|%s|%.3f|%s" % (host, key, first_trigger.time, first_trigger.text)
    chain_id = hashlib.sha1(chain_seed.encode("utf-8")).hexdigest()[:20]
    tools = sorted({i.name for i in triggers if i.kind in ("tool", "socket_client")})
    host_bins = sorted({i.name for i in results if i.kind in ("host_exec", "helper_exec")})
    row: Dict[str, Value] = {
        "_time": "%.3f" % anchor.time,
        "host": host,
        "source": anchor.source,
        "sourcetype": anchor.sourcetype,
        "escape_severity": severity,
        "escape_finding": finding,
        "escape_category": category,
        "escape_summary": "",  # these three read the container table: filled in by _row
        "escape_chain_id": chain_id,
        "escape_evidence_cd": evidence,
        "escape_container": key,
        CONTAINER_ID_FIELD: "",
        IDENTITY_FIELD: weakest_identity(i.identity for i in items),
        "escape_attribution": "",
        "escape_syscalls": names,
        "escape_tools": tools,
        "escape_host_binaries": host_bins,
        "escape_first_time": "%.3f" % items[0].time,
        "escape_steps": [i.text for i in items
                         if i.kind != "host_exec" or i.time >= first_trigger.time - skew][:50],
    }
    if first_trigger.cds:
        row["_cd"] = first_trigger.cds[0]
    attribution = next((i.attribution for i in triggers if i.attribution), "")
    return Chain(row, host, key, category, attribution, first_trigger.text, [i.text for i in results[:3]])


def weakest_identity(identities: Iterable[str]) -> str:
    """The least sure of the identities given ("" when none is given): a chain is as sure as its weakest item."""
    known = [CONTAINER_IDENTITIES.index(i) for i in identities if i in CONTAINER_IDENTITIES]
    return CONTAINER_IDENTITIES[max(known)] if known else ""


def alert_row(chain: Chain, container: Mapping[str, object]) -> Row:
    """The chain's alert row, with what the container table knows at the end of the search."""
    attribution = chain.attribution or str(container.get("evidence", "")) or "unknown"
    row = chain.row
    row[CONTAINER_ID_FIELD] = str(container.get("id", ""))
    row[IDENTITY_FIELD] = str(row[IDENTITY_FIELD]) or str(container.get("identity", "")) or CONTAINER_IDENTITIES[-1]
    row["escape_attribution"] = attribution
    row["escape_summary"] = _summary(row, attribution, chain.trigger_text, chain.result_texts)
    return row


def _summary(row: Mapping[str, Value], attribution: str, trigger_text: str, result_texts: List[str]) -> str:
    category, finding = row["escape_category"], row["escape_finding"]
    names, tools = list(row["escape_syscalls"]), list(row["escape_tools"])
    where = "container %s on %s (attributed by %s)" % (str(row["escape_container"])[:24], row["host"], attribution)
    if category == "escape":
        return "Escape chain %s in %s: %s, then %s." % (
            finding, where, ", ".join(names + tools) or trigger_text, "; ".join(result_texts))
    if category == "suspicious":
        return "Suspicious %s by a process in %s (%s)." % (", ".join(names), where, finding)
    return "Escape attempt in %s: %s executed with no successful escape syscall (blocked, e.g. by seccomp)." % (
        where, ", ".join(tools) or ", ".join(names))

