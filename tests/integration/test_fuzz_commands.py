"""Every escape<verb> command in commands.conf survives malformed input over the real SCP v2 protocol.

Data-driven: the commands come from package/default/commands.conf, their arguments from the detection named in
tools/bench.py COMMANDS (one table for the benchmark and this test), their valid inputs and malformed variants from
INPUTS below by the command's input kind. A command without a COMMANDS entry or an input kind without an INPUTS
entry fails here, so nobody forgets to cover a new command.

Each run mixes real valid events (newest first) with malformed ones: truncated JSON or audit lines, wrong types,
missing fields, non-UTF-8 bytes inside the CSV body (splunklib decodes bodies with errors="replace"), a 5 MB field,
deeply nested JSON, duplicates and an event from a second host whose clock is skewed beyond the tolerated bound.
It asserts: no crash (exit 0, no ERROR message, one reply per chunk), every row the valid events give alone is still
there, and the command reports a count of the malformed (and, where order matters, out-of-order) events.

Bounded run time: ESCAPE_FUZZ_EXAMPLES hypothesis examples per command (default 3; each is one command process).
Longer runs: ESCAPE_FUZZ_EXAMPLES=200 ./test.sh tests/integration/test_fuzz_commands.py (see docs/performance.md).
"""
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escape_engine.reduce import Reducer
from tests.conftest import DATA
from tests.integration.harness.scp import encode_records
from tests.unit.linux_lab import lab_records
from tools import bench, benchscp

EXAMPLES = int(os.environ.get("ESCAPE_FUZZ_EXAMPLES", "3"))
BAD_BYTES = b"\xff\xfe\xc3(\x80"          # invalid UTF-8 as it might reach splunkd from a misdeclared CHARSET
PLACEHOLDER = "@@NON_UTF8@@"
BIG = 5 * 1024 * 1024
Event = Dict[str, Any]


# ---- valid inputs and malformed variants by input kind ----------------------------------------------------------
def _kube_events() -> List[Event]:
    paths = sorted((DATA / "public" / "kube_apiserver").glob("falco_create_*.json"))
    docker = json.loads((DATA / "lab-run1" / "docker-inspect.json").read_text(encoding="utf-8"))[:4]
    texts = [p.read_text(encoding="utf-8").strip() for p in paths] + [json.dumps(d) for d in docker]
    events = []
    for i, text in enumerate(texts):
        sourcetype = "kube:apiserver-audit" if i < len(paths) else "docker:inspect"
        events.append({"_raw": text, "_time": "%.3f" % (1795923900 - i), "host": "cluster-a",
                       "sourcetype": sourcetype, "source": "fuzz", "_cd": "0:%d" % i})
    return events


def _kube_malformed(valid: List[Event]) -> Dict[str, List[Event]]:
    spec = json.loads(valid[3]["_raw"])  # a pod create with a request body
    wrong = json.loads(json.dumps(spec))
    wrong["requestObject"]["spec"]["containers"] = "not-a-list"
    wrong["requestObject"]["spec"]["volumes"] = {"hostPath": 5}
    wrong["requestObject"]["spec"]["hostPID"] = "yes"
    wrong_inner = json.loads(json.dumps(spec))
    wrong_inner["requestObject"]["spec"]["containers"] = [7, None, {"securityContext": "privileged"}]
    wrong_inner["objectRef"] = ["pods"]
    big = json.loads(json.dumps(spec))
    big["requestObject"]["metadata"]["annotations"] = {"big": "x" * BIG}
    return {
        "truncated": [dict(valid[3], _raw=valid[3]["_raw"][:700])],
        "wrong_types": [dict(valid[3], _raw=json.dumps(wrong)), dict(valid[4], _raw=json.dumps(wrong_inner)),
                        dict(valid[3], _raw="12345"), dict(valid[3], _raw='"just a string"')],
        "missing_fields": [{"_time": "1795923000", "host": "cluster-a"}, {"_raw": "{}"},
                           dict(valid[2], _raw=json.dumps({k: v for k, v in json.loads(valid[2]["_raw"]).items()
                                                           if k != "objectRef"}))],
        "non_utf8": [dict(valid[3], _raw=valid[3]["_raw"][:40] + PLACEHOLDER + valid[3]["_raw"][40:]),
                     dict(valid[3], _raw=PLACEHOLDER + "{")],
        "huge_field": [dict(valid[3], _raw=json.dumps(big))],
        "deep_nesting": [dict(valid[3], _raw="[" * 100000 + "]" * 100000),
                         dict(valid[3], _raw='{"verb":"create","objectRef":' + '{"a":' * 50000 + "1" + "}" * 50001)],
        "duplicates": [dict(valid[0]), dict(valid[5])],
        "clock_skew": [dict(valid[1], host="cluster-b", _time="1795990000.000")],
    }


