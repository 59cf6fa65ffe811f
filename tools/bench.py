"""./build.sh bench: what users pay for. A realistic generated workload, the base searches' selectivity, every
escape<verb> command's throughput through the real SCP v2 protocol next to a pass-through command on the same
input, and the correlation command's peak memory as events and windows grow.

The workload is generated from real record shapes (never invented ones):
- Linux audit: the lab's raw ENRICHED audit.log (../shared/data/lab-run1/audit-session1.log.gz, 55k records, runtime
  noise about 80 % of the keyed volume as telemetry.md section 3.5 measured), replayed as copies on several hosts with
  shifted times, pids and serials;
- Kubernetes API-server audit: the falco sample events (../shared/data/public/kube_apiserver/falco_*.json) with new
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
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, IO, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
LAB = SHARED / "data" / "lab-run1"
PUBLIC = SHARED / "data" / "public"
APP = "TA_escape_to_host"
BUILT_APP = ROOT / "output" / APP
PASSTHROUGH = ROOT / "tests" / "integration" / "harness" / "commands" / "escapepassthrough.py"
COMMANDS_CONF = ROOT / "package" / "default" / "commands.conf"

Value = Union[str, List[str]]
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
}


def conf_commands(path: Path = COMMANDS_CONF) -> List[str]:
    """The escape<verb> stanzas of commands.conf, in file order."""
    names = re.findall(r"^\[(escape[a-z0-9]+)\]\s*$", path.read_text(encoding="utf-8"), flags=re.M)
    return names


# ---- detections, macros and the base-search matcher -----------------------------------------------------------------
def _content() -> Tuple[Dict[str, Dict[str, Any]], Dict[str, str]]:
    sys.path.insert(0, str(ROOT / "package" / "bin"))
    from tools import content  # noqa: PLC0415  (needs package/bin on sys.path for escape_engine)
    detections = {}
    for path in sorted((ROOT / "content" / "detections").glob("*.yml")):
        data = content.load_yaml(path)
        detections[data["slug"]] = data
    macros = {m["name"]: m["definition"] for m in content.macros()}
    for slug in detections:  # the per-detection filter hooks, rendered at build time as `search *`
        macros.setdefault("escape_{}_filter".format(slug), "search *")
    return detections, macros


def expand_macros(text: str, macros: Mapping[str, str]) -> str:
    """Expand argument-less `macro` references (nested too); an unknown macro is an error."""
    for _ in range(20):
        found = re.search(r"`([^`(]+)`", text)
        if not found:
            return text
        name = found.group(1)
        if name not in macros:
            raise ValueError("unknown macro `{}`".format(name))
        text = text[:found.start()] + macros[name] + text[found.end():]
    raise ValueError("macro expansion does not end")


def pipes(detection: Mapping[str, Any], macros: Mapping[str, str]) -> List[str]:
    """The detection's search split into its pipes with macros expanded (pipe 0 is the base search)."""
    search = " ".join(str(detection["search"]).split())
    parts, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(search):
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "([":
            depth += 1
        elif not quoted and char in ")]":
            depth -= 1
        elif not quoted and depth == 0 and char == "|":
            parts.append(search[start:i].strip())
            start = i + 1
    parts.append(search[start:].strip())
    return [expand_macros(p, macros) for p in parts]


def command_args(case: CommandCase, detections: Mapping[str, Any], macros: Mapping[str, str],
                 pipe: Optional[int] = None) -> Tuple[str, List[str]]:
    """(command, args) of a detection's pipe, as splunkd passes them: tokenised, SPL quotes stripped."""
    text = pipes(detections[case.detection], macros)[case.pipe if pipe is None else pipe]
    words = shlex.split(text)
    name, args = words[0], words[1:]
    if pipe is None:
        overrides = dict(case.overrides)
        kept = [a for a in args if a.split("=", 1)[0] not in overrides]
        args = kept + ["{}={}".format(k, v) for k, v in case.overrides]
    return name, args


_BOUNDARY = "(?<![A-Za-z0-9]){}(?![A-Za-z0-9])"


