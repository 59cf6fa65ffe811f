"""The bench's generated workload, from real record shapes (never invented ones): copies of the lab's raw audit log,
the falco Kubernetes audit samples and the lab's docker logs, with shifted times, pids, serials and names
(tools/bench.py describes the mix). Every input lives in tests/data (tests/data/PROVENANCE.md).
"""
import copy
import csv
import gzip
import json
import random
import re
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from escape_engine.ground import Row

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
LAB = DATA / "lab-run1"
PUBLIC = DATA / "public"

# Share of each source in the generated workload (audit records dominate a real deployment's volume).
MIX = (("audit", 0.80), ("kube", 0.15), ("docker", 0.05))
KUBE_WRITE_SHARE = 0.25     # the rest of the Kubernetes audit events are reads (get/list/watch) at level Metadata
HOSTS = 6                   # audit copies are spread over this many hosts before they are stacked in time


_STAMP = re.compile(rb"msg=audit\((\d+)\.(\d+):(\d+)\)")
_PID = re.compile(rb" (p?pid)=(\d+)")


def _meta(sourcetype: str, source: str, host: str, when: float, serial: int) -> Row:
    return {"_time": "%.3f" % when, "host": host, "source": source, "sourcetype": sourcetype, "index": "main",
            "splunk_server": "bench-sh", "linecount": "1", "_cd": "0:%d" % serial, "_serial": str(serial),
            "_indextime": str(int(when) + 2)}


def audit_lines() -> List[bytes]:
    """The lab's raw audit log, split on b"\\n" only (str.splitlines() would split on the 0x1D of ENRICHED records)."""
    with gzip.open(LAB / "audit-session1.log.gz") as handle:
        return [line for line in handle.read().split(b"\n") if _STAMP.search(line)]