def _threshold_rows() -> List[Event]:
    rows = []
    for i in range(7):  # 7 privileged launches in one hour on one cluster: above the shipped threshold of 5
        rows.append({"_time": "%.3f" % (1795924000 - i * 60), "host": "cluster-a", "escape_launch": "1",
                     "escape_finding": "privileged", "escape_launch_id": "launch-%d" % i,
                     "escape_workload": "pod/default/p%d" % i, "escape_evidence_cd": "0:%d" % i,
                     "_cd": "0:%d" % i, "escape_severity": "high"})
    return rows


def _threshold_malformed(valid: List[Event]) -> Dict[str, List[Event]]:
    return {
        # a row cut after its first fields: no _time, host or evidence
        "truncated": [{"escape_launch": "1", "escape_finding": "privileged", "escape_launch_id": "cut"}],
        "wrong_types": [dict(valid[0], _time="not-a-time", escape_launch_id="bad-time"),
                        dict(valid[0], escape_launch=["1", "0"], escape_launch_id="mv"),
                        dict(valid[0], _time="nan", escape_launch_id="nan-time")],
        "missing_fields": [{"escape_launch": "1", "escape_finding": "privileged"}, {"host": "cluster-a"}],
        "non_utf8": [dict(valid[0], escape_workload="pod/" + PLACEHOLDER, escape_launch_id="utf")],
        "huge_field": [dict(valid[0], escape_workload="x" * BIG, escape_launch_id="huge")],
        "deep_nesting": [dict(valid[0], escape_workload="[" * 50000, escape_launch_id="deep")],
        "duplicates": [dict(valid[0]), dict(valid[1])],
        "clock_skew": [dict(valid[0], host="cluster-b", _time="1796000000.000", escape_launch_id="skewed")],
    }


# lab-run1 E02 (a -v /:/host container chroots into the host), newest first: escapecorrelate alerts on it.
E02 = (1795923825.0, 1795923829.0)


def _audit_events() -> List[Event]:
    keep = ("_raw", "_time", "host", "_cd", "source", "sourcetype")
    return [{k: r[k] for k in keep} for r in lab_records() if E02[0] <= float(r["_time"]) < E02[1]]


