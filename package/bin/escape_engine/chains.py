"""Chains: a container's items closer than `window` seconds form one cluster, classified into an alert row when
replay time has passed it by more than `window` (no later item can join it).

A trigger plus a result is an escape (critical); a kernel usermode helper tied to the container is an escape with or
without a trigger seen (the helper's own calls show the container's file system run as root on the host); successful
calls that reach the host by themselves (a block device read, a write into a host process) are escapes (high), other
successful suspicious calls a suspicious-syscall finding (medium or high); failed calls and tool execs alone
(seccomp-blocked attempts leave only the execve) are an attempt (low; medium for a device node whose use the kernel
refused). Severity follows the outcome: a chain whose calls succeeded is never an attempt. What reads the container table (its id, the attribution, the summary) is filled in at the end of the search,
as a container's id or evidence may be learnt after its chain closed.
"""
import hashlib
from datetime import datetime, timezone
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from .auditfacts import INJECTION_CALLS, OPEN_CALLS
from .containers import ContainerFacts
from .evidence import cd_of, row_fields
from .ground import CONTAINER_ID_FIELD, CONTAINER_IDENTITIES, IDENTITY_FIELD, Row, Value
from .incident import container_id, incident_key

REPORTS = ("escapes", "attempts", "all")
TRIGGERS = ("syscall", "tool", "socket_client", "agent_write")
RESULTS = ("host_exec", "helper_exec", "child_start")
_COUNTS = {"escape": "escapes", "suspicious": "suspicious", "attempt": "attempts"}


def reported(report: str, category: str) -> bool:
    """Whether a chain of `category` (escape, suspicious, attempt) is among the rows of `report` (REPORTS)."""
    if report == "escapes":
        return category != "attempt"
    if report == "attempts":
        return category == "attempt"
    return True


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


def _helper_finding(items: List[Item]) -> str:
    """Which usermode helper ran: what armed it, when seen (a cgroup mount or release_agent write, a core_pattern
    write or a crash, a modprobe write), else the helper alone."""
    agents = " ".join(i.detail for i in items if i.kind == "agent_write")
    if "release_agent" in agents or any(i.kind == "syscall" and i.name == "mount" and i.success for i in items):
        return "release_agent_host_exec"
    if "core_pattern" in agents or any(i.kind == "crash" for i in items):
        return "core_pattern_host_exec"
    if "modprobe" in agents:
        return "modprobe_host_exec"
    return "usermode_helper_host_exec"


def _ok_finding(ok_calls: List[Item], triggers: List[Item]) -> Tuple[str, str, str]:
    """finding, severity, category of a chain whose successful calls had no result."""
    details = " ".join(i.detail for i in ok_calls)
    ok_names = {i.name for i in ok_calls}
    if "block_device=" in details and "mount" in ok_names:
        # A container mounting a block device reads the host's disk: an escape of the file system.
        return "host_device_mount", "high", "escape"
    if any(i.name in OPEN_CALLS and i.detail.startswith("block_device=") for i in ok_calls):
        return "host_device_access", "high", "escape"  # a block device opened: the host's disk read without a mount
    if ok_names & set(INJECTION_CALLS):
        return "host_process_injection", "high", "escape"  # a write into a process outside the container
    if "open_by_handle_at" in ok_names:
        # a handle on inode 2 of the host device: the host's / (Shocker)
        return "host_file_handle", "high", "escape" if "host_root=" in details else "suspicious"
    if ok_names & {"init_module", "finit_module"}:
        return "kernel_module_load", "high", "suspicious"
    if "bpf" in ok_names:
        return "kernel_bpf_load", "high", "suspicious"
    if ok_names & {"keyctl", "add_key", "request_key"}:
        return "host_keyring_access", "medium", "suspicious"
    if ok_names <= {"mknod", "mknodat"}:
        if any(i.kind == "syscall" and not i.success and i.name in OPEN_CALLS for i in triggers):
            return "raw_device_attempt", "medium", "attempt"  # the node was made, the kernel refused its use
        return "raw_device_node", "medium", "suspicious"
    return "namespace_syscall", "medium", "suspicious"


def classify(host: str, key: str, items: List[Item], skew: float, report: str) -> Optional["Chain"]:
    """The chain a closed cluster of one container forms, or None when it holds no trigger (nor a usermode helper)
    or is not reported."""
    triggers = [i for i in items if i.kind in TRIGGERS]
    helpers = [i for i in items if i.kind == "helper_exec"]
    if not triggers and not helpers:
        return None
    first_trigger = triggers[0] if triggers else helpers[0]
    results = [i for i in items if i.kind in RESULTS
               and i.time >= first_trigger.time - skew]
    ok_calls = [i for i in triggers if i.kind == "syscall" and i.success]
    names = sorted({i.name for i in triggers if i.kind == "syscall"})
    if results:
        kinds = {i.kind for i in results}
        if "helper_exec" in kinds:
            finding, severity = _helper_finding(items), "critical"
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
        finding, severity, category = _ok_finding(ok_calls, triggers)
    else:
        socket = [i for i in triggers if i.kind == "socket_client" and i.detail]
        finding, severity = ("runtime_socket_attempt", "medium") if socket else ("escape_attempt", "low")
        category = "attempt"
    if not reported(report, category):
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
        **row_fields(evidence),  # escape_evidence_cd and escape_evidence
        "escape_container": key,
        CONTAINER_ID_FIELD: "",
        IDENTITY_FIELD: weakest_identity(i.identity for i in items),
        "escape_attribution": "",
        "escape_syscalls": names,
        "escape_tools": tools,
        "escape_host_binaries": host_bins,
        # the containers a runtime client of this container started (runtime_socket_escape): the other end of the chain
        "escape_new_containers": sorted({i.name for i in results if i.kind == "child_start"}),
        "escape_first_time": "%.3f" % items[0].time,
        "escape_steps": [i.text for i in items
                         if i.kind != "host_exec" or i.time >= first_trigger.time - skew][:50],
    }
    if first_trigger.cds:
        row["_cd"] = cd_of(first_trigger.cds[0])
    attribution = next((i.attribution for i in triggers + helpers if i.attribution), "")
    result_texts: List[str] = []
    for item in results:
        if item.text not in result_texts and len(result_texts) < 3:
            result_texts.append(item.text)
    trigger_text = first_trigger.text
    if not triggers:  # a usermode helper alone: what armed it, when seen
        trigger_text = next((i.text for i in items if i.kind == "crash"), "no trigger write recorded")
    elif category == "escape" and not results:  # what reached the host: the successful calls that decided the finding
        trigger_text = "; ".join(dict.fromkeys(i.text for i in ok_calls if i.detail))[:600] or trigger_text
    return Chain(row, host, key, category, attribution, trigger_text, result_texts)


