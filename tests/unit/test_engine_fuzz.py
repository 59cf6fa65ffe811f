"""In-process fuzz of every pure engine's entry point with hostile scalar values (hypothesis).

tests/integration/test_fuzz_commands.py feeds fixed malformed variants through the real SCP v2 protocol; this file
instead takes REAL events (the fires / silent samples content/detections names, the other tests/knowledge/samples,
lab-run1 from tests/data) and replaces the values that engines turn into numbers or keys (times, pids, serials,
event ids, status codes, ports, list positions, field values) with hostile scalars: st.text() mixed with the traps
Python's number parsing sets, such as "²" ("²".isdigit() is True but int("²") raises), "٣", "𝟘", "１", "inf",
"nan", "1e400", "0x10", 5,000 ASCII digits (int() refuses more than 4,300), negative numbers, empty strings, None,
lists and dicts. It asserts that no exception escapes, that an engine with a
malformed / unreadable counter counts the events that are surely malformed, and that the valid events fed alongside
still give every row they give alone.

Bounded run time: ESCAPE_FUZZ_EXAMPLES hypothesis examples per test (default 25, derandomized, so every run of the
suite tries the same inputs); longer runs: ESCAPE_FUZZ_EXAMPLES=1000 ./test.sh tests/unit/test_engine_fuzz.py
(docs/performance.md).
"""
import copy
import csv
import json
import math
import os
import re
from functools import cache
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Sequence, Tuple

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from escape_engine import (
    allowlist,
    auditd,
    correlate,
    docker,
    esxi,
    inspect,
    kube,
    lineage,
    scalars,
    specrules,
    sysmon_linux,
    threshold,
    windows,
    winpath,
    winsymlink,
)
from escape_engine.runstats import Stats
from tests.conftest import ROOT
from tests.unit.linux_lab import lab_records
from tests.unit.winesxi_samples import RESTRICTED, SAMPLES, windows_kind
from tests.unit.winesxi_samples import records as sample_records

EXAMPLES = int(os.environ.get("ESCAPE_FUZZ_EXAMPLES", "0") or "0") or 25
FUZZ_HOST = "fuzz-host"
Event = Dict[str, Any]

# ---- hostile scalars -------------------------------------------------------------------------------------------
TRAPS = (
    "²", "³", "٣", "𝟘", "１", "１２３", "12²", "٤٦٨٨", "⁴⁶⁸⁸", "①", "Ⅻ", "١٢:٣٤",
    "inf", "-inf", "+inf", "Infinity", "nan", "NaN", "-nan", "1e400", "-1e400", "1e-400", "1e308", "9e99999",
    "9" * 400, "9" * 5000, "0" * 60 + "7", "-1", "-0", "-4294967295", "18446744073709551616",
    "0x10", "0b101", "0o17", "1_000", " 7 ", "+5", "1.5", "1.2.3", "5.", ".5", "1,5",
    "", " ", "\t", "\x00", "\u00a0", "\ufeff1", "\u200b", "(null)", "?", "-", "null", "None", "true",
    "2026-13-45T99:99:99Z", "0000-00-00T00:00:00Z", "9999-12-31T23:59:60Z", "2026-02-30 25:61:61.²",
    "%SystemRoot%", "\\\\?\\", "//[", "[", "{", '"', "\\u", "\\U0011ffff", "</Data>", "&amp;", "a=b c=d",
)
hostile_text = st.one_of(
    st.sampled_from(TRAPS),
    st.sampled_from(TRAPS[:12]),  # the Unicode digits once more: they pass isdigit() and \\d
    st.text(max_size=12),
    st.text(alphabet=st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=6),
    st.from_regex(r"-?[0-9]{1,25}(\.[0-9]{0,6})?([eE][+-]?[0-9]{1,4})?", fullmatch=True),
)
_NUMBER_TRAPS = (10 ** 400, -(10 ** 400), 2 ** 64, -1, 0, 1e308, float("inf"), float("-inf"), float("nan"), 0.1)
hostile_json = st.one_of(
    hostile_text, st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70), st.sampled_from(_NUMBER_TRAPS),
    st.lists(hostile_text, max_size=2), st.dictionaries(st.text(max_size=4), hostile_text, max_size=2),
)
# What a record field may hold: Splunk gives strings and lists of strings (splunk_value); the engines must also
# survive the rest (hostile_value).
splunk_value = st.one_of(hostile_text, st.lists(hostile_text, max_size=3))
hostile_value = st.one_of(
    hostile_text, st.lists(hostile_text, max_size=3), st.none(), st.integers(), st.floats(), st.booleans(),
    st.dictionaries(st.text(max_size=3), hostile_text, max_size=2), st.just([None]), st.just([]),
)
# No shrinking: the failing draws are printed as they came (shrinking a correlation run can take minutes).
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate),
                report_multiple_bugs=False)

# Numbers, times, pids, serials, ports and event ids; `key=value` values; XML element text.
_TOKEN = re.compile(r"[0-9]+|(?<==)[^\s\"'<>,;()\[\]]+|(?<=>)[^<>]+(?=</)")


