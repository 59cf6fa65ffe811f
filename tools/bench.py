"""./build.sh bench: what users pay for. A realistic generated workload, the base searches' selectivity, every
escape<verb> command's throughput through the real SCP v2 protocol next to a pass-through command on the same
input, and the correlation command's peak memory as events and windows grow.

The workload is generated from real record shapes (never invented ones):
- Linux audit: the lab's raw ENRICHED audit.log (tests/data/lab-run1/audit-session1.log.gz, 55k records, runtime
  noise about 80 % of the keyed volume, as its ground truth labels it), replayed as copies on several hosts with
  shifted times, pids and serials;
- Kubernetes API-server audit: the falco sample events (tests/data/public/kube_apiserver/falco_*.json) with new
  audit ids, names, namespaces and times; writes carry the kubectl last-applied-configuration annotation that real
  `kubectl apply` adds (a second copy of the spec, so bodies are large), reads are the same events at level Metadata;
- docker: the lab's dockerd debug log, docker events and docker inspect output with shifted times and names.

Usage: python -m tools.bench [--events N] [--rss-events N] [--chunk N] [--json PATH]
The last stdout line is exactly `BENCH min_ratio=<float> max_rss_mb=<int>`.
"""
import argparse
import copy
import csv
import gzip
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, IO, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from escape_engine.ground import Value

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
LAB = DATA / "lab-run1"
PUBLIC = DATA / "public"
APP = "TA_escape_to_host"
BUILT_APP = ROOT / "output" / APP
PASSTHROUGH = ROOT / "tests" / "integration" / "harness" / "commands" / "escapepassthrough.py"
COMMANDS_CONF = ROOT / "package" / "default" / "commands.conf"

Event = Dict[str, Value]

csv.field_size_limit(2 ** 31 - 1)  # replies may carry the 5 MB fields the fuzz test sends (splunklib does the same)

# Share of each source in the generated workload (audit records dominate a real deployment's volume).
MIX = (("audit", 0.80), ("kube", 0.15), ("docker", 0.05))
KUBE_WRITE_SHARE = 0.25     # the rest of the Kubernetes audit events are reads (get/list/watch) at level Metadata
HOSTS = 6                   # audit copies are spread over this many hosts before they are stacked in time


# ---- the per-command table -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CommandCase:
    """How to benchmark and fuzz one escape<verb> command.

    detection: the content/detections slug whose base search selects the command's input;
    pipe: which pipe of that search (1 = right after the base search) the command is; earlier pipes are run
          (untimed) to produce its input;
    overrides: arguments replacing those of the detection's pipe (e.g. the widest output for a fair worst case);
    reports: how the command reports malformed / out-of-order input: "warning" (inspector WARN message with a
             count) or "summary" (a summary count in an inspector message);
    emits_per_event: True when the command returns (up to) one row per input event, False when it emits only
             alerts (the fuzz test then checks counts rather than rows).
    """
    detection: str
    pipe: int
    overrides: Tuple[Tuple[str, str], ...] = ()
    emits_per_event: bool = True


# One entry per stanza of package/default/commands.conf; a command without an entry fails tests/unit/test_bench.py.
COMMANDS: Dict[str, CommandCase] = {
    "escapeinspect": CommandCase("container_allowlisted_workload", 1, (("suppressed", "include"),)),
    "escapethreshold": CommandCase("container_privileged_launch_threshold", 2, emits_per_event=False),
    "escapecorrelate": CommandCase("linux_container_escape_chain", 1, (("state", "none"),), emits_per_event=False),
    "escapewindows": CommandCase("windows_container_restricted_dir_exec", 1),
    "escapeesxi": CommandCase("esxi_unexpected_module_load", 1, emits_per_event=False),
}


def conf_commands(path: Path = COMMANDS_CONF) -> List[str]:
    """The escape<verb> stanzas of commands.conf, in file order."""
    names = re.findall(r"^\[(escape[a-z0-9]+)\]\s*$", path.read_text(encoding="utf-8"), flags=re.M)
    return names


