"""tools/bench.py: the per-command table, the base-search matcher, the workload generator and the BENCH line.
Small and fast; never a timing assertion (speed is measured by ./build.sh bench, not by tests)."""
import json
import re
from collections import Counter

import pytest

from tools import bench, searchterms
from tools.fleet import generate_fleet, other_rules_share
from tools.workload import audit_lines, generate_audit, generate_kube, generate_workload, runtime_noise_share


@pytest.fixture(scope="module")
def content() -> bench.Content:
    return bench._content()


def test_every_command_in_commands_conf_has_a_bench_entry() -> None:
    names = bench.conf_commands()
    assert "escapecorrelate" in names and "escapeinspect" in names
    missing = [n for n in names if n not in bench.COMMANDS]
    assert not missing, "declare {} in tools/bench.py COMMANDS".format(", ".join(missing))
    stale = [n for n in bench.COMMANDS if n not in names]
    assert not stale, "COMMANDS names commands that commands.conf no longer has: {}".format(stale)


def test_each_entry_points_at_a_detection_pipe_that_runs_that_command(content: bench.Content) -> None:
    for name, case in bench.COMMANDS.items():
        command, args = bench.command_args(case, content)
        assert command == name, "{}: pipe {} of {} runs {}".format(name, case.pipe, case.detection, command)
        assert all("=" in a and "`" not in a for a in args), args  # macros expanded, SPL-style key=value


def test_overrides_replace_the_detection_arguments(content: bench.Content) -> None:
    case = bench.CommandCase("container_allowlisted_workload", 1, (("suppressed", "include"),))
    _name, args = bench.command_args(case, content)
    assert [a for a in args if a.startswith("suppressed=")] == ["suppressed=include"]


def test_bench_line_format() -> None:
    line = bench.bench_line(0.8123456, 241.7, 0.0712345, 312345)
    assert line == "BENCH min_ratio=0.812 max_rss_mb=241 shipped_share=0.0712 fleet_records_per_s=312345"
    assert re.fullmatch(r"BENCH min_ratio=\d+\.\d+ max_rss_mb=\d+ shipped_share=\d+\.\d+ fleet_records_per_s=\d+", line)


def test_fast_matcher_agrees_with_the_replay_matcher(content: bench.Content) -> None:
    workload = generate_workload(3000, seed=11)
    events = [e for source in workload.values() for e in source][::5]
    events += [e for slug in ("windows_container_symlink_abuse", "esxi_vmx_crash")
               for e in bench.sample_events(content.detections[slug])]
    for slug, detection in content.with_base_search().items():
        tree = bench.base_search(detection, content.macros)
        fast = bench.compile_matcher(tree)
        for event in events:
            expected = searchterms.matches(tree, event)
            assert fast(event, {}) is expected, (slug, event["sourcetype"], str(event["_raw"])[:200])
            verdict = bench.metadata_verdict(tree, event)
            assert verdict is None or verdict is expected, (slug, event["sourcetype"])


def test_audit_copies_vary_hosts_pids_serials_and_keep_enriched_records() -> None:
    lines = audit_lines()[:3000]
    events = generate_audit(4 * len(lines), density=2, hosts=2, lines=lines)
    assert len(events) == 4 * len(lines)
    times = [float(str(e["_time"])) for e in events]
    assert times == sorted(times, reverse=True)  # newest first, as Splunk hands them to a search-head command
    keys = Counter((e["host"], re.search(r"msg=audit\(([\d.]+:\d+)\)", str(e["_raw"])).group(1)) for e in events)
    lab = Counter(re.search(rb"msg=audit\(([\d.]+:\d+)\)", line).group(1) for line in lines)
    assert max(keys.values()) == max(lab.values())  # copies get their own serials: no two events merge
    assert {e["host"] for e in events} == {"bench-node-00", "bench-node-01"}
    # density 2: both copies on a host share one time span, their pids differ by the offset
    spans = {h: (min(t for e, t in zip(events, times) if e["host"] == h), max(t for e, t in zip(events, times)
                                                                                if e["host"] == h)) for h in ("bench-node-00",)}
    lab_span = float(re.search(rb"audit\(([\d.]+)", lines[-1]).group(1)) - float(re.search(rb"audit\(([\d.]+)", lines[0]).group(1))
    assert spans["bench-node-00"][1] - spans["bench-node-00"][0] <= lab_span + 1
    pids = {re.search(r" pid=(\d+)", str(e["_raw"])).group(1) for e in events if " pid=" in str(e["_raw"])}
    assert any(int(p) >= 50000 for p in pids) and any(int(p) < 50000 for p in pids)
    assert any("\x1d" in str(e["_raw"]) for e in events)  # ENRICHED tail kept inside its record


