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

- the fleet (tools/fleet.py): one hour of linux:audit from 200 hosts, the lab's container activity beside a
  production fleet's other audit traffic (CIS-style rules, user-space login, cron and systemd records).

Usage: python -m tools.bench [--events N] [--rss-events N] [--fleet-records N] [--chunk N] [--json PATH]
The last stdout line is exactly
`BENCH min_ratio=<float> max_rss_mb=<int> shipped_share=<float> fleet_records_per_s=<int>`.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from escape_engine.reduce import Reducer
from tools import content as content_model
from tools.benchcases import (  # re-exported: the tests read the table and the matcher here
    BUILT_APP as BUILT_APP,
)
from tools.benchcases import (
    COMMANDS as COMMANDS,
)
from tools.benchcases import (
    ROOT as ROOT,
)
from tools.benchcases import (
    CommandCase as CommandCase,
)
from tools.benchcases import (
    Content as Content,
)
from tools.benchcases import (
    Event as Event,
)
from tools.benchcases import (
    Matcher as Matcher,
)
from tools.benchcases import (
    _content as _content,
)
from tools.benchcases import (
    base_search as base_search,
)
from tools.benchcases import (
    command_args as command_args,
)
from tools.benchcases import (
    compile_matcher as compile_matcher,
)
from tools.benchcases import (
    conf_commands as conf_commands,
)
from tools.benchcases import (
    linux_passes as linux_passes,
)
from tools.benchcases import (
    metadata_verdict as metadata_verdict,
)
from tools.benchcases import (
    sample_events as sample_events,
)
from tools.benchscp import (
    APP,
    MAX_ROUNDS,
    SHORT_RUN_SECONDS,
    chunked,
    decode_bodies,
    measure_one,
    measure_pair,
    run_raw,
    stage_app,
)
from tools.fleet import HOSTS as FLEET_HOSTS
from tools.fleet import SPAN as FLEET_SPAN
from tools.fleet import generate_fleet, other_rules_share
from tools.workload import audit_lines, generate_audit, generate_workload, runtime_noise_share


# ---- the benchmark -----------------------------------------------------------------------------------------------
def _say(text: str) -> None:
    print(text, flush=True)


def selectivity(workload: Mapping[str, List[Event]], content: Content) -> Tuple[Dict[str, int], Dict[str, List[Event]]]:
    """Per detection, how many events its base search (the replay's matcher) hands to its commands, and those
    events newest first."""
    parsed = {slug: base_search(d, content.macros) for slug, d in sorted(content.with_base_search().items())}
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