_BREAKER: "re.Pattern[str]" = re.compile(r"x")  # replaced by the replay's breakers on first use (see _content)


# ---- detections, macros and the base-search matcher (the replay's own: tools/replay.py, tools/spllint.py) ----------
@dataclass
class Content:
    """The detections (content/detections) and the macro table the replay expands searches with."""
    detections: Dict[str, Any]
    macros: Dict[str, Any]


def _content() -> Content:
    sys.path.insert(0, str(ROOT / "package" / "bin"))
    from tools import content, replay  # noqa: PLC0415  (needs package/bin on sys.path for escape_engine)
    global _BREAKER
    _BREAKER = _breakers()
    return Content({d.slug: d for d in content.detections()}, replay.macro_table(content.CONTENT, {}))


def _plan(detection: Any, macros: Mapping[str, Any]) -> Tuple[str, List[str]]:
    from tools import spllint  # noqa: PLC0415
    base, replayed, _after = spllint.replay_plan(detection.search, detection.replay_pipes, macros)
    return base, replayed


def base_search(detection: Any, macros: Mapping[str, Any]) -> Any:
    """The detection's base search parsed by the replay (it refuses what it does not implement)."""
    from tools import spllint  # noqa: PLC0415
    return spllint.parse_search_expression(_plan(detection, macros)[0])


Matcher = Callable[[Mapping[str, Value], Dict[str, Any]], bool]


def compile_matcher(node: Any) -> Matcher:
    """The replay's matcher (tools/replay.py `matches`: same tree, same rules, its `_wildcard` patterns) made fast
    enough for a million events: patterns compiled once, and a plain term (no wildcard, no breaker inside) looked up
    in the event's set of breaker-delimited segments, which is what the replay's bounded pattern matches. Call the
    result with (event, {}) and reuse the dict for the same event across detections."""
    from tools import replay, spllint  # noqa: PLC0415
    if isinstance(node, spllint.BoolOp):
        kids = [compile_matcher(child) for child in node.children]
        if node.op == "NOT":
            return lambda e, c: not kids[0](e, c)
        if node.op == "AND":
            return lambda e, c: all(k(e, c) for k in kids)
        return lambda e, c: any(k(e, c) for k in kids)
    if node.field is None:
        if "*" not in node.value and not _BREAKER.search(node.value):
            word = node.value.lower()

            def segment_match(event: Mapping[str, Value], cache: Dict[str, Any]) -> bool:
                segments = cache.get("segments")
                if segments is None:
                    raw = event.get("_raw", "")
                    text = raw if isinstance(raw, str) else "\n".join(raw)
                    segments = cache["segments"] = set(_BREAKER.split(text.lower()))
                return word in segments
            return segment_match
        term = replay._wildcard(node.value, True)

        def raw_match(event: Mapping[str, Value], cache: Dict[str, Any]) -> bool:
            raw = event.get("_raw", "")
            return bool(term.search(raw if isinstance(raw, str) else "\n".join(raw)))
        return raw_match
    if node.field == "index":
        return lambda e, c: True  # every generated event is in scope, whatever index the macro names
    pattern = replay._wildcard(node.value, False)
    name = node.field

    def field_match(event: Mapping[str, Value], cache: Dict[str, Any]) -> bool:
        value = event.get(name)
        if value is None:
            return False
        return any(pattern.match(v) for v in ([value] if isinstance(value, str) else value))
    return field_match


def metadata_verdict(node: Any, event: Mapping[str, Value]) -> Optional[bool]:
    """The base search decided on an event's fields alone, in three-valued logic: True or False when no _raw term
    can change the outcome, None when one can."""
    from tools import replay, spllint  # noqa: PLC0415
    if isinstance(node, spllint.BoolOp):
        results = [metadata_verdict(child, event) for child in node.children]
        if node.op == "NOT":
            return None if results[0] is None else not results[0]
        if node.op == "AND":
            return False if False in results else None if None in results else True
        return True if True in results else None if None in results else False
    if node.field is None:
        return None
    return bool(replay.matches(node, event))


