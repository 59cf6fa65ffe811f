"""Namespace-aware correlation of Linux audit (and Sysmon for Linux) events into container-escape chains.

Records arrive newest first, chunk by chunk. `Correlator.encode` turns them into spool lines (escape_engine.intake,
escape_engine.spoolline) whose string order is the replay order; the command spools each chunk's lines sorted to a
file and, on the last chunk, feeds the merged runs to `Correlator.replay` (`feed` + `finish` do the same in memory, for
tests and one-shot use). Replay joins the records of one audit event (adjacent in that order) and processes events in
time order through a per-host process table (escape_engine.lineage) that was loaded from the persisted state.

The parts: which container a process belongs to is escape_engine.lineage's; what an event means for its container
(the items: triggers and results) is escape_engine.activity's; how a container's items form a chain and which
finding and severity it gets is escape_engine.chains'.
"""
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

from .activity import Activity
from .chains import REPORTS, Chain, Clusters, alert_row, best_container_id
from .containers import ContainerFacts, registry_key
from .ground import ESCAPE_SYSCALLS, Record, Row
from .intake import RANGE_SKEW, Intake, time_bounds
from .lineage import DEFAULT_RUNTIME, HostLineage
from .lineage.persist import bounded_state
from .spoolline import Event, events

SOURCES = ("raw", "reduced")  # what escapecorrelate reads: events, or escapereduce's compact rows


def parse_list(text: str) -> List[str]:
    return [item.strip() for item in text.replace(";", ",").split(",") if item.strip()]


