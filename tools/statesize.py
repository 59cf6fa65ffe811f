"""What escapecorrelate persists per host (docs/linux-analytic.md, "State"): bytes of the KV store document and the
processes kept, by why they are kept, for captures given on the command line or a busy host built from the lab log.

    PYTHONPATH=package/bin:. .venv/bin/python -m tools.statesize [--busy COPIES] [PATH ...]

Each PATH (linux:audit, raw or gzip) is correlated as one search (escape_engine.correlate over every event, window
300 s); --busy N correlates N copies of the lab-run1 log stacked on one host within the same minutes (pids offset,
tools/workload.generate_audit): a host N times as busy. For each host it prints the bytes and processes of the
document of every process's newest image (what was persisted before the state was bounded), of the state kept
right after that search (host processes seen in the last window included) and of the
floor that stays once those are older than the window (container-side processes, runtime shims and monitors, their
ancestors), each with the processes kept; and whether the cap dropped anything.
"""
import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from escape_engine.correlate import Correlator
from escape_engine.ground import Row
from escape_engine.lineage import persist
from escape_io import linux_lineage
from tools.inputs import InputSpec, load_inputs
from tools.replay import APP_DIR
from tools.workload import audit_lines, generate_audit

WINDOW = 300.0


def document_bytes(host: str, state: Dict[str, object]) -> int:
    """Bytes of the host's KV store document as escape_io.linux_lineage saves it."""
    return len(json.dumps({"_key": host, "state": json.dumps(state, sort_keys=True)}))


def measure(label: str, events: List[Row]) -> List[str]:
    events.sort(key=lambda e: float(str(e["_time"])), reverse=True)
    correlator = Correlator(window=WINDOW, report="all")
    correlator.feed(events)
    correlator.finish()
    lines = []
    for host, table in sorted(correlator.hosts.items()):
        kept, capped = persist.bounded_state(table, correlator.ttl, WINDOW, linux_lineage.STATE_CHARS)
        floor, _ = persist.bounded_state(table, correlator.ttl, 0.0, linux_lineage.STATE_CHARS)
        every = table.to_json(correlator.ttl)  # every process's newest image, as persisted before the bound
        lines.append("{} host={} events={:,} | every image: {:,} bytes, {:,} processes | after the search: {:,} bytes, "
                     "{:,} processes (capped: {} processes, {} containers) | floor: {:,} bytes, {:,} processes, {} "
                     "containers".format(label, host, len(events), document_bytes(host, every), len(every["procs"]),
                                         document_bytes(host, kept), len(kept["procs"]), capped.processes,
                                         capped.containers, document_bytes(host, floor), len(floor["procs"]),
                                         len(floor["containers"])))
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.statesize", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--busy", type=int, default=0, metavar="COPIES")
    args = parser.parse_args(argv)
    for path in args.paths:
        events, _ = load_inputs([InputSpec("linux:audit", path)], APP_DIR, True)
        print("\n".join(measure(str(path), events)))
    if args.busy:
        lines = audit_lines()
        events = generate_audit(len(lines) * args.busy, density=args.busy, hosts=1, lines=lines)
        print("\n".join(measure("busy x{}".format(args.busy), events)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