class BaseSearch:
    """A documented simple matcher for the base searches we ship (until tools/replay.py's matcher lands on main).

    It implements: bare terms and quoted phrases (case-insensitive, bounded by non-alphanumeric characters as Splunk's
    breakers bound tokens), field=value for sourcetype, source, host and index (case-insensitive, `*` wildcard),
    AND (implicit or explicit), OR, NOT and parentheses, with Splunk's precedence (NOT > OR > AND: in the search
    command OR binds tighter than the implicit AND). Any other field=value is refused, never guessed.
    """

    FIELDS = ("sourcetype", "source", "host", "index")

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = re.findall(r'\(|\)|[A-Za-z_.]+!?="[^"]*"|[A-Za-z_.]+!?=[^\s()]+|"[^"]*"|[^\s()]+', text)
        self.pos = 0
        self.tree = self._and()
        if self.pos != len(self.tokens):
            raise ValueError("cannot parse base search at {!r}: {}".format(self.tokens[self.pos], text))

    # grammar: and := or+ ; or := not ("OR" not)* ; not := "NOT" not | atom ; atom := "(" and ")" | term
    def _peek(self) -> Optional[str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _and(self) -> Any:
        items = []
        while self._peek() not in (None, ")"):
            if self._peek() == "AND":
                self.pos += 1
                continue
            items.append(self._or())
        return ("and", items)

    def _or(self) -> Any:
        items = [self._not()]
        while self._peek() == "OR":
            self.pos += 1
            items.append(self._not())
        return ("or", items) if len(items) > 1 else items[0]

    def _not(self) -> Any:
        if self._peek() == "NOT":
            self.pos += 1
            return ("not", self._not())
        token = self.tokens[self.pos]
        self.pos += 1
        if token == "(":
            inner = self._and()
            if self._peek() != ")":
                raise ValueError("unbalanced parentheses in {}".format(self.text))
            self.pos += 1
            return inner
        field_match = re.match(r'([A-Za-z_.]+)(!?)=(.*)$', token)
        if field_match:
            name, negated, value = field_match.groups()
            if name not in self.FIELDS:
                raise ValueError("the bench matcher does not implement field {}= (only {})".format(
                    name, ", ".join(self.FIELDS)))
            pattern = re.compile("^" + re.escape(value.strip('"')).replace(r"\*", ".*") + "$", re.I)
            node = ("field", name, pattern)
            return ("not", node) if negated else node
        phrase = token.strip('"')
        words = _TOKEN.findall(phrase.lower())
        if not words or " ".join(words) != " ".join(phrase.lower().split()):
            raise ValueError("the bench matcher implements alphanumeric terms and phrases only, not {!r}".format(token))
        return ("term", re.compile(_BOUNDARY.format(re.escape(phrase).replace(r"\ ", r"\s+")), re.I), words)

    def matches(self, event: Mapping[str, Value], cache: Optional[Dict[str, Any]] = None) -> bool:
        """`cache` (one dict per event) keeps the event's token set across detections."""
        return self._eval(self.tree, event, {} if cache is None else cache)

    def _eval(self, node: Any, event: Mapping[str, Value], cache: Dict[str, Any]) -> bool:
        kind = node[0]
        if kind == "and":
            return all(self._eval(n, event, cache) for n in node[1])
        if kind == "or":
            return any(self._eval(n, event, cache) for n in node[1])
        if kind == "not":
            return not self._eval(node[1], event, cache)
        if kind == "field":
            value = event.get(node[1], "")
            return bool(node[2].match(value if isinstance(value, str) else ""))
        tokens = cache.get("tokens")
        if tokens is None:
            raw = event.get("_raw", "")
            tokens = cache["tokens"] = set(_TOKEN.findall((raw if isinstance(raw, str) else "").lower()))
        if not all(word in tokens for word in node[2]):
            return False
        if len(node[2]) == 1:
            return True
        raw = event.get("_raw", "")
        return bool(node[1].search(raw if isinstance(raw, str) else ""))


_TOKEN = re.compile(r"[a-z0-9]+")


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
    from tests.integration.harness.scp import encode_records  # noqa: PLC0415
    return encode_records(records).encode("utf-8")


def _frame(metadata: Mapping[str, Any], body: bytes = b"") -> bytes:
    meta = json.dumps(metadata).encode("utf-8")
    return b"chunked 1.0,%d,%d\n" % (len(meta), len(body)) + meta + body


def _read_frame(stream: IO[bytes]) -> Optional[Tuple[Dict[str, Any], bytes]]:
    header = stream.readline()
    if not header:
        return None
    if not header.startswith(b"chunked 1.0,"):
        raise RuntimeError("not an SCP v2 frame header: {!r}".format(header[:200]))
    meta_len, body_len = (int(n) for n in header[len(b"chunked 1.0,"):].strip().split(b","))
    return json.loads(stream.read(meta_len).decode("utf-8")), stream.read(body_len)


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
    from tests.integration.harness.scp import searchinfo  # noqa: PLC0415
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
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
            result.stderr = proc.stderr.read().decode("utf-8", "replace")
            _pid, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            result.returncode = proc.returncode
            result.max_rss_kb = int(usage.ru_maxrss)
        finally:
            if proc.poll() is None and result.returncode is None:
                proc.kill()
                proc.wait()
    return result


def _count_rows(body: bytes) -> int:
    return sum(1 for _ in csv.reader(io.StringIO(body.decode("utf-8", "replace")))) - 1


def decode_bodies(bodies: Iterable[bytes]) -> List[Dict[str, Value]]:
    sys.path.insert(0, str(ROOT))
    from tests.integration.harness.scp import decode_records  # noqa: PLC0415
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


def selectivity(workload: Mapping[str, List[Event]], detections: Mapping[str, Any],
                macros: Mapping[str, str]) -> Tuple[Dict[str, int], Dict[str, List[Event]]]:
    """Per detection, how many events its base search hands to its commands, and those events (newest first)."""
    matchers = {slug: BaseSearch(pipes(d, macros)[0]) for slug, d in sorted(detections.items())}
    counts = {slug: 0 for slug in matchers}
    selected: Dict[str, List[Event]] = {slug: [] for slug in matchers}
    events = sorted((e for source in workload.values() for e in source), key=lambda e: float(str(e["_time"])),
                    reverse=True)
    for event in events:
        cache: Dict[str, Any] = {}
        for slug, matcher in matchers.items():
            if matcher.matches(event, cache):
                counts[slug] += 1
                selected[slug].append(event)
    return counts, selected


def measure(bin_dir: Path, script: str, args: Sequence[str], bodies: Sequence[bytes], env: Mapping[str, str],
            repeat: int) -> RawRun:
    best: Optional[RawRun] = None
    for _ in range(repeat):
        run = run_raw(bin_dir / script, args, bodies, env=env)
        if run.returncode != 0 or any(m[0] == "ERROR" for m in run.messages):
            raise RuntimeError("{} {} failed (exit {}): {} {}".format(script, " ".join(args), run.returncode,
                                                                     run.messages, run.stderr[-2000:]))
        if best is None or run.seconds < best.seconds:
            best = run
    assert best is not None
    return best


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000000, help="workload size (all sources; default 1,000,000)")
    parser.add_argument("--rss-events", type=int, default=100000,
                        help="audit records of the 1x correlation memory run (2x and 4x follow; default 100,000)")
    parser.add_argument("--chunk", type=int, default=50000, help="events per SCP execute chunk (default 50,000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per command; the fastest counts (default 1)")
    parser.add_argument("--json", type=Path, default=ROOT / "output" / "bench" / "results.json")
    options = parser.parse_args(argv)
    if not (BUILT_APP / "bin").is_dir():
        print("bench: output/{} is missing: run ./build.sh first".format(APP), file=sys.stderr)
        return 2
    missing = [c for c in conf_commands() if c not in COMMANDS]
    if missing:
        print("bench: no entry in tools/bench.py COMMANDS for {}".format(", ".join(missing)), file=sys.stderr)
        return 2
    detections, macros = _content()
    machine = "{} cores, {}, Python {}".format(os.cpu_count(), _cpu_model(), sys.version.split()[0])
    _say("bench: machine: " + machine)
    started = time.perf_counter()
    workload = generate_workload(options.events)
    total = sum(len(v) for v in workload.values())
    _say("bench: generated {} events ({}) in {:.1f} s; container-runtime noise {:.0%} of keyed non-execve audit syscalls (lab ground truth)".format(
        total, ", ".join("{} {}".format(len(v), k) for k, v in workload.items()), time.perf_counter() - started,
        runtime_noise_share(workload["audit"])))
    counts, selected = selectivity(workload, detections, macros)
    _say("\n(1) selectivity: share of all {} events each base search hands to its commands".format(total))
    for slug, count in counts.items():
        _say("  {:45s} {:9d}  {:6.2%}".format(slug, count, count / total if total else 0))
    results: Dict[str, Any] = {"machine": machine, "events": total, "selectivity": counts, "commands": {}, "rss": {}}
    ratios: Dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bin_dir = stage_app(BUILT_APP, Path(tmp))
        env = {"ESCAPE_STATE_DIR": str(Path(tmp) / "state")}
        _say("\n(2) throughput through SCP v2 (chunks of {}), command vs pass-through on the same input".format(
            options.chunk))
        _say("  {:17s} {:>9s} {:>10s} {:>10s} {:>7s} {:>8s}  {}".format(
            "command", "events", "cmd ev/s", "pass ev/s", "ratio", "rows out", "args"))
        for name in conf_commands():
            case = COMMANDS[name]
            records: List[Event] = selected[case.detection]
            for pipe in range(1, case.pipe):   # earlier pipes produce the input (untimed)
                up_name, up_args = command_args(case, detections, macros, pipe=pipe)
                up = run_raw(bin_dir / (up_name + ".py"), up_args, chunked(records, options.chunk), env=env,
                             keep_bodies=True)
                records = decode_bodies(up.bodies)  # type: ignore[assignment]
            command, args = command_args(case, detections, macros)
            bodies = chunked(records, options.chunk)
            passthrough = measure(bin_dir, PASSTHROUGH.name, [], bodies, env, options.repeat)
            run = measure(bin_dir, command + ".py", args, bodies, env, options.repeat)
            n = len(records)
            ratio = passthrough.seconds / run.seconds if run.seconds else 0.0
            ratios[name] = ratio
            results["commands"][name] = {"events": n, "seconds": run.seconds, "passthrough_seconds": passthrough.seconds,
                                         "ratio": ratio, "rows_out": run.rows_out, "args": args,
                                         "max_rss_mb": run.max_rss_kb // 1024}
            _say("  {:17s} {:9d} {:10.0f} {:10.0f} {:7.2f} {:8d}  {}".format(
                name, n, n / run.seconds, n / passthrough.seconds, ratio, run.rows_out, " ".join(args)[:60]))
        del workload, selected
        rss = correlation_memory(bin_dir, env, detections, macros, options.rss_events, options.chunk)
        results["rss"] = rss
    max_rss = max([v for v in rss.values()] + [c["max_rss_mb"] for c in results["commands"].values()] or [0])
    min_ratio = min(ratios.values()) if ratios else 0.0
    results.update({"min_ratio": min_ratio, "max_rss_mb": max_rss})
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _say("\nbench: results in {} ({:.0f} s in all)".format(options.json, time.perf_counter() - started))
    _say(bench_line(min_ratio, max_rss))
    return 0


def correlation_memory(bin_dir: Path, env: Mapping[str, str], detections: Mapping[str, Any],
                       macros: Mapping[str, str], base: int, chunk: int) -> Dict[str, int]:
    """Peak RSS (MB) of escapecorrelate at 1x/2x/4x events over one window and at 1x/2x/4x the window."""
    case = COMMANDS["escapecorrelate"]
    command, args = command_args(case, detections, macros)
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