def weakest_identity(identities: Iterable[str]) -> str:
    """The least sure of the identities given ("" when none is given): a chain is as sure as its weakest item."""
    known = [CONTAINER_IDENTITIES.index(i) for i in identities if i in CONTAINER_IDENTITIES]
    return CONTAINER_IDENTITIES[max(known)] if known else ""


def alert_row(chain: Chain, container: Mapping[str, object], facts: Optional[ContainerFacts] = None) -> Row:
    """The chain's alert row, with what the container table knows at the end of the search and what the runtime's
    API said about the container (`facts`, from the container registry) when known."""
    attribution = chain.attribution or str(container.get("evidence", "")) or "unknown"
    row = chain.row
    row[CONTAINER_ID_FIELD] = best_container_id(chain.key, container)
    row[IDENTITY_FIELD] = str(row.get(IDENTITY_FIELD, "")) or str(container.get("identity", "")) or CONTAINER_IDENTITIES[-1]
    row["escape_attribution"] = attribution
    pod = ""
    if facts is not None:
        for field, value in (("escape_container_name", facts.name), ("escape_image", facts.image),
                             ("escape_pod", facts.pod), ("escape_namespace", facts.namespace),
                             ("escape_node", facts.node), ("escape_host_access", facts.host_access)):
            if value:
                row[field] = value
        pod = facts.pod_id()
    row["escape_incident"] = incident_key(chain.host, str(row[CONTAINER_ID_FIELD]), pod=pod,
                                          workload="{}/{}".format(chain.host, chain.key))
    row["escape_summary"] = _summary(row, attribution, chain.trigger_text, chain.result_texts, facts)
    return row


def best_container_id(key: str, container: Mapping[str, object]) -> str:
    """The longest container id known for a chain's container: the lineage table's (the id the runtime's own
    arguments named, escape_engine.lineage.runtimeargs), else the key when it is one."""
    known = container_id(str(container.get("id", "")))
    return known or container_id(key)


def container_words(row: Mapping[str, Value], facts: Optional[ContainerFacts]) -> str:
    """How the summary names the container: by name with its full id, image and pod when the runtime said them,
    else by its full id or whole attribution key (an SELinux or AppArmor label is never cut)."""
    cid = str(row.get(CONTAINER_ID_FIELD, "")) or str(row["escape_container"])
    if facts is None or not facts.name:
        return "container %s" % cid
    context = ["id %s" % cid]
    if facts.image:
        context.append("image %s" % facts.image)
    if facts.pod:
        context.append("pod %s/%s" % (facts.namespace or "-", facts.pod))
    if facts.node:
        context.append("node %s" % facts.node)
    return "container %s (%s)" % (facts.name, ", ".join(context))


def _access(facts: Optional[ContainerFacts]) -> str:
    """' Host access: privileged + host PID from the create by alice at <time>.' when the create call is known."""
    if facts is None or not facts.host_access:
        return ""
    by = " by %s" % facts.create_actor if facts.create_actor else ""
    when = facts.create_time or facts.created
    at = " at %s" % datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if when else ""
    return " Host access: %s from the create%s%s." % (facts.host_access, by, at)


def _summary(row: Mapping[str, Value], attribution: str, trigger_text: str, result_texts: List[str],
             facts: Optional[ContainerFacts]) -> str:
    category, finding = row["escape_category"], row["escape_finding"]
    names, tools = list(row["escape_syscalls"]), list(row["escape_tools"])
    where = "%s on %s (attributed by %s)" % (container_words(row, facts), row["host"], attribution)
    if category == "escape" and not result_texts:  # the calls reached the host by themselves (a disk, a process)
        text = "Escape %s in %s: %s succeeded (%s)." % (finding, where, ", ".join(names), trigger_text)
    elif category == "escape":
        text = "Escape chain %s in %s: %s, then %s." % (
            finding, where, ", ".join(names + tools) or trigger_text, "; ".join(result_texts))
    elif category == "suspicious":
        text = "Suspicious %s by a process in %s (%s)." % (", ".join(names), where, finding)
    elif finding == "raw_device_attempt":
        text = "Escape attempt in %s: a device node was made (%s), the kernel refused its use." % (
            where, ", ".join(names + tools))
    else:
        text = "Escape attempt in %s: %s executed with no successful escape syscall (blocked, e.g. by seccomp)." % (
            where, ", ".join(tools) or ", ".join(names))
    return text + _access(facts)