def generate_audit(count: int, *, density: int = 1, hosts: int = HOSTS, lines: Optional[List[bytes]] = None,
                   serial_base: int = 0) -> List[Row]:
    """`count` audit records, newest first (as Splunk hands them to a search-head command).

    Copies of the lab log go round-robin over `hosts` hosts. On each host, `density` consecutive copies share one time
    span (more events over the same window: their pids are offset, serials new); further copies follow in time (a
    longer window). The log repeats as often as needed; the last copy may be cut short.
    """
    lines = lines if lines is not None else audit_lines()
    stamps = [_STAMP.search(line) for line in lines]
    first = min(float(m.group(1)) for m in stamps if m)
    last = max(float(m.group(1)) for m in stamps if m)
    span = last - first + 60
    events: List[Row] = []
    copy_index = 0
    while len(events) < count:
        layer = copy_index // hosts
        host = "bench-node-%02d" % (copy_index % hosts)
        shift = (layer // density) * span
        pid_offset = 50000 * (layer % density)
        serial_offset = 1000000 * layer

        def stamp(m: "re.Match[bytes]", shift: float = shift, serial_offset: int = serial_offset) -> bytes:
            return b"msg=audit(%.3f:%d)" % (float(m.group(1) + b"." + m.group(2)) + shift,
                                             int(m.group(3)) + serial_offset)

        def pid(m: "re.Match[bytes]", offset: int = pid_offset) -> bytes:
            return b" %s=%d" % (m.group(1), int(m.group(2)) + offset)

        for line, found in zip(lines, stamps):
            if len(events) >= count:
                break
            assert found is not None
            text = _STAMP.sub(stamp, line, count=1)
            if pid_offset:
                text = _PID.sub(pid, text)
            when = float(found.group(1) + b"." + found.group(2)) + shift
            event = _meta("linux:audit", "/var/log/audit/audit.log", host, when, serial_base + len(events))
            event["_raw"] = text.decode("utf-8", "replace")
            events.append(event)
        copy_index += 1
    events.sort(key=lambda e: float(str(e["_time"])), reverse=True)
    return events


def kube_templates() -> List[Dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((PUBLIC / "kube_apiserver").glob("falco_*.json"))]


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + ".%06dZ" % int((epoch % 1) * 1e6)


def generate_kube(count: int, rng: random.Random, start: float, span: float, serial_base: int = 0) -> List[Row]:
    templates = kube_templates()
    namespaces = ["default", "payments", "web", "batch", "monitoring", "kube-system", "ci-runner", "data"]
    events: List[Row] = []
    for i in range(count):
        event = copy.deepcopy(templates[i % len(templates)])
        when = start + rng.random() * span
        suffix = "%05x" % rng.randrange(16 ** 5)
        namespace = rng.choice(namespaces)
        event["auditID"] = "%08x-%04x-4%03x-8%03x-%012x" % (rng.getrandbits(32), rng.getrandbits(16),
                                                           rng.getrandbits(12), rng.getrandbits(12),
                                                           rng.getrandbits(48))
        for key in ("timestamp", "requestReceivedTimestamp", "stageTimestamp"):
            event[key] = _iso(when)
        event.setdefault("metadata", {})["creationTimestamp"] = _iso(when)
        ref = event.setdefault("objectRef", {})
        ref["namespace"] = namespace
        if "requestURI" in event:
            event["requestURI"] = re.sub(r"/namespaces/[^/]+/", "/namespaces/%s/" % namespace, event["requestURI"])
        body = event.get("requestObject")
        if rng.random() < KUBE_WRITE_SHARE and isinstance(body, dict):
            meta = body.setdefault("metadata", {})
            meta["name"] = str(meta.get("name") or meta.get("generateName") or "workload-") + suffix
            meta["namespace"] = namespace
            meta.setdefault("annotations", {})["kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(
                body, sort_keys=True, separators=(",", ":"))
            if isinstance(event.get("responseObject"), dict):
                event["responseObject"].setdefault("metadata", {})["name"] = meta["name"]
        else:
            event["verb"] = rng.choice(["get", "list", "watch", "get", "list"])
            event["level"] = "Metadata"
            event.pop("requestObject", None)
            event.pop("responseObject", None)
            event["responseStatus"] = {"metadata": {}, "code": 200}
            if event["verb"] == "get":
                ref["name"] = "obj-" + suffix
        record = _meta("kube:apiserver-audit", "/var/log/kubernetes/audit/audit.log", "bench-cluster-%d" % (i % 3),
                       when, serial_base + i)
        record["_raw"] = json.dumps(event, separators=(",", ":"))
        events.append(record)
    return events


def docker_templates() -> List[Tuple[str, str, float]]:
    """(sourcetype, text, epoch) of every lab docker line/event/inspect object."""
    out: List[Tuple[str, str, float]] = []
    with gzip.open(LAB / "dockerd-debug.log.gz") as handle:
        for line in handle.read().split(b"\n"):
            found = re.match(rb'time="(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)', line)
            if found:
                epoch = time.mktime(time.strptime(found.group(1).decode(), "%Y-%m-%dT%H:%M:%S")) - time.timezone
                out.append(("docker:daemon", line.decode("utf-8", "replace"), float(epoch)))
    for line in (LAB / "docker-events.jsonl").read_bytes().split(b"\n"):
        if line.strip():
            out.append(("docker:events", line.decode("utf-8"), float(json.loads(line)["time"])))
    for item in json.loads((LAB / "docker-inspect.json").read_text(encoding="utf-8")):
        out.append(("docker:inspect", json.dumps(item, separators=(",", ":")), 1795923960.0))
    return out


def _renamed(text: str, copy_no: int) -> str:
    """A docker line or object with a per-copy suffix on every container name."""
    return re.sub(r"(name=|\"Name\":\"/?)([A-Za-z0-9_.-]+)", lambda m: m.group(1) + m.group(2) + "-c%d" % copy_no,
                  text)


def generate_docker(count: int, rng: random.Random, shift_span: float, serial_base: int = 0) -> List[Row]:
    templates = docker_templates()
    events: List[Row] = []
    for i in range(count):
        sourcetype, text, epoch = templates[i % len(templates)]
        copy_no = i // len(templates)
        shift = copy_no * 400.0 % max(shift_span, 400.0)
        if copy_no:
            text = _renamed(text, copy_no)
        record = _meta(sourcetype, {"docker:daemon": "/var/log/dockerd.log", "docker:events": "docker_events",
                                    "docker:inspect": "escape_docker_inspect"}[sourcetype],
                       "bench-docker-%d" % (copy_no % 4), epoch + shift, serial_base + i)
        record["_raw"] = text
        events.append(record)
    return events


def generate_workload(total: int, seed: int = 1611) -> Dict[str, List[Row]]:
    """The whole workload by source (each newest first), `total` events over all sources."""
    rng = random.Random(seed)
    counts = {name: round(total * share) for name, share in MIX}
    counts["audit"] = total - counts["kube"] - counts["docker"]
    audit = generate_audit(counts["audit"])
    newest = float(str(audit[0]["_time"])) if audit else 1795923651.0
    oldest = float(str(audit[-1]["_time"])) if audit else newest - 3600
    span = max(newest - oldest, 3600.0)
    kube = generate_kube(counts["kube"], rng, oldest, span, serial_base=counts["audit"])
    docker = generate_docker(counts["docker"], rng, span, serial_base=counts["audit"] + counts["kube"])
    for events in (kube, docker):
        events.sort(key=lambda e: float(str(e["_time"])), reverse=True)
    return {"audit": audit, "kube": kube, "docker": docker}


def runtime_noise_share(events: Iterable[Row]) -> float:
    """Share of the keyed (key="t1611") syscalls other than execve that the lab's ground truth labels benign-runtime.

    Generated copies keep each lab record's serial modulo 1,000,000, so the label of the original record applies.
    """
    labels: Dict[int, Tuple[str, str]] = {}
    with (LAB / "ground-truth-auditd.tsv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            labels[int(row["serial"])] = (row["label"], row["syscall"])
    keyed = noise = 0
    for event in events:
        raw = str(event["_raw"])
        if not raw.startswith("type=SYSCALL"):
            continue
        found = re.search(r"msg=audit\([\d.]+:(\d+)\)", raw)
        label = labels.get(int(found.group(1)) % 1000000) if found else None
        if label is None or label[1] == "execve":
            continue
        keyed += 1
        noise += label[0] == "benign-runtime"
    return noise / keyed if keyed else 0.0