def _breakers() -> "re.Pattern[str]":
    from tools import replay  # noqa: PLC0415
    return re.compile("[{}]".format(replay._BREAKERS))


def matches(tree: Any, event: Mapping[str, Value]) -> bool:
    """The replay's own matcher, uncompiled (the unit tests check compile_matcher against it)."""
    from tools import replay  # noqa: PLC0415
    return bool(replay.matches(tree, event))


def command_args(case: CommandCase, content: Content, pipe: Optional[int] = None) -> Tuple[str, List[str]]:
    """(command, args) of a detection's replayed pipe, as splunkd passes them: tokenised, SPL quotes stripped."""
    from tools import replay, spllint  # noqa: PLC0415
    replayed = _plan(content.detections[case.detection], content.macros)[1]
    number = case.pipe if pipe is None else pipe
    if not 1 <= number <= len(replayed):
        raise ValueError("{}: pipe {} is not one of its {} replayed pipes".format(case.detection, number, len(replayed)))
    name, arg_text = spllint.command_name(spllint.expand_macros(replayed[number - 1], content.macros))
    args = replay.split_args(arg_text)
    if pipe is None:
        overrides = dict(case.overrides)
        args = [a for a in args if a.split("=", 1)[0] not in overrides] + \
            ["{}={}".format(k, v) for k, v in case.overrides]
    return name, args


def sample_events(detection: Any, kinds: Sequence[str] = ("fires", "silent")) -> List[Event]:
    """A detection's own bundled samples, read by the replay's readers (event breaking, timestamps)."""
    from tools import replay  # noqa: PLC0415
    specs = [s for kind in kinds for s in replay.sample_specs(detection, kind)]
    return [dict(e) for e in replay.load_events(specs, BUILT_APP)]  # type: ignore[arg-type]


# ---- the workload generator -----------------------------------------------------------------------------------------
_STAMP = re.compile(rb"msg=audit\((\d+)\.(\d+):(\d+)\)")
_PID = re.compile(rb" (p?pid)=(\d+)")


def _meta(sourcetype: str, source: str, host: str, when: float, serial: int) -> Event:
    return {"_time": "%.3f" % when, "host": host, "source": source, "sourcetype": sourcetype, "index": "main",
            "splunk_server": "bench-sh", "linecount": "1", "_cd": "0:%d" % serial, "_serial": str(serial),
            "_indextime": str(int(when) + 2)}


def audit_lines() -> List[bytes]:
    """The lab's raw audit log, split on b"\\n" only (str.splitlines() would split on the 0x1D of ENRICHED records)."""
    with gzip.open(LAB / "audit-session1.log.gz") as handle:
        return [line for line in handle.read().split(b"\n") if _STAMP.search(line)]


def generate_audit(count: int, *, density: int = 1, hosts: int = HOSTS, lines: Optional[List[bytes]] = None,
                   serial_base: int = 0) -> List[Event]:
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
    events: List[Event] = []
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


def generate_kube(count: int, rng: random.Random, start: float, span: float, serial_base: int = 0) -> List[Event]:
    templates = kube_templates()
    namespaces = ["default", "payments", "web", "batch", "monitoring", "kube-system", "ci-runner", "data"]
    events: List[Event] = []
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


def generate_docker(count: int, rng: random.Random, shift_span: float, serial_base: int = 0) -> List[Event]:
    templates = docker_templates()
    events: List[Event] = []
    for i in range(count):
        sourcetype, text, epoch = templates[i % len(templates)]
        copy_no = i // len(templates)
        shift = copy_no * 400.0 % max(shift_span, 400.0)
        if copy_no:
            text = re.sub(r"(name=|\"Name\":\"/?)([A-Za-z0-9_.-]+)", lambda m: m.group(1) + m.group(2) + "-c%d" % copy_no,
                          text)
        record = _meta(sourcetype, {"docker:daemon": "/var/log/dockerd.log", "docker:events": "docker_events",
                                    "docker:inspect": "escape_docker_inspect"}[sourcetype],
                       "bench-docker-%d" % (copy_no % 4), epoch + shift, serial_base + i)
        record["_raw"] = text
        events.append(record)
    return events