def mutate_text(data: st.DataObject, text: str) -> str:
    """Replace one to four tokens of `text` with hostile scalars."""
    spans = [m.span() for m in _TOKEN.finditer(text)]
    if not spans:
        return data.draw(hostile_text)
    picks = data.draw(st.lists(st.integers(0, len(spans) - 1), min_size=1, max_size=4, unique=True))
    for index in sorted(picks, reverse=True):
        start, end = spans[index]
        text = text[:start] + data.draw(hostile_text) + text[end:]
    return text


def _leaf_paths(node: Any, path: Tuple[Any, ...] = ()) -> Iterable[Tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaf_paths(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaf_paths(value, path + (index,))
    if path:
        yield path


def mutate_json_value(data: st.DataObject, value: Any) -> Any:
    """A deep copy of `value` with one to three leaves (or subtrees) replaced by hostile JSON values."""
    result = copy.deepcopy(value)
    paths = list(_leaf_paths(result))
    if not paths:
        return data.draw(hostile_json)
    picks = data.draw(st.lists(st.integers(0, len(paths) - 1), min_size=1, max_size=3, unique=True))
    for index in picks:
        node = result
        path = paths[index]
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = data.draw(hostile_json)
        except (KeyError, IndexError, TypeError):  # an earlier pick replaced an ancestor
            continue
    return result


def mutate_raw(data: st.DataObject, raw: str) -> str:
    """JSON events get hostile leaves (and sometimes token edits on top); text events get token edits."""
    if raw.lstrip().startswith(("{", "[")):
        try:
            parsed = json.loads(raw)
        except ValueError:
            return mutate_text(data, raw)
        text = json.dumps(mutate_json_value(data, parsed), ensure_ascii=data.draw(st.booleans()))
        return mutate_text(data, text) if data.draw(st.booleans()) else text
    return mutate_text(data, raw)


def mutate_record(data: st.DataObject, record: Event, number: int, host: str = FUZZ_HOST,
                  fields: Sequence[str] = ("_raw", "_time", "_cd", "source", "sourcetype", "host"),
                  values: st.SearchStrategy[Any] = hostile_value) -> Event:
    """A hostile copy of `record` on another host: _raw mutated, some fields replaced by hostile values."""
    result = dict(record)
    result["_cd"] = "9:%d" % number
    result["host"] = host
    if "_raw" in result and data.draw(st.integers(0, 4)):
        result["_raw"] = mutate_raw(data, scalars.first_text(result["_raw"]))
    for name in data.draw(st.lists(st.sampled_from(list(fields) + [k for k in record if k not in fields]),
                                   max_size=3, unique=True)):
        result[name] = data.draw(values)
    if scalars.first_text(result.get("host")) == scalars.first_text(record.get("host")):
        result["host"] = host  # the mutated event must not share the valid events' per-host state
    return result


def mixed(data: st.DataObject, valid: Sequence[Event], bad: Sequence[Event]) -> List[Event]:
    """The valid events in their order with the hostile ones inserted at drawn positions."""
    result = list(valid)
    for event in bad:
        result.insert(data.draw(st.integers(0, len(result))), event)
    return result


def draw_bad(data: st.DataObject, valid: Sequence[Event], **options: Any) -> List[Event]:
    sources = data.draw(st.lists(st.sampled_from(list(valid)), min_size=1, max_size=4))
    return [mutate_record(data, event, number, **options) for number, event in enumerate(sources)]


def usable_time(value: Any) -> bool:
    """The oracle for a Splunk _time: an ASCII decimal number that is finite."""
    text = value[0] if isinstance(value, list) and value else value
    if not isinstance(text, str) or not text.isascii():
        return False
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def first(value: Any) -> str:
    text = value[0] if isinstance(value, list) and value else value
    return text if isinstance(text, str) else ""


def keys(rows: Iterable[Dict[str, Any]], key: Callable[[Dict[str, Any]], Tuple[str, ...]]) -> List[Tuple[str, ...]]:
    return sorted({key(r) for r in rows})


def assert_kept(baseline: List[Tuple[str, ...]], rows: Iterable[Dict[str, Any]],
                key: Callable[[Dict[str, Any]], Tuple[str, ...]]) -> None:
    assert baseline, "the valid events alone must give rows, or the test proves nothing"
    got = set(keys(rows, key))
    lost = [k for k in baseline if k not in got]
    assert not lost, "rows of valid events lost next to hostile events: {}".format(lost)


def _lines(path: Path) -> List[str]:
    return [b.decode("utf-8", "replace") for b in path.read_bytes().split(b"\n") if b.strip()]


@cache
def detection_samples(analytic: str) -> Tuple[Tuple[Path, str, str], ...]:
    """(path, sourcetype, source) of every fires / silent sample the detections of `analytic` name, plain files only."""
    found: Dict[Path, Tuple[Path, str, str]] = {}
    for path in sorted((ROOT / "content" / "detections").glob("*.yml")):
        detection = yaml.safe_load(path.read_text(encoding="utf-8"))
        if detection["analytic"] != analytic:
            continue
        for sample in detection["samples"]["fires"] + detection["samples"]["silent"]:
            file = (ROOT / sample["path"]).resolve()
            if file.suffix != ".gz":
                found.setdefault(file, (file, sample["sourcetype"], sample.get("source", "")))
    return tuple(found.values())


# ---- escapeinspect: Kubernetes audit, dockerd debug lines, docker inspect (inspect, kube, docker, specrules) ----
@cache
def inspect_events() -> Tuple[Event, ...]:
    files = [path for path, _, _ in detection_samples("container")]
    files += [p for p in sorted(SAMPLES.glob("kube_*.json")) if p.resolve() not in files]
    events = []
    for path in files:
        for raw in _lines(path):
            number = len(events)
            event: Event = {"_raw": raw, "_cd": "0:%d" % number, "host": "cluster-a", "source": path.name,
                            "_time": "%.3f" % (1795923900 - number), "sourcetype": "kube:apiserver-audit"}
            if path.name.startswith("dockerd"):  # dockerd lines: their own time decides the pairing
                event.update(sourcetype="docker:daemon", _time="%.6f" % (docker.line_time(raw) or 0.0))
            elif path.name.startswith("docker_inspect"):
                event["sourcetype"] = "docker:inspect"
            events.append(event)
    return tuple(events)


def _inspect_key(row: Dict[str, Any]) -> Tuple[str, ...]:
    finding = row.get("escape_finding")
    return (str(row.get("_cd")),) + tuple(finding if isinstance(finding, list) else [str(finding)])


def _run_inspect(events: Sequence[Event], mode: str = "spec") -> Tuple[List[Event], Dict[str, int]]:
    inspector = inspect.Inspector(allowed_host_paths="/var/log", suppressed="include", mode=mode)
    rows = list(inspector.feed(events)) + list(inspector.flush())
    return rows, inspector.counts


def _inspect_surely_malformed(event: Event) -> bool:
    """Text that is neither JSON nor a dockerd line, or that starts like JSON and does not parse."""
    text = first(event.get("_raw")).strip()
    if not text:
        return False
    if text.startswith(("{", "[")):
        try:
            json.loads(text)
        except (ValueError, RecursionError):
            return True
        return False
    return "msg=" not in text


@pytest.mark.parametrize("mode", ["spec", "health"])
def test_inspect_survives_hostile_scalars_and_keeps_valid_rows(mode: str) -> None:
    valid = list(inspect_events())
    baseline = keys(_run_inspect(valid, mode)[0], _inspect_key)

    @FUZZ
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        bad = draw_bad(data, valid)
        rows, counts = _run_inspect(mixed(data, valid, bad), mode)
        assert_kept(baseline, rows, _inspect_key)
        expected = sum(1 for e in bad if _inspect_surely_malformed(e))
        assert counts.get("event_unparseable", 0) + counts.get("not_inspectable", 0) >= expected, counts

    one()


# ---- escapethreshold -------------------------------------------------------------------------------------------
@cache
def launch_rows() -> Tuple[Event, ...]:
    """Real escapeinspect rows (privileged launches and others) from the real samples."""
    return tuple(_run_inspect(list(inspect_events()))[0])


def _threshold_key(row: Dict[str, Any]) -> Tuple[str, ...]:
    return str(row.get("escape_cluster")), str(row.get("_time")), str(row.get("escape_count"))


def _is_launch(row: Event) -> bool:
    finding = row.get("escape_finding")
    kinds = [f for f in finding if isinstance(f, str)] if isinstance(finding, list) else [finding]
    return first(row.get("escape_launch")) == "1" and ("privileged" in kinds or "host_process" in kinds)


def test_threshold_survives_hostile_scalars_and_counts_unreadable_times() -> None:
    valid = list(launch_rows())
    assert sum(1 for r in valid if _is_launch(r)) >= 2, "the samples must give privileged launches"

    def run(rows: Sequence[Event]) -> Tuple[List[Event], threshold.ThresholdCounter]:
        counter = threshold.ThresholdCounter(threshold=1, period=3600, by="host")
        counter.feed(rows)
        return list(counter.results()), counter

    baseline = keys(run(valid)[0], _threshold_key)

    @FUZZ
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        bad = draw_bad(data, valid, fields=("_time", "escape_launch", "escape_finding", "escape_launch_id",
                                            "escape_workload", "escape_evidence_cd", "host", "_cd"))
        for row in bad:
            if data.draw(st.booleans()):
                row["_time"] = data.draw(hostile_value)
        rows, counter = run(mixed(data, valid, bad))
        assert_kept(baseline, rows, _threshold_key)
        unreadable = sum(1 for r in bad if _is_launch(r) and not usable_time(r.get("_time")))
        assert counter.malformed == unreadable
        for row in rows:
            json.dumps(row, allow_nan=False)  # every value a Splunk field can hold: no inf, no nan

    one()


# ---- escapewindows (windows, winpath) ----------------------------------------------------------------------------
@cache
def windows_events() -> Tuple[Event, ...]:
    events: List[Event] = []
    for path, _, _ in detection_samples("windows"):
        sourcetype, source = windows_kind(path)
        for record in sample_records(path, sourcetype, source, host="winhost"):
            record["_cd"] = "%d:%s" % (len(events), record["_cd"])
            events.append(record)
    return tuple(events)


def _windows_key(row: Dict[str, Any]) -> Tuple[str, ...]:
    return str(row.get("_cd")), str(row.get("escape_finding"))


def _windows_surely_malformed(event: Event) -> bool:
    """An event of the XML kinds whose EventID is no run of ASCII digits."""
    raw = first(event.get("_raw"))
    return "<Event" in raw and "<EventID" in raw and not re.search(r"<EventID(?:\s[^>]*)?>[0-9]+</EventID>", raw)


def test_windows_survives_hostile_scalars_and_keeps_valid_rows() -> None:
    valid = list(windows_events())
    baseline = keys(windows.run(valid, restricted=RESTRICTED), _windows_key)

    @FUZZ
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        bad = draw_bad(data, valid)
        stats = Stats()
        rows = list(windows.run(mixed(data, valid, bad), restricted=RESTRICTED, stats=stats))
        assert_kept(baseline, rows, _windows_key)
        assert stats.malformed >= sum(1 for e in bad if _windows_surely_malformed(e))
        assert stats.read == len(valid) + len(bad)

    one()


@pytest.mark.parametrize("trap", ["²", "٤٦٨٨", "１", "", "0x1", "inf", "-1"])
def test_windows_counts_an_event_id_that_is_not_ascii_digits_as_malformed(trap: str) -> None:
    raw = next(first(e["_raw"]) for e in windows_events() if "<EventID>11</EventID>" in first(e["_raw"]))
    stats = Stats()
    assert list(windows.run([{"_raw": raw.replace("<EventID>11</EventID>", "<EventID>%s</EventID>" % trap)}],
                            restricted=RESTRICTED, stats=stats)) == []
    assert (stats.malformed, stats.reasons) == (1, ["XML event without an EventID"])


@FUZZ
@given(path=st.one_of(hostile_text, st.text()), directory=st.one_of(hostile_text, st.text()))
def test_winpath_never_raises_but_on_a_bad_restricted_list(path: str, directory: str) -> None:
    normal = winpath.normalise(path)
    assert normal.text() is not None
    try:
        directories = winpath.parse_dir_list(directory + ",C:/Windows")
    except ValueError:  # the documented answer to a bad option value
        directories = winpath.parse_dir_list("C:/Windows")
    winpath.under(normal, directories)
    winpath.is_container_volume(path)
    winsymlink.symlink_tooling("cmd /c mklink /d " + path + " " + directory)
    winsymlink.symlink_tooling("powershell -enc " + path)


# ---- escapeesxi --------------------------------------------------------------------------------------------------
@cache
def esxi_events() -> Tuple[Event, ...]:
    events: List[Event] = []
    files = [path for path, _, _ in detection_samples("esxi")]
    for path in files + [p for p in sorted(SAMPLES.glob("esxi_*.log")) if p.resolve() not in files]:
        for record in sample_records(path, "vmware:esxlog:vmkernel", host="esx01"):
            record["_cd"] = "%d:%s" % (len(events), record["_cd"])
            events.append(record)
    return tuple(events)


@cache
def stock_modules() -> Tuple[str, ...]:
    with (ROOT / "package" / "lookups" / "escape_esxi_stock_modules.csv").open(newline="", encoding="utf-8") as f:
        return tuple(row["module"] for row in csv.DictReader(f) if row.get("module"))


def _esxi_key(row: Dict[str, Any]) -> Tuple[str, ...]:
    return str(row.get("escape_finding")), str(row.get("escape_module", row.get("_cd")))


def test_esxi_survives_hostile_scalars_and_keeps_valid_rows() -> None:
    valid = list(esxi_events())

    def detect(events: Sequence[Event]) -> Tuple[List[Event], esxi.Detector]:
        detector = esxi.Detector(stock=stock_modules(), threshold=3, window=600)
        return list(detector.process(events)), detector

    baseline = keys(detect(valid)[0], _esxi_key)

    @FUZZ
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        bad = draw_bad(data, valid)
        rows, detector = detect(mixed(data, valid, bad))
        assert_kept(baseline, rows, _esxi_key)
        assert detector.stats.malformed >= sum(1 for e in bad if not first(e.get("_raw")).strip())
        learner = esxi.Detector(stock=stock_modules(), mode="baseline")
        list(learner.process(mixed(data, valid, bad)))
        assert all(math.isfinite(t) for t in learner.learned.values()), learner.learned  # persisted as JSON

    one()


@pytest.mark.parametrize("when", ["nan", "inf", "-inf", "1e400", "", "²"])
def test_esxi_a_time_that_is_no_finite_number_falls_back_to_the_line_stamp(when: str) -> None:
    line = "2026-11-21T02:10:11.201Z cpu4:2099811)Loading module vmkdrvhelper ..."
    assert esxi.epoch({"_time": when, "_raw": line}) == 1795227011.0
    learner = esxi.Detector(mode="baseline")
    list(learner.process([{"_time": when, "_raw": line}]))
    assert learner.learned == {("", "vmkdrvhelper"): 1795227011.0}


@pytest.mark.parametrize("stamp", ["2026-13-45T10:00:00Z", "2026-02-30T10:00:00Z", "0000-01-01T00:00:00Z",
                                   "٢٠٢٦-11-21T02:10:11Z"])
def test_esxi_a_line_stamp_that_is_no_date_is_no_time(stamp: str) -> None:
    assert esxi.epoch({"_time": "", "_raw": stamp + " vmkwarning: cpu1:1)WARNING: x"}) is None


# ---- Sysmon for Linux ------------------------------------------------------------------------------------------
@cache
def sysmon_lines() -> Tuple[str, ...]:
    return tuple(_lines(SAMPLES / "sysmon_linux_handwritten.log"))


@FUZZ
@given(data=st.data())
def test_sysmon_linux_parser_survives_hostile_scalars(data: st.DataObject) -> None:
    line = mutate_text(data, data.draw(st.sampled_from(sysmon_lines())))
    parsed = sysmon_linux.parse_event(line)
    if parsed is not None:
        assert scalars.is_ascii_digits(parsed["EventID"])
        sysmon_linux.utc_epoch(parsed.get("UtcTime", ""))
    sysmon_linux.utc_epoch(data.draw(hostile_text))


@pytest.mark.parametrize("fraction", ["²", "٣", "𝟘", "１"])
def test_sysmon_linux_utc_time_with_a_unicode_digit_fraction_is_no_time(fraction: str) -> None:
    assert sysmon_linux.utc_epoch("2026-11-29 03:43:47." + fraction) is None  # the caller falls back to _time
    assert sysmon_linux.utc_epoch("2026-11-29 03:43:47.5") == 1795923827.5


@pytest.mark.parametrize("utc_time", ["٢٠٢٦-11-29 03:43:47.531", "2026-１1-29 03:43:47", "2026-11-29 03:43:٤٧"])
def test_sysmon_linux_utc_time_in_unicode_digits_is_no_time(utc_time: str) -> None:
    assert sysmon_linux.utc_epoch(utc_time) is None


@pytest.mark.parametrize("event_id", ["²", "١", "１", "𝟙"])
def test_sysmon_linux_event_id_must_be_ascii_digits(event_id: str) -> None:
    line = sysmon_lines()[0].replace("<EventID>1</EventID>", "<EventID>%s</EventID>" % event_id)
    assert sysmon_linux.parse_event(line) is None


# ---- Kubernetes and docker parsers: regressions ------------------------------------------------------------------
@pytest.mark.parametrize("index", ["²", "٣", "𝟘", "１", "9" * 5000])
def test_kube_json_patch_with_a_non_ascii_or_huge_list_position_does_not_crash(index: str) -> None:
    patch = [{"op": "add", "path": "/spec/containers/0/securityContext", "value": {"privileged": True}},
             {"op": "add", "path": "/spec/containers/%s/securityContext" % index, "value": {"privileged": True}}]
    result = kube.json_patch_object(patch)
    assert result is not None
    containers = result["spec"]["containers"]
    assert isinstance(containers, list) == scalars.is_ascii_digits(index)


@pytest.mark.parametrize("name", ["{", "}", "{0}", "{x}", "a}b{", "{apparmor}"])
def test_kube_container_name_with_braces_is_read_and_its_apparmor_annotation_applies(name: str) -> None:
    event = json.loads(pod_creates()[0])
    container = event["requestObject"]["spec"]["containers"][0]
    container["name"] = name
    annotations = event["requestObject"].setdefault("metadata", {}).setdefault("annotations", {})
    annotations["container.apparmor.security.beta.kubernetes.io/" + name] = "unconfined"
    rows = list(inspect.run([{"_raw": json.dumps(event), "_cd": "0:1"}], allowed_host_paths="/",
                            finding="apparmor_unconfined"))
    assert [r["escape_detail"] for r in rows] == ["container {} runs without an AppArmor profile (low)".format(name)]


@cache
def pod_creates() -> Tuple[str, ...]:
    """Real pod creates with a request body (the Kubernetes samples)."""
    return tuple(first(e["_raw"]) for e in inspect_events() if e["sourcetype"] == "kube:apiserver-audit"
                 and '"verb":"create"' in first(e["_raw"]).replace(" ", "") and '"requestObject"' in first(e["_raw"])
                 and '"resource":"pods"' in first(e["_raw"]).replace(" ", ""))


def _as_json_patch(event: Dict[str, Any]) -> Dict[str, Any]:
    """The same pod write as a JSON patch (RFC 6902): one add per leaf of requestObject.spec."""
    spec = event["requestObject"]["spec"]
    ops = []
    for path in _leaf_paths(spec):
        node = spec
        for key in path:
            node = node[key]
        if isinstance(node, (dict, list)):
            continue
        pointer = "/".join(str(k).replace("~", "~0").replace("/", "~1") for k in path)
        ops.append({"op": "add", "path": "/spec/" + pointer, "value": node})
    patched = dict(event, verb="patch", requestObject=ops)
    patched.pop("responseObject", None)
    return patched


def _findings(raw: str) -> List[str]:
    return sorted(str(r["escape_finding"]) for r in inspect.run([{"_raw": raw, "_cd": "0:1", "host": "h"}],
                                                                 allowed_host_paths="/var/log", suppressed="include"))


@FUZZ
@given(data=st.data())
def test_kube_json_patch_of_a_real_pod_survives_hostile_list_positions(data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(pod_creates()))
    patched = _as_json_patch(json.loads(original))
    assert _findings(json.dumps(patched)) == _findings(original)  # the patch rebuilds the same spec
    ops = patched["requestObject"]
    for index in data.draw(st.lists(st.integers(0, len(ops) - 1), min_size=1, max_size=4, unique=True)):
        segments = ops[index]["path"].split("/")
        position = data.draw(st.integers(2, len(segments) - 1))
        segments[position] = data.draw(hostile_text).replace("~", "~0").replace("/", "~1")
        ops[index] = dict(ops[index], path="/".join(segments))
    _findings(json.dumps(patched))


def test_kube_json_patch_positions_sort_numerically_however_long() -> None:
    patch = [{"op": "add", "path": "/spec/containers/%s/name" % i, "value": i} for i in ("10", "9", "0" * 30 + "2")]
    assert kube.json_patch_object(patch) == {"spec": {"containers": [{"name": "0" * 30 + "2"}, {"name": "9"},
                                                                     {"name": "10"}]}}


@pytest.mark.parametrize("line", [
    'time="2026-13-45T10:00:00Z" level=debug msg="Calling POST /v1.41/containers/create?name=x"',
    'time="2026-02-30T10:00:00.5Z" level=debug msg="Calling POST /v1.41/containers/create?name=x"',
    'time="0000-01-01T00:00:00Z" level=debug msg="Calling POST /v1.41/containers/create?name=x"',
])
def test_docker_line_time_that_is_no_date_is_none_and_inspect_still_pairs(line: str) -> None:
    assert docker.line_time(line) is None
    rows, counts = _run_inspect([{"_raw": line, "_time": "nan", "host": "h", "_cd": "0:1"}], mode="health")
    assert [r["escape_finding"] for r in rows] == ["create_body_missing"] and counts == {"create_body_missing": 1}


@pytest.mark.parametrize("path", ["//[/containers/create", "//[::1/containers/create?name=x", "//a]/containers/x/exec"])
def test_docker_calling_line_with_a_bracket_host_is_no_api_call(path: str) -> None:
    assert docker.api_call("Calling POST " + path) is None


@pytest.mark.parametrize("escape", ["\\x+1", "\\x٣٣", "\\u1_00", "\\U0011ffff", "\\xg1"])
def test_docker_go_string_with_a_bad_hex_escape_is_unreadable(escape: str) -> None:
    assert docker.message('msg="abc' + escape + 'def"') is None


@pytest.mark.parametrize("value", [None, [None], [], {"a": "b"}, 5, 1.5, [None, "x"], [5]])
def test_engines_read_non_string_field_values_as_empty(value: Any) -> None:
    record = {"_raw": value, "_time": value, "host": value, "_cd": value, "source": value}
    assert _run_inspect([record])[0] == []
    stats = Stats()
    assert list(windows.run([record], restricted=RESTRICTED, stats=stats)) == []
    detector = esxi.Detector()
    assert list(detector.process([record])) == [] and detector.stats.malformed == 1
    counter = threshold.ThresholdCounter(threshold=0, period=60)
    counter.feed([dict(record, escape_launch="1", escape_finding="privileged")])
    assert (list(counter.results()), counter.malformed) == ([], 1)


@FUZZ
@given(value=hostile_text)
def test_spec_option_parsers_raise_only_value_error(value: str) -> None:
    for parse in (specrules.parse_allowed_paths, allowlist.parse_allow_option, esxi.parse_modules,
                  esxi.parse_findings, windows.parse_findings):
        try:
            parse(value)
        except ValueError:
            pass
    specrules.normalise_image(value)
    specrules.host_path_severity(value, ["/var/log"])
    specrules.normalise_path(value)


# ---- persisted lineage (lineage.HostLineage.from_json) -----------------------------------------------------------
E02 = (1795923825.0, 1795923829.0)   # lab-run1 E02: a -v /:/host container chroots into the host


@cache
def audit_events() -> Tuple[Event, ...]:
    keep = ("_raw", "_time", "host", "_cd", "source", "sourcetype")
    return tuple({k: r[k] for k in keep} for r in lab_records() if E02[0] <= float(r["_time"]) < E02[1])


@cache
def persisted_state() -> str:
    correlator = correlate.Correlator()
    correlator.feed(audit_events())
    correlator.finish()
    state = correlator.state()
    assert state["labvm"]["procs"] and state["labvm"]["containers"], "E02 must leave a lineage to persist"
    return json.dumps(state["labvm"])


def test_persisted_lineage_survives_corruption_and_keeps_what_is_intact() -> None:
    state = json.loads(persisted_state())

    @FUZZ
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        corrupted = copy.deepcopy(state)
        broken = data.draw(st.lists(st.integers(0, len(corrupted["procs"]) - 1), min_size=1, max_size=3, unique=True))
        for index in broken:
            corrupted["procs"][index] = mutate_json_value(data, corrupted["procs"][index])
        for name in data.draw(st.lists(st.sampled_from(["max_time", "containers", "host_devs", "host"]),
                                       max_size=2, unique=True)):
            corrupted[name] = mutate_json_value(data, corrupted[name])
        text = json.dumps(corrupted)  # as the KV store or the state file gives it back
        table = lineage.HostLineage.from_json(json.loads(text))
        intact = [p for i, p in enumerate(state["procs"]) if i not in broken]
        clashing = {json.dumps(corrupted["procs"][i].get("pid")) if isinstance(corrupted["procs"][i], dict)
                    else "" for i in broken}
        for proc in intact:
            if json.dumps(proc["pid"]) not in clashing:
                assert table.lookup(proc["pid"], float("inf")) is not None, proc["pid"]
        if any(not isinstance(corrupted["procs"][i], dict) for i in broken):
            assert table.dropped >= 1
        saved = table.to_json(7 * 86400.0)
        json.dumps(saved, allow_nan=False)  # what is saved again is valid JSON for the KV store
        lineage.HostLineage.from_json(saved)
        lineage.attribute_exec(table, lineage.Exec("1", "0", table.max_time, "sh", "/bin/sh", "00:27", ["sh"], [], "",
                                                   "", "", ""), 2.0)

    one()


@pytest.mark.parametrize("data,dropped", [
    (None, 1), ([], 1), ("x", 1), ({}, 0), ({"max_time": "x"}, 1), ({"max_time": None}, 1),
    ({"max_time": float("nan")}, 1), ({"procs": "abc"}, 1),
    ({"procs": [1, None, {"pid": None}, {"pid": "5"}, {"pid": "5", "start": "nan"}, {"pid": "6", "start": 1}]}, 5),
    ({"containers": [1, 2]}, 1), ({"containers": {"c": {"first": "x", "last": 1}}, "host_devs": {"fe:00": 1}}, 1),
    ({"containers": {"c": 5, "": {"first": 1, "last": 1}}}, 2), ({"host_devs": {"fe:00": "abc"}}, 1),
    ({"host_devs": [["a", 1]]}, 1),
])
def test_corrupted_lineage_state_is_read_without_raising_and_counted(data: Any, dropped: int) -> None:
    table = lineage.HostLineage.from_json(data)
    json.dumps(table.to_json(60.0), allow_nan=False)
    assert table.dropped == dropped


@pytest.mark.parametrize("data", [{}, {"host": 5}, {"host": "stale-name"}, None])
def test_lineage_state_takes_the_host_it_was_stored_under(data: Any) -> None:
    assert lineage.HostLineage.from_json(data, host="labvm").host == "labvm"
    assert lineage.HostLineage.from_json({"host": "labvm"}).host == "labvm"


def test_a_persisted_process_with_bad_optional_fields_keeps_its_pid_and_container() -> None:
    table = lineage.HostLineage.from_json({"max_time": 10.0, "procs": [
        {"pid": 42, "ppid": None, "start": 5.0, "last": "inf", "argv": "sh", "container": "c1", "runtime": "yes"}]})
    proc = table.lookup("42", 6.0)
    assert proc is not None and (proc.container, proc.ppid, proc.argv, proc.last, proc.runtime) == (
        "c1", "", [], 5.0, False)
    assert table.dropped == 0


# ---- Linux audit (auditd.parse_line, correlate.run): owned by the lead, rewritten there ---------------------------
@cache
def audit_lines() -> Tuple[str, ...]:
    """E02's records and every line of the public audit logs the Linux detections name (raw, other kernels)."""
    lines = [first(e["_raw"]) for e in audit_events()]
    for path, _, _ in detection_samples("linux"):
        lines.extend(_lines(path))
    return tuple(lines)


@FUZZ
@given(data=st.data())
def test_auditd_parse_line_survives_hostile_scalars(data: st.DataObject) -> None:
    line = mutate_text(data, data.draw(st.sampled_from(audit_lines())))
    record = auditd.parse_line(line)
    if record is None:
        return
    _ = (record.epoch, record.fields, record.interpreted)  # each property parses on access: none may raise
    auditd.syscall_name(record)
    auditd.execve_argv(record)
    auditd.proctitle(record)
    auditd.arch_name(record.fields)


def test_correlate_survives_hostile_scalars_and_keeps_valid_chains() -> None:
    valid = list(audit_events())
    baseline = keys(correlate.run(valid), lambda r: (str(r["escape_chain_id"]),))

    @FUZZ
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        bad = draw_bad(data, valid, values=splunk_value)  # other kinds of value: test_correlate_survives_non_string_...
        correlator = correlate.Correlator()
        correlator.feed(mixed(data, valid, bad))
        rows = correlator.finish()
        assert_kept(baseline, rows, lambda r: (str(r["escape_chain_id"]),))
        assert correlator.summary["malformed"] >= sum(1 for e in bad if not first(e.get("_raw")).strip())
        json.dumps(correlator.state(), allow_nan=False)

    one()


# Field values that are no string and no list of strings (None, [None], numbers, booleans, dicts): Splunk's SCP
# hands over strings and lists of strings, yet a command fed by another command's rows or a future splunklib may not.
@pytest.mark.parametrize("field,value", [
    pytest.param(field, value, id="{}={!r}".format(field, value))
    for field in ("_raw", "_time", "host", "_cd", "source", "sourcetype")
    for value in (None, [None], [], 5, 1.5, True, {"a": "b"}, [5, "x"])
])
def test_correlate_survives_non_string_field_values(field: str, value: Any) -> None:
    valid = list(audit_events())
    baseline = keys(correlate.run(valid), lambda r: (str(r["escape_chain_id"]),))
    hostile = [dict(record, host=FUZZ_HOST, _cd="9:%d" % i) for i, record in enumerate(valid[:40])]
    for record in hostile:
        record[field] = value
    correlator = correlate.Correlator()
    correlator.feed(valid[:20] + hostile + valid[20:])
    assert_kept(baseline, correlator.finish(), lambda r: (str(r["escape_chain_id"]),))


# ---- escapeesxi's baseline (package/bin/escape_io/esxi_baseline.py, through the file store) ---------------------
def test_esxi_baseline_documents_with_unreadable_dates_keep_their_modules(tmp_path: Path) -> None:
    from escape_io import esxi_baseline
    from escape_io.store import FileStore

    (tmp_path / "escape_esxi_module_baseline.json").write_text(json.dumps([
        {"host": "h1", "module": "vmkdrvhelper", "first_seen": "abc"},
        {"host": "h1", "module": "HVDBG_X", "first_seen": float("nan")},
        {"host": "h1", "module": "kmemtap", "first_seen": ["1"]}, {"host": "h1", "module": "okmod", "first_seen": 12.5}, 7,
        None, {"host": "h1", "module": ["listed"]}, {"host": "h1", "first_seen": 3.0},
        {"module": "no_host", "first_seen": 1.0}, {"host": 5, "module": "bad_host"}]), encoding="utf-8")
    baseline = esxi_baseline.load(FileStore(str(tmp_path)).collection(esxi_baseline.COLLECTION))
    assert baseline == {("h1", "vmkdrvhelper"): 0.0, ("h1", "hvdbg_x"): 0.0, ("h1", "kmemtap"): 0.0, ("h1", "okmod"): 12.5}
    events = sample_records(SAMPLES / "esxi_vmkernel_module_attack.log", "vmware:esxlog:vmkernel")
    assert list(esxi.Detector(stock=stock_modules(), baseline=baseline).process(events)) == []


def test_esxi_baseline_that_is_no_list_of_documents_is_a_clear_error(tmp_path: Path) -> None:
    from escape_io import esxi_baseline
    from escape_io.store import FileStore

    (tmp_path / "escape_esxi_module_baseline.json").write_text('{"modules": "vmkdrvhelper"}', encoding="utf-8")
    with pytest.raises(ValueError, match="does not hold a JSON list of documents"):
        esxi_baseline.load(FileStore(str(tmp_path)).collection(esxi_baseline.COLLECTION))


# A persisted host state that is no JSON object or misses its host field (a hand-edited file, a cut KV document): the
# host starts afresh under the name it was stored under, and its unusable entries are counted.
@pytest.mark.parametrize("value", [
    pytest.param(value, id=repr(value))
    for value in ("garbage", [1], 5, None, [], {"procs": "x", "max_time": "nan"}, {"host": "labvm", "procs": 7})
])
def test_correlate_starts_from_a_corrupted_host_state(value: Any) -> None:
    valid = list(audit_events())
    baseline = keys(correlate.run(valid), lambda r: (str(r["escape_chain_id"]),))
    correlator = correlate.Correlator(state={"labvm": value, "other-host": json.loads(persisted_state())})
    correlator.feed(valid)
    assert_kept(baseline, correlator.finish(), lambda r: (str(r["escape_chain_id"]),))