def test_audit_windows_stack_in_time_when_density_is_one() -> None:
    lines = audit_lines()[:2000]
    one = generate_audit(len(lines), density=1, hosts=1, lines=lines)
    four = generate_audit(4 * len(lines), density=1, hosts=1, lines=lines)
    span = lambda ev: float(str(ev[0]["_time"])) - float(str(ev[-1]["_time"]))
    assert span(four) > 3.5 * span(one)


def test_kube_events_are_valid_audit_json_with_large_writes_and_metadata_reads() -> None:
    import random
    events = generate_kube(400, random.Random(7), 1795923651.0, 3600.0)
    parsed = [json.loads(str(e["_raw"])) for e in events]
    writes = [p for p in parsed if "requestObject" in p]
    reads = [p for p in parsed if "requestObject" not in p]
    assert 0.1 < len(writes) / len(parsed) < 0.5 and reads
    assert all(p["verb"] in ("get", "list", "watch") and p["level"] == "Metadata" for p in reads)
    assert all("kubectl.kubernetes.io/last-applied-configuration" in p["requestObject"]["metadata"]["annotations"]
               for p in writes)
    assert len({p["auditID"] for p in parsed}) == len(parsed)
    assert min(len(str(e["_raw"])) for e in events if "requestObject" in str(e["_raw"])) > \
        max(len(str(e["_raw"])) for e in events if "requestObject" not in str(e["_raw"]))


def test_workload_mix_is_deterministic_and_follows_the_declared_shares() -> None:
    first = generate_workload(2000, seed=3)
    again = generate_workload(2000, seed=3)
    assert [e["_raw"] for e in first["kube"]] == [e["_raw"] for e in again["kube"]]
    sizes = {k: len(v) for k, v in first.items()}
    assert sum(sizes.values()) == 2000
    assert sizes == {"audit": 1600, "kube": 300, "docker": 100}
    assert {e["sourcetype"] for e in first["docker"]} <= {"docker:daemon", "docker:events", "docker:inspect"}


def test_selectivity_hands_each_detection_only_its_sources(content: bench.Content) -> None:
    workload = generate_workload(1500, seed=5)
    counts, selected = bench.selectivity(workload, content)
    assert counts["linux_escape_correlation"] == len(workload["audit"])  # the one Linux pass, not its readers
    assert "linux_container_escape_chain" not in counts and "linux_container_escape_attempt" not in counts
    kube = selected["kube_workload_host_access"]
    assert kube and all(e["sourcetype"] == "kube:apiserver-audit" for e in kube)
    assert all(json.loads(str(e["_raw"]))["verb"] in ("create", "update", "patch") or
               re.search(r"(?i)(?<![a-z0-9])(create|update|patch)(?![a-z0-9])", str(e["_raw"])) for e in kube)
    assert counts["kube_workload_host_access"] < len(workload["kube"])  # reads are not handed over


def test_runtime_noise_share_uses_the_lab_ground_truth() -> None:
    share = runtime_noise_share(generate_audit(20000, hosts=1))
    assert 0.0 < share < 1.0


def test_the_fleet_workload_is_a_fleet_mostly_of_other_rules_traffic() -> None:
    events = generate_fleet(40000)
    raws = [str(e["_raw"]) for e in events]
    assert len({e["host"] for e in events}) >= 200
    assert other_rules_share(events) >= 0.5
    for marker in ("type=USER_", "type=CRED_", "type=SERVICE_START", "type=LOGIN", 'exe="/usr/sbin/crond"',
                   'comm="systemd"', 'key="time-change"', 'key="identity"', 'key="perm_mod"', 'key="privileged"',
                   'key="t1611"'):
        assert any(marker in raw for raw in raws), marker
    assert [float(str(e["_time"])) for e in events] == sorted((float(str(e["_time"])) for e in events), reverse=True)


def test_one_linux_correlation_pass_per_schedule(content: bench.Content) -> None:
    """Both Linux detections read what one maintenance search correlates: the fleet figure divides by one pass."""
    assert bench.linux_passes(content) == 1
    assert bench.command_args(bench.COMMANDS["escapefindings"], content)[0] == "escapefindings"