def generate_workload(total: int, seed: int = 1611) -> Dict[str, List[Event]]:
    """The whole workload by source (each newest first), `total` events over all sources."""
    rng = random.Random(seed)
    counts = {name: int(round(total * share)) for name, share in MIX}
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


def runtime_noise_share(events: Iterable[Event]) -> float:
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


# ---- SCP v2 at the byte level (timed path) ---------------------------------------------------------------------------
def encode_chunk(records: Sequence[Mapping[str, Value]]) -> bytes:
    """A CSV body as splunkd writes it (same encoding as tests/integration/harness/scp.py: __mv_ columns)."""
    sys.path.insert(0, str(ROOT))
    from tools.scp import encode_records  # noqa: PLC0415
    return encode_records(records).encode("utf-8")


@dataclass
class RawRun:
    seconds: float = 0.0
    rows_out: int = 0
    messages: List[List[str]] = field(default_factory=list)
    bodies: List[bytes] = field(default_factory=list)
    returncode: Optional[int] = None
    max_rss_kb: int = 0
    stderr: str = ""
    replies: int = 0


def run_raw(script: Path, args: Sequence[str], bodies: Sequence[bytes], env: Optional[Mapping[str, str]] = None,
            keep_bodies: bool = False, timeout: float = 600) -> RawRun:
    """Run `script` as splunkd does (getinfo, then one execute frame per body, each reply read before the next write)
    and time it from process start to the last reply. Bodies are bytes, so tests can send what splunkd might."""
    sys.path.insert(0, str(ROOT))
    from tools.scp import frame as _frame, read_frame as _read_frame, searchinfo  # noqa: PLC0415
    result = RawRun()
    body_list = list(bodies) or [b""]
    with tempfile.TemporaryDirectory() as dispatch_dir:
        process_env = dict(os.environ)
        process_env["PYTHONPATH"] = str(script.parent)
        process_env["PYTHONDONTWRITEBYTECODE"] = "1"
        process_env.update(env or {})
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=dispatch_dir, env=process_env)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        try:
            proc.stdin.write(_frame({"action": "getinfo", "preview": False,
                                     "searchinfo": searchinfo(script.stem, args, dispatch_dir)}))
            proc.stdin.flush()
            info = _read_frame(proc.stdout)
            if info is not None:
                result.messages.extend(info[0].get("inspector", {}).get("messages", []))
            if info is not None and not info[0].get("error") and not any(m[0] == "ERROR" for m in result.messages):
                for position, body in enumerate(body_list):
                    try:
                        proc.stdin.write(_frame({"action": "execute", "finished": position == len(body_list) - 1},
                                                body))
                        proc.stdin.flush()
                    except BrokenPipeError:  # the command died: its exit code and stderr tell why
                        break
                    reply = _read_frame(proc.stdout)
                    if reply is None:
                        break
                    result.replies += 1
                    result.messages.extend(reply[0].get("inspector", {}).get("messages", []))
                    if reply[1].strip():
                        result.rows_out += max(0, _count_rows(reply[1]))
                    if keep_bodies:
                        result.bodies.append(reply[1])
            result.seconds = time.perf_counter() - started
            # The command's own peak (VmHWM of the exec'd image), read while it waits for the end of input:
            # ru_maxrss from wait4 would count the pages the child shared with this (large) process before exec.
            hwm = _peak_rss_kb(proc.pid)
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
            result.stderr = proc.stderr.read().decode("utf-8", "replace")
            _pid, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            result.returncode = proc.returncode
            result.max_rss_kb = hwm if hwm else int(usage.ru_maxrss)
        finally:
            if proc.poll() is None and result.returncode is None:
                proc.kill()
                proc.wait()
    return result