def _audit_malformed(valid: List[Event]) -> Dict[str, List[Event]]:
    syscall = next(e for e in valid if e["_raw"].startswith("type=SYSCALL"))
    newest = float(valid[0]["_time"])
    return {
        "truncated": [dict(syscall, _raw=syscall["_raw"][:25]), dict(syscall, _raw="type=SYSCALL msg=audit(17959")],
        "wrong_types": [dict(syscall, _raw=re.sub(r" pid=\d+", " pid=abc", syscall["_raw"]), _cd="9:1"),
                        dict(syscall, _time="not-a-time", _raw="type=SYSCALL msg=audit(x:y): pid=1")],
        "missing_fields": [{"_time": "1795923826.0", "host": "lab"}, {"_raw": "", "_time": "1795923826"}],
        "non_utf8": [dict(syscall, _raw="type=EXECVE msg=audit(1795923826.5:999999): argc=1 a0=" + PLACEHOLDER)],
        "huge_field": [dict(syscall, _raw="type=PROCTITLE msg=audit(1795923826.1:999998): proctitle=" + "41" * (BIG // 2))],
        "deep_nesting": [dict(syscall, _raw="<Event>" * 20000 + "<EventID>1</EventID>")],
        "duplicates": [dict(valid[3]), dict(syscall)],
        # a second host whose clock runs an hour ahead arrives after older events: beyond the skew bound
        "clock_skew": [dict(syscall, host="other-host", _time="%.3f" % (newest + 3600), _cd="9:2",
                            _raw=re.sub(r"msg=audit\([\d.]+:", "msg=audit(%.3f:" % (newest + 3600), syscall["_raw"]))],
    }


def _reduced_rows() -> List[Event]:
    """escapereduce's rows of E02 (in process), newest first: what escapecorrelate input=reduced reads."""
    reducer = Reducer()
    rows = reducer.feed(_audit_events()) + reducer.finish()
    rows.sort(key=lambda r: float(str(r["_time"])), reverse=True)
    return [{k: v for k, v in row.items() if v != ""} for row in rows]


def _reduced_malformed(valid: List[Event]) -> Dict[str, List[Event]]:
    row = next(r for r in valid if r.get("escape_syscall") == "chroot")
    newest = float(str(valid[0]["_time"]))
    later = "%.3f" % (newest + 3600)
    return {
        "truncated": [dict(row, escape_serial="", escape_paths='[["0","/ho'), dict(row, escape_kind="aud")],
        "wrong_types": [dict(row, escape_serial="abc", _cd="9:1"), dict(row, escape_stamp="", _time="not-a-time")],
        "missing_fields": [{"_time": "1795923826.0", "host": "lab"}, {"escape_kind": "audit"}],
        "non_utf8": [dict(row, escape_serial="999999", escape_exe="/bin/" + PLACEHOLDER)],
        "huge_field": [dict(row, escape_serial="999998", escape_argv='["' + "A" * BIG + '"]')],
        "deep_nesting": [dict(row, escape_serial="999997", escape_argv="[" * 50000, escape_sysmon="{" * 50000)],
        "duplicates": [dict(valid[1]), dict(row)],
        "clock_skew": [dict(row, escape_host="other-host", _time=later, escape_stamp=later, _cd="9:2")],
    }


def _sample_events(slug: str) -> Callable[[], List[Event]]:
    """A detection's bundled attack samples (read by the replay's readers), newest first, as the valid input."""
    def load() -> List[Event]:
        events = bench.sample_events(bench._content().detections[slug], ("fires",))
        events.sort(key=lambda e: float(str(e["_time"])), reverse=True)
        return events
    return load


def _text_malformed(valid: List[Event]) -> Dict[str, List[Event]]:
    """Malformed variants of line- or XML-based events (Windows event XML / text, ESXi syslog)."""
    first = valid[0]
    raw = str(first["_raw"])
    newest = float(str(first["_time"]))
    return {
        "truncated": [dict(first, _raw=raw[:max(1, len(raw) // 3)], _cd="9:1"), dict(first, _raw=raw[:12], _cd="9:2")],
        "wrong_types": [dict(first, _raw="12345", _cd="9:3"), dict(first, _raw='{"EventID": [4688]}', _cd="9:4"),
                        dict(first, _time="not-a-time", _cd="9:5")],
        "missing_fields": [{"_time": str(newest), "host": "x"}, dict(first, _raw="", _cd="9:6")],
        "non_utf8": [dict(first, _raw=raw[:30] + PLACEHOLDER + raw[30:60], _cd="9:7")],
        "huge_field": [dict(first, _raw=raw[:40] + "A" * BIG, _cd="9:8")],
        "deep_nesting": [dict(first, _raw="<Event>" * 20000 + "<EventID>4688</EventID>", _cd="9:9"),
                         dict(first, _raw="[" * 50000, _cd="9:10")],
        "duplicates": [dict(first), dict(valid[-1])],
        "clock_skew": [dict(first, host="skewed-host", _time="%.3f" % (newest + 7200), _cd="9:11")],
    }


@dataclass(frozen=True)
class Inputs:
    valid: Callable[[], List[Event]]
    malformed: Callable[[List[Event]], Dict[str, List[Event]]]
    row_key: Callable[[Dict[str, Any]], Tuple[str, ...]]
    malformed_count: str          # regex over the inspector messages; group 1 = a count
    # the malformed kinds the command must count; the rest it skips as events of other kinds (measured: a truncated or
    # garbage syslog line is "no ESXi pattern" to escapeesxi, wrong XML types are "not 4688/Sysmon" to escapewindows)
    counted: Tuple[str, ...]
    out_of_order_count: Optional[str] = None   # for commands whose result depends on arrival order


INPUTS: Dict[str, Inputs] = {
    "escapeinspect": Inputs(_kube_events, _kube_malformed,
                            lambda r: (str(r.get("_cd")), str(r.get("escape_finding"))),
                            r"(\d+) event\(s\) were (?:not valid JSON|neither)",
                            ("truncated", "wrong_types", "missing_fields", "non_utf8", "deep_nesting")),
    # registry mode reads the same pod creates and docker inspect records: one row per inspected container
    "escaperegistry": Inputs(_kube_events, _kube_malformed, lambda r: (str(r.get("container_id")),),
                             r"(\d+) event\(s\) were (?:not valid JSON|neither)",
                             ("truncated", "wrong_types", "missing_fields", "non_utf8", "deep_nesting")),
    "escapethreshold": Inputs(_threshold_rows, _threshold_malformed,
                              lambda r: (str(r.get("escape_cluster")), str(r.get("_time"))),
                              r"escapethreshold: (\d+) row\(s\)", ("truncated", "wrong_types", "missing_fields")),
    "escapecorrelate": Inputs(_reduced_rows, _reduced_malformed,
                              lambda r: (str(r.get("escape_chain_id")),),
                              r"malformed=(\d+)", ("truncated", "wrong_types", "missing_fields"),
                              r"out_of_order=(\d+)"),
    "escapereduce": Inputs(_audit_events, _audit_malformed,
                           lambda r: (str(r.get("escape_stamp")), str(r.get("escape_serial"))),
                           r"malformed=(\d+)", ("truncated", "wrong_types", "missing_fields", "deep_nesting")),
    "escapewindows": Inputs(_sample_events("windows_container_symlink_abuse"), _text_malformed,
                            lambda r: (str(r.get("_cd")), str(r.get("escape_finding"))),
                            r"escapewindows: (\d+) malformed events", ("truncated",)),
    "escapeesxi": Inputs(_sample_events("esxi_unexpected_module_load"), _text_malformed,
                         lambda r: (str(r.get("escape_finding")), str(r.get("escape_module", r.get("_cd")))),
                         r"escapeesxi: (\d+) malformed events", ("missing_fields",)),
}
KINDS = ("truncated", "wrong_types", "missing_fields", "non_utf8", "huge_field", "deep_nesting", "duplicates",
         "clock_skew")
COMMAND_NAMES = [n for n in bench.conf_commands() if not getattr(bench.COMMANDS.get(n), "generating", False)]  # escapefindings: test_findings.py


# ---- running -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bin_dir(built_app: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return benchscp.stage_app(built_app, tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def content() -> bench.Content:
    return bench._content()


def _body(records: Sequence[Event]) -> bytes:
    return encode_records(records).encode("utf-8").replace(PLACEHOLDER.encode(), BAD_BYTES)


def _run(bin_dir: Path, name: str, content: bench.Content,
         chunks: Sequence[Sequence[Event]]) -> benchscp.RawRun:
    command, args = bench.command_args(bench.COMMANDS[name], content)
    # a fresh state per run: a stateful command (escapeesxi records the loads it judged) must not see the baseline
    # run's saves, or a valid event would alert once only and read as lost
    state = Path(tempfile.mkdtemp(dir=bin_dir.parent, prefix="state-"))
    run = benchscp.run_raw(bin_dir / (command + ".py"), args, [_body(c) for c in chunks],
                           state_dir=state, keep_bodies=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not [m for m in run.messages if m[0] == "ERROR"], run.messages
    assert run.replies == len(chunks) or not chunks, "one reply per execute chunk"
    return run


def _messages(run: benchscp.RawRun) -> str:
    return "\n".join(str(m[1]) for m in run.messages)


def _count(pattern: str, run: benchscp.RawRun) -> int:
    return sum(int(n) for n in re.findall(pattern, _messages(run)))


_baselines: Dict[str, List[Tuple[str, ...]]] = {}


def _baseline(bin_dir: Path, name: str, content: bench.Content) -> List[Tuple[str, ...]]:
    if name not in _baselines:
        run = _run(bin_dir, name, content, [INPUTS[name].valid()])
        rows = benchscp.decode_bodies(run.bodies)
        assert rows, "{}: the valid events alone must give rows, or the test proves nothing".format(name)
        _baselines[name] = sorted({INPUTS[name].row_key(r) for r in rows})
    return _baselines[name]


def _check(bin_dir: Path, name: str, content: bench.Content,
           chunks: Sequence[Sequence[Event]], kinds: Sequence[str]) -> None:
    spec = INPUTS[name]
    baseline = _baseline(bin_dir, name, content)
    run = _run(bin_dir, name, content, chunks)
    rows = {spec.row_key(r) for r in benchscp.decode_bodies(run.bodies)}
    lost = [key for key in baseline if key not in rows]
    assert not lost, "{} lost rows of valid events: {}\n{}".format(name, lost, _messages(run))
    if set(kinds) & set(spec.counted):
        assert _count(spec.malformed_count, run) >= 1, "{} reported no malformed count:\n{}".format(
            name, _messages(run))
    if spec.out_of_order_count and "clock_skew" in kinds:
        assert _count(spec.out_of_order_count, run) >= 1, "{} reported no out-of-order count:\n{}".format(
            name, _messages(run))


# ---- tests -------------------------------------------------------------------------------------------------------
def test_every_command_has_fuzz_inputs() -> None:
    assert COMMAND_NAMES, "no escape<verb> stanza found in commands.conf"
    missing = [c for c in COMMAND_NAMES if c not in INPUTS]
    assert not missing, "add valid and malformed inputs for {} to INPUTS".format(", ".join(missing))


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_command_survives_every_kind_of_malformed_event_at_once(bin_dir: Path, name: str, content: Any) -> None:
    if name not in INPUTS:
        pytest.fail("no fuzz inputs for {}".format(name))
    valid = INPUTS[name].valid()
    bad = INPUTS[name].malformed(valid)
    assert sorted(bad) == sorted(KINDS), "{} must provide every malformed kind".format(name)
    # valid events newest first, the malformed ones spread between them, over two chunks
    mixed: List[Event] = []
    extra = [e for kind in KINDS for e in bad[kind]]
    for i, event in enumerate(valid):
        mixed.append(event)
        mixed.extend(extra[i::len(valid)])
    middle = len(mixed) // 2
    _check(bin_dir, name, content, [mixed[:middle], mixed[middle:]], KINDS)


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_command_survives_random_mixes_of_malformed_events(bin_dir: Path, name: str, content: Any) -> None:
    if name not in INPUTS:
        pytest.fail("no fuzz inputs for {}".format(name))
    valid = INPUTS[name].valid()
    bad = INPUTS[name].malformed(valid)
    small_kinds = [k for k in KINDS if k != "huge_field"]  # the 5 MB field runs once, in the test above

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(kinds=st.lists(st.sampled_from(small_kinds), min_size=1, max_size=4, unique=True),
           positions=st.lists(st.integers(1, len(valid)), min_size=4, max_size=4),
           split=st.integers(1, 3))
    def one(kinds: List[str], positions: List[int], split: int) -> None:
        mixed = list(valid)
        for kind, position in zip(kinds, positions):
            mixed[position:position] = bad[kind]
        size = max(1, len(mixed) // split)
        _check(bin_dir, name, content, [mixed[i:i + size] for i in range(0, len(mixed), size)], kinds)

    one()