def replicated_samples(detection: content_model.Detection, count: int) -> List[Event]:
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
    parser.add_argument("--fleet-records", type=int, default=600000,
                        help="linux:audit records of the fleet workload ({} hosts, one hour; default 600,000)".format(
                            FLEET_HOSTS))
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
    _say("bench: load average at the start: " + _load())
    started = time.perf_counter()
    workload = generate_workload(options.events)
    total = sum(len(v) for v in workload.values())
    _say("bench: generated {} events ({}) in {:.1f} s; container-runtime noise {:.0%} of keyed non-execve audit "
         "syscalls (lab ground truth)".format(
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
        state_dir = Path(tmp) / "state"
        _say("\n(2) throughput through SCP v2 (chunks of {}), command vs pass-through on the same input".format(
            options.chunk))
        _say("  {:17s} {:>9s} {:>10s} {:>10s} {:>7s} {:>8s} {:>6s} {:>7s}  {}".format(
            "command", "events", "cmd ev/s", "pass ev/s", "ratio", "rows out", "cmd MB", "pass MB", "args"))
        for name in conf_commands():
            case = COMMANDS[name]
            if case.generating:
                _say("  {:17s} reads the rows the correlation saved; no events to time against a pass-through".format(
                    name))
                continue
            records: List[Event] = selected[case.detection]
            origin = "workload"
            searched = content.detections[case.detection]
            if not records and isinstance(searched, content_model.Detection):
                # sources the generator does not make: the detection's own samples, repeated
                records = replicated_samples(searched, options.sample_events)
                origin = "samples"
            for pipe in range(1, case.pipe):   # earlier pipes produce the input (untimed)
                up_name, up_args = command_args(case, content, pipe=pipe)
                up = run_raw(bin_dir / (up_name + ".py"), up_args, chunked(records, options.chunk), state_dir=state_dir,
                             keep_bodies=True)
                records = decode_bodies(up.bodies)
            command, args = command_args(case, content)
            bodies = chunked(records, options.chunk)
            passthrough, run = measure_pair(bin_dir, command + ".py", args, bodies, state_dir, options.repeat)
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
        rss = correlation_memory(bin_dir, state_dir, content, options.rss_events, options.chunk)
        results["rss"] = rss
        fleet = fleet_figures(bin_dir, state_dir, content, options.fleet_records, options.chunk, options.repeat)
        results["fleet"] = fleet
        ratios["escapereduce (fleet)"] = fleet["reduce_ratio"]
    max_rss = max([v for v in rss.values()] + [c["max_rss_mb"] for c in results["commands"].values()] or [0])
    min_ratio = min(ratios.values()) if ratios else 0.0
    results.update({"min_ratio": min_ratio, "max_rss_mb": max_rss, "load_average": _load()})
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _say("\nbench: results in {} ({:.0f} s in all; load average at the end: {})".format(
        options.json, time.perf_counter() - started, results["load_average"]))
    _say(bench_line(min_ratio, max_rss, fleet["shipped_share"], fleet["fleet_records_per_s"]))
    return 0


def fleet_figures(bin_dir: Path, state_dir: Path, content: Content, records: int, chunk: int,
                  repeat: int) -> Dict[str, Any]:
    """The fleet workload through the Linux detections' pipeline: escapereduce (the search peers' step) against the
    pass-through, the share of records it ships, and escapecorrelate (the search head's step) on what it ships."""
    events = generate_fleet(records)
    first, last = float(str(events[-1]["_time"])), float(str(events[0]["_time"]))
    _say("\n(4) fleet: {} linux:audit records from {} hosts over {:.0f} s; {:.0%} from rules other than this "
         "add-on's".format(len(events), len({e["host"] for e in events}), last - first, other_rules_share(events)))
    reduce_name, reduce_args = command_args(COMMANDS["escapereduce"], content)
    passthrough, reduced = measure_pair(bin_dir, reduce_name + ".py", reduce_args, chunked(events, chunk), state_dir,
                                        repeat)
    rows = decode_bodies(run_raw(bin_dir / (reduce_name + ".py"), reduce_args, chunked(events, chunk),
                                 keep_bodies=True).bodies)
    rows.sort(key=lambda r: float(str(r["_time"])), reverse=True)  # Splunk merges the peers' rows by time
    name, args = command_args(COMMANDS["escapecorrelate"], content)
    correlate = measure_one(bin_dir / (name + ".py"), args, chunked(rows, chunk), state_dir, repeat)
    passes = linux_passes(content)
    head_seconds = passes * correlate.seconds * 3600.0 / FLEET_SPAN
    figures = {"records": len(events), "hosts": FLEET_HOSTS, "span_s": FLEET_SPAN, "rows": len(rows),
               "shipped_share": len(rows) / len(events), "reduce_ratio": passthrough.seconds / reduced.seconds,
               "reduce_records_per_s": len(events) / reduced.seconds,
               "passthrough_records_per_s": len(events) / passthrough.seconds,
               "correlate_seconds": correlate.seconds, "correlate_rows_per_s": len(rows) / correlate.seconds,
               "passes": passes, "search_head_seconds_per_fleet_hour": head_seconds,
               "fleet_records_per_s": int(len(events) / (passes * correlate.seconds)),
               "correlate_cpu_seconds": correlate.cpu_seconds,
               "fleet_records_per_cpu_s": int(len(events) / (passes * correlate.cpu_seconds)),
               "reduce_max_rss_mb": reduced.max_rss_kb // 1024, "correlate_max_rss_mb": correlate.max_rss_kb // 1024}
    _say("  escapereduce      {:9d} records {:10.0f} rec/s, pass-through {:10.0f} rec/s, ratio {:.2f}; {} rows "
         "shipped ({:.2%})".format(len(events), figures["reduce_records_per_s"], figures["passthrough_records_per_s"],
                                   figures["reduce_ratio"], len(rows), figures["shipped_share"]))
    _say("  escapecorrelate   {:9d} rows in {:.2f} s ({:.0f} rows/s); {} correlation pass(es) per schedule: "
         "{:.1f} search-head s per fleet-hour; one search-head core sustains {} fleet audit records/s".format(
             len(rows), correlate.seconds, figures["correlate_rows_per_s"], passes, head_seconds,
             figures["fleet_records_per_s"]))
    _say("  escapecorrelate   CPU time {:.2f} s (user + system; on a loaded machine the elapsed time above grows, "
         "this much less): {} fleet audit records per CPU-second".format(
             correlate.cpu_seconds, figures["fleet_records_per_cpu_s"]))
    return figures


def correlation_memory(bin_dir: Path, state_dir: Path, content: Content, base: int,
                       chunk: int) -> Dict[str, int]:
    """Peak RSS (MB) of escapecorrelate at 1x/2x/4x events over one window and at 1x/2x/4x the window."""
    case = COMMANDS["escapecorrelate"]
    command, args = command_args(case, content)
    lines = audit_lines()
    out: Dict[str, int] = {}
    _say("\n(3) escapecorrelate peak RSS on escapereduce's rows (1x = the lab log once per host, about {} audit "
         "records)".format(base))
    if base < len(lines):
        lines = lines[:base]  # a small run (tests): the start of the lab log, one host
    hosts = max(1, round(base / len(lines)))
    unit = hosts * len(lines)
    for label, density, factor in (("events_1x", 1, 1), ("events_2x", 2, 2), ("events_4x", 4, 4),
                                   ("window_2x", 1, 2), ("window_4x", 1, 4)):
        events = generate_audit(unit * factor, density=density, hosts=hosts, lines=lines)
        first, last = float(str(events[-1]["_time"])), float(str(events[0]["_time"]))
        reducer = Reducer()  # the search peers' step, in process (untimed): escapecorrelate reads its rows
        rows = reducer.feed(events) + reducer.finish()
        rows.sort(key=lambda r: float(str(r["_time"])), reverse=True)
        run = run_raw(bin_dir / (command + ".py"), args, chunked(rows, chunk), state_dir=state_dir)
        if run.returncode != 0:
            raise RuntimeError("escapecorrelate failed: {}".format(run.stderr[-2000:]))
        out[label] = run.max_rss_kb // 1024
        _say("  {:10s} {:8d} events over {:6.0f} s on {} host(s): {:5d} MB".format(
            label, len(events), last - first, hosts, out[label]))
    return out


def bench_line(min_ratio: float, max_rss_mb: int, shipped_share: float, fleet_records_per_s: int) -> str:
    return "BENCH min_ratio={:.3f} max_rss_mb={:d} shipped_share={:.4f} fleet_records_per_s={:d}".format(
        min_ratio, int(max_rss_mb), shipped_share, int(fleet_records_per_s))


def _load() -> str:
    """The machine's 1, 5 and 15 minute load averages (other work on the cores distorts every timing)."""
    return " ".join("%.2f" % value for value in os.getloadavg())


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