class Correlator:
    """Stateful correlation over chunks of events; see the module docstring."""

    def __init__(self, *, window: float = 300.0, skew: float = 2.0, allowlist: Iterable[str] = (),
                 runtime: Optional[Iterable[str]] = None, ttl: float = 7 * 86400.0, report: str = "escapes",
                 state: Optional[Mapping[str, Mapping[str, Any]]] = None, earliest: Optional[float] = None,
                 latest: Optional[float] = None, source: str = "raw",
                 containers: Iterable[ContainerFacts] = ()) -> None:
        """`earliest` / `latest`: the search's time range (epoch seconds; None or 0 for unbounded). An event whose own
        time lies more than intake.RANGE_SKEW outside it is skipped and counted (out_of_range). `source`: "raw"
        (audit and Sysmon events) or "reduced" (escapereduce's compact rows). `containers`: what the runtimes' APIs
        said about containers (the container registry), to name each chain's container."""
        if window <= 0:
            raise ValueError("window must be a positive number of seconds, got {}".format(window))
        if skew < 0:
            raise ValueError("skew must be zero or more seconds, got {}".format(skew))
        if source not in SOURCES:
            raise ValueError("input must be one of {}, got {!r}".format(", ".join(SOURCES), source))
        if report not in REPORTS:
            raise ValueError("report must be one of {}, got {!r}".format(", ".join(REPORTS), report))
        unknown = [s for s in allowlist if s not in ESCAPE_SYSCALLS]
        if unknown:
            raise ValueError("allowlist names unknown syscalls: {}; use any of {}".format(
                ", ".join(unknown), ", ".join(ESCAPE_SYSCALLS)))
        self.window = window
        self.skew = skew
        self.allowlist = frozenset(allowlist)
        self.runtime = tuple(runtime) if runtime else DEFAULT_RUNTIME
        self.ttl = ttl
        self.report = report
        self.source = source
        self.containers: Dict[Tuple[str, str], ContainerFacts] = {facts.key(): facts for facts in containers}
        self.hosts: Dict[str, HostLineage] = {}
        self.summary: Dict[str, int] = {"records": 0, "audit_events": 0, "sysmon_events": 0, "malformed": 0,
                                        "out_of_order": 0, "out_of_range": 0, "runtime_suppressed": 0, "allowlisted": 0,
                                        "escapes": 0, "suspicious": 0, "attempts": 0, "state_dropped": 0}
        bounds = self._bounds = time_bounds(earliest, latest)
        self.capped: Dict[str, Tuple[int, int]] = {}  # host -> (processes, containers) the byte cap dropped
        self._cap = 0
        self.restore(state or {})
        self._buffer: List[str] = []
        self._intake = Intake(self.summary, skew, bounds)
        # A cluster is classified as soon as replay time passes its last item by more than `window`; the rows wait in
        # the clusters' chains for the container table.
        self._clusters = Clusters(window, skew, report, self.summary)
        self._activity = Activity(self._clusters, self._table, window=window, skew=skew, allowlist=self.allowlist,
                                  summary=self.summary)
        self._swept: Tuple[str, float] = ("", float("-inf"))

    def restore(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        """Load the persisted lineage of these hosts (before replay). Unusable entries (a hand edit, a cut document)
        are skipped and counted."""
        for host, data in state.items():
            table = self.hosts[host] = HostLineage.from_json(data, self.runtime, host=host)
            self.summary["state_dropped"] += table.dropped
            # a newest time past the search (an older version's) heals
            table.max_time = min(table.max_time, self._bounds[1])

    # ---- input: records -> spool lines --------------------------------------------------------------------------
    # `feed` keeps the lines in memory; a caller that spools each chunk's lines sorted to a file (`encode`) and merges
    # the files into `replay` holds no event in memory.
    def feed(self, records: Iterable[Record]) -> None:
        self._buffer.extend(self.encode(records))

    def encode(self, records: Iterable[Record]) -> List[str]:
        """One spool line per kept record (or compact row) of one chunk; counts records, malformed and out-of-order
        events."""
        if self.source == "reduced":
            return self._intake.encode_reduced(records)
        return self._intake.encode(records)

    def replay(self, lines: Iterable[str]) -> None:
        """Process spool lines in string order, one event at a time (the records of an audit event are adjacent)."""
        for event in events(lines):
            self._dispatch(event)

    # ---- replay in time order ----------------------------------------------------------------------------------
    def _table(self, host: str) -> HostLineage:
        table = self.hosts.get(host)
        if table is None:
            table = self.hosts[host] = HostLineage(host, self.runtime)
        return table

    def _dispatch(self, event: Event) -> None:
        host, swept = self._swept
        if event.host != host or event.time > swept + self.window:
            self._sweep(event.host, event.time)
        self.summary["sysmon_events" if event.sysmon is not None else "audit_events"] += 1
        if event.sysmon is not None:
            self._activity.sysmon_event(event)
        else:
            self._activity.audit_event(event)

    def _sweep(self, host: str, now: float) -> None:
        """Classify the clusters replay time has left behind and forget traps and clients too old to match."""
        previous, _ = self._swept
        if previous != host:  # replay is ordered by host: the previous host has no more events
            self._clusters.close_host(previous)
            self._activity.forget(previous)
        self._clusters.close_idle(host, now)
        self._activity.prune(host, now)
        self._swept = (host, now)

    # ---- output ------------------------------------------------------------------------------------------------
    def finish(self) -> List[Row]:
        """Replay the buffered events in time order and return one alert row per chain."""
        if self._buffer:
            lines, self._buffer = self._buffer, []
            lines.sort()
            self.replay(lines)
        chains = self._clusters.close_all()
        self._activity.reset()
        self._swept = ("", float("-inf"))
        rows = [self._row(chain) for chain in chains]
        rows.sort(key=lambda r: float(str(r["_time"])), reverse=True)
        return rows

    def _row(self, chain: Chain) -> Row:
        container = self._table(chain.host).containers.get(chain.key, {})
        facts = self.containers.get(registry_key(chain.host, best_container_id(chain.key, container)))
        return alert_row(chain, container, facts)

    def messages(self) -> List[Tuple[str, str]]:
        """(level, text) for the search inspector after finish: the counts, then one warning per kind of problem."""
        counts = self.summary
        out = [("INFO", "escapecorrelate: " + ", ".join("%s=%d" % pair for pair in sorted(counts.items())))]
        if self.capped:
            out.append(("WARN", "escapecorrelate: the lineage of %d host(s) was over its cap of %d characters: %d processes "
                                "and %d containers were left out of the persisted state (host processes first, then "
                                "processes that started no other, oldest activity first): %s" % (
                                    len(self.capped), self._cap, sum(p for p, _ in self.capped.values()),
                                    sum(c for _, c in self.capped.values()), ", ".join(sorted(self.capped))[:300])))
        if counts["state_dropped"]:
            out.append(("WARN", "escapecorrelate: %d unusable entries of the persisted lineage were skipped"
                        % counts["state_dropped"]))
        if counts["out_of_range"]:
            out.append(("WARN", "escapecorrelate: %d records carried a time more than %d s outside the search's time "
                                "range and were skipped" % (counts["out_of_range"], RANGE_SKEW)))
        if counts["out_of_order"] or counts["malformed"]:
            out.append(("WARN", "escapecorrelate: %d events arrived out of the tolerated order, %d records were "
                                "malformed (not an audit or Sysmon event, no time between 1970 and 2100, or a Sysmon "
                                "event without its process or file)" % (counts["out_of_order"], counts["malformed"])))
        return out

    def state(self, max_chars: int = 1 << 62) -> Dict[str, Dict[str, Any]]:
        """The per-host lineage to persist for the next search (after finish): what attribution needs, each host's
        JSON text at most `max_chars` (escape_engine.lineage.persist). What the cap dropped is reported by
        messages()."""
        out = {}
        self._cap = max_chars
        for host, table in self.hosts.items():
            out[host], capped = bounded_state(table, self.ttl, self.window, max_chars)
            if capped.processes or capped.containers:
                self.capped[host] = (capped.processes, capped.containers)
        return out


def run(records: Iterable[Record], *, window: float = 300.0, skew: float = 2.0, allowlist: str = "",
        runtime: str = "", report: str = "escapes", ttl: float = 7 * 86400.0,
        state: Optional[Mapping[str, Mapping[str, Any]]] = None, earliest: Optional[float] = None,
        latest: Optional[float] = None, source: str = "raw",
        containers: Iterable[ContainerFacts] = ()) -> Iterator[Row]:
    """One-shot entry point over all records (tests, replay): feed everything, then emit the alert rows."""
    correlator = Correlator(window=window, skew=skew, allowlist=parse_list(allowlist),
                            runtime=parse_list(runtime), ttl=ttl, report=report, state=state, earliest=earliest,
                            latest=latest, source=source, containers=containers)
    correlator.feed(records)
    yield from correlator.finish()