def _peak_rss_kb(pid: int) -> int:
    try:
        for line in Path("/proc/{}/status".format(pid)).read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _count_rows(body: bytes) -> int:
    return sum(1 for _ in csv.reader(io.StringIO(body.decode("utf-8", "replace")))) - 1


def decode_bodies(bodies: Iterable[bytes]) -> List[Dict[str, Value]]:
    sys.path.insert(0, str(ROOT))
    from tools.scp import decode_records  # noqa: PLC0415
    rows: List[Dict[str, Value]] = []
    for body in bodies:
        rows.extend(decode_records(body.decode("utf-8")))
    return rows


def stage_app(built: Path, into: Path) -> Path:
    """A copy of the built bin/ (plus the pass-through command) with lib/ linked, laid out like etc/apps/<app>."""
    app = into / APP
    shutil.copytree(built / "bin", app / "bin")
    (app / "lib").symlink_to(built / "lib")
    (app / "lookups").symlink_to(built / "lookups")
    shutil.copy(PASSTHROUGH, app / "bin" / PASSTHROUGH.name)
    return app / "bin"


def chunked(records: Sequence[Event], size: int) -> List[bytes]:
    return [encode_chunk(records[i:i + size]) for i in range(0, len(records), size)] or [b""]


# ---- the benchmark -----------------------------------------------------------------------------------------------
def _say(text: str) -> None:
    print(text, flush=True)


def selectivity(workload: Mapping[str, List[Event]], content: Content) -> Tuple[Dict[str, int], Dict[str, List[Event]]]:
    """Per detection, how many events its base search (the replay's matcher) hands to its commands, and those
    events newest first."""
    parsed = {slug: base_search(d, content.macros) for slug, d in sorted(content.detections.items())}
    trees = {slug: compile_matcher(tree) for slug, tree in parsed.items()}
    counts = {slug: 0 for slug in trees}
    selected: Dict[str, List[Event]] = {slug: [] for slug in trees}
    verdicts: Dict[Tuple[str, ...], Dict[str, Optional[bool]]] = {}  # per (sourcetype, source, host, index)
    events = sorted((e for source in workload.values() for e in source), key=lambda e: float(str(e["_time"])),
                    reverse=True)
    for event in events:
        cache: Dict[str, Any] = {}
        key = tuple(str(event.get(f, "")) for f in ("sourcetype", "source", "host", "index"))
        known = verdicts.get(key)
        if known is None:
            known = verdicts[key] = {slug: metadata_verdict(tree, event) for slug, tree in parsed.items()}
        for slug, matcher in trees.items():
            verdict = known[slug]
            if verdict is True or (verdict is None and matcher(event, cache)):
                counts[slug] += 1
                selected[slug].append(event)
    return counts, selected


def replicated_samples(detection: Any, count: int) -> List[Event]:
    """`count` events cycled from a detection's bundled samples (fires and silent), each copy an hour later, with
    its own _cd; for commands whose sources the generated workload does not hold (Windows, ESXi)."""
    base = sample_events(detection)
    if not base:
        return []
    out: List[Event] = []
    for i in range(count):
        event = dict(base[i % len(base)])
        event["_time"] = "%.3f" % (float(str(event["_time"])) + 3600.0 * (i // len(base)))
        event["_cd"] = "1:%d" % i
        out.append(event)
    out.sort(key=lambda e: float(str(e["_time"])), reverse=True)
    return out


SHORT_RUN_SECONDS = 2.0   # below this, process start and load swings weigh on one run: measure more rounds
MAX_ROUNDS = 5


def _checked(run: RawRun, script: str, args: Sequence[str]) -> RawRun:
    if run.returncode != 0 or any(m[0] == "ERROR" for m in run.messages):
        raise RuntimeError("{} {} failed (exit {}): {} {}".format(script, " ".join(args), run.returncode,
                                                                 run.messages, run.stderr[-2000:]))
    return run


def measure_pair(bin_dir: Path, script: str, args: Sequence[str], bodies: Sequence[bytes], env: Mapping[str, str],
                 repeat: int) -> Tuple[RawRun, RawRun]:
    """(pass-through, command) on the same bodies, run alternately so both see the same load; the fastest run of each
    counts. `repeat` rounds, and more (up to MAX_ROUNDS) while a best run is shorter than SHORT_RUN_SECONDS."""
    best: List[Optional[RawRun]] = [None, None]
    rounds = 0
    while rounds < max(1, repeat) or (rounds < MAX_ROUNDS and max(r.seconds for r in best if r) < SHORT_RUN_SECONDS):
        rounds += 1
        for index, (name, arguments) in enumerate(((PASSTHROUGH.name, []), (script, list(args)))):
            run = _checked(run_raw(bin_dir / name, arguments, bodies, env=env), name, arguments)
            current = best[index]
            if current is None or run.seconds < current.seconds:
                best[index] = run
    assert best[0] is not None and best[1] is not None
    return best[0], best[1]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000000, help="workload size (all sources; default 1,000,000)")
    parser.add_argument("--rss-events", type=int, default=100000,
                        help="audit records of the 1x correlation memory run (2x and 4x follow; default 100,000)")
    parser.add_argument("--sample-events", type=int, default=20000,
                        help="events per command whose sources the workload lacks, cycled from its detection's samples")
    parser.add_argument("--chunk", type=int, default=50000, help="events per SCP execute chunk (default 50,000)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds per command (more while a run is under {:.0f} s, up to {}); the fastest counts "
                             "(default 1)".format(SHORT_RUN_SECONDS, MAX_ROUNDS))
    parser.add_argument("--json", type=Path, default=ROOT / "output" / "bench" / "results.json")
    options = parser.parse_args(argv)
    if not (BUILT_APP / "bin").is_dir():
        print("bench: output/{} is missing: run ./build.sh first".format(APP), file=sys.stderr)
        return 2
    missing = [c for c in conf_commands() if c not in COMMANDS]
    if missing:
        print("bench: no entry in tools/bench.py COMMANDS for {}".format(", ".join(missing)), file=sys.stderr)
        return 2
    content = _content()
    machine = "{} cores, {}, Python {}".format(os.cpu_count(), _cpu_model(), sys.version.split()[0])
    _say("bench: machine: " + machine)
    started = time.perf_counter()
    workload = generate_workload(options.events)
    total = sum(len(v) for v in workload.values())
    _say("bench: generated {} events ({}) in {:.1f} s; container-runtime noise {:.0%} of keyed non-execve audit syscalls (lab ground truth)".format(
        total, ", ".join("{} {}".format(len(v), k) for k, v in workload.items()), time.perf_counter() - started,
        runtime_noise_share(workload["audit"])))
    counts, selected = selectivity(workload, content)
    _say("\n(1) selectivity: share of all {} events each base search hands to its commands (tools/replay.py matcher)"
         .format(total))
    for slug, count in counts.items():
        _say("  {:45s} {:9d}  {:6.2%}".format(slug, count, count / total if total else 0))
    results: Dict[str, Any] = {"machine": machine, "events": total, "selectivity": counts, "commands": {}, "rss": {}}
    ratios: Dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bin_dir = stage_app(BUILT_APP, Path(tmp))
        env = {"ESCAPE_STATE_DIR": str(Path(tmp) / "state")}
        _say("\n(2) throughput through SCP v2 (chunks of {}), command vs pass-through on the same input".format(
            options.chunk))
        _say("  {:17s} {:>9s} {:>10s} {:>10s} {:>7s} {:>8s} {:>6s} {:>7s}  {}".format(
            "command", "events", "cmd ev/s", "pass ev/s", "ratio", "rows out", "cmd MB", "pass MB", "args"))
        for name in conf_commands():
            case = COMMANDS[name]
            records: List[Event] = selected[case.detection]
            origin = "workload"
            if not records:  # sources the generator does not make: the detection's own samples, repeated
                records = replicated_samples(content.detections[case.detection], options.sample_events)
                origin = "samples"
            for pipe in range(1, case.pipe):   # earlier pipes produce the input (untimed)
                up_name, up_args = command_args(case, content, pipe=pipe)
                up = run_raw(bin_dir / (up_name + ".py"), up_args, chunked(records, options.chunk), env=env,
                             keep_bodies=True)
                records = decode_bodies(up.bodies)  # type: ignore[assignment]
            command, args = command_args(case, content)
            bodies = chunked(records, options.chunk)
            passthrough, run = measure_pair(bin_dir, command + ".py", args, bodies, env, options.repeat)
            n = len(records)
            ratio = passthrough.seconds / run.seconds if run.seconds else 0.0
            ratios[name] = ratio
            results["commands"][name] = {"events": n, "input": origin, "seconds": run.seconds,
                                         "passthrough_seconds": passthrough.seconds, "ratio": ratio,
                                         "rows_out": run.rows_out, "args": args,
                                         "max_rss_mb": run.max_rss_kb // 1024,
                                         "passthrough_max_rss_mb": passthrough.max_rss_kb // 1024}
            _say("  {:17s} {:9d} {:10.0f} {:10.0f} {:7.2f} {:8d} {:6d} {:7d}  {}{}".format(
                name, n, n / run.seconds, n / passthrough.seconds, ratio, run.rows_out, run.max_rss_kb // 1024,
                passthrough.max_rss_kb // 1024,
                "" if origin == "workload" else "(input: its detection's samples) ", " ".join(args)[:60]))
        del workload, selected
        rss = correlation_memory(bin_dir, env, content, options.rss_events, options.chunk)
        results["rss"] = rss
    max_rss = max([v for v in rss.values()] + [c["max_rss_mb"] for c in results["commands"].values()] or [0])
    min_ratio = min(ratios.values()) if ratios else 0.0
    results.update({"min_ratio": min_ratio, "max_rss_mb": max_rss})
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _say("\nbench: results in {} ({:.0f} s in all)".format(options.json, time.perf_counter() - started))
    _say(bench_line(min_ratio, max_rss))
    return 0


def correlation_memory(bin_dir: Path, env: Mapping[str, str], content: Content, base: int,
                       chunk: int) -> Dict[str, int]:
    """Peak RSS (MB) of escapecorrelate at 1x/2x/4x events over one window and at 1x/2x/4x the window."""
    case = COMMANDS["escapecorrelate"]
    command, args = command_args(case, content)
    lines = audit_lines()
    out: Dict[str, int] = {}
    _say("\n(3) escapecorrelate peak RSS (1x = the lab log once per host, about {} audit records)".format(base))
    if base < len(lines):
        lines = lines[:base]  # a small run (tests): the start of the lab log, one host
    hosts = max(1, round(base / len(lines)))
    unit = hosts * len(lines)
    for label, density, factor in (("events_1x", 1, 1), ("events_2x", 2, 2), ("events_4x", 4, 4),
                                   ("window_2x", 1, 2), ("window_4x", 1, 4)):
        events = generate_audit(unit * factor, density=density, hosts=hosts, lines=lines)
        first, last = float(str(events[-1]["_time"])), float(str(events[0]["_time"]))
        run = run_raw(bin_dir / (command + ".py"), args, chunked(events, chunk), env=env)
        if run.returncode != 0:
            raise RuntimeError("escapecorrelate failed: {}".format(run.stderr[-2000:]))
        out[label] = run.max_rss_kb // 1024
        _say("  {:10s} {:8d} events over {:6.0f} s on {} host(s): {:5d} MB".format(
            label, len(events), last - first, hosts, out[label]))
    return out


def bench_line(min_ratio: float, max_rss_mb: int) -> str:
    return "BENCH min_ratio={:.3f} max_rss_mb={:d}".format(min_ratio, int(max_rss_mb))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
