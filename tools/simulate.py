"""The scheduler simulation: the add-on's enabled saved searches run as Splunk's scheduler runs them (docs/replay.md).

    ./build.sh simulate --input SOURCETYPE[,source=S][,host=H][,index=I]=PATH ... --from ISO --to ISO [--lag SECONDS]
                        [--peers N] [--set MACRO=VALUE ...] [--enable SLUG ...]

Every saved search of the built savedsearches.conf that is enabled and scheduled (after `--enable SLUG`, which
enables a detection the way the setup page's Analytics tab does, with its companion maintenance searches:
escape_setup.page.plan_analytics) runs at each minute its cron_schedule selects in [--from, --to), over its dispatch
window relative to that minute (tools/schedule.py), seeing only events whose index time (_time + --lag) is before
the run time. Searches run one after another in time order; at one minute, in savedsearches.conf order. All runs
share one offline KV store with splunkd's limits (tools/kvstandin.py). Alert suppression (alert.suppress.fields and
alert.suppress.period) applies across runs. With --peers N, events are sharded as forwarders spread them
(tools/peers.py) and the leading distributed commands of a search run once per peer over that peer's events.

A run is the replay's (tools/replay.py: base search, commands over SCP v2, filter hook); each alert is the replay's
JSON object plus `run_time`. A run that fails is reported on stderr and the simulation goes on, as the scheduler does.
"""
import argparse
import functools
import json
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union, cast

from escape_setup import page
from tools import commands, conffile, content, peers
from tools.inputs import InputSpec, ReplayError, load_inputs, parse_input, warn
from tools.model import MaintenanceSearch
from tools.replay import APP_DIR, Event, Replay, project, render, run_pipe, validate_overrides
from tools.schedule import Cron, ScheduleError, parse_iso, relative_time
from tools.setup_manifest import MANIFEST_NAME
from tools.spl import command_name, expand_macros

DEFAULT_LAG = 120.0
_TRUE = ("1", "true", "t", "yes", "y")  # Splunk's boolean values in .conf files
_PERIOD_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass
class Scheduled:
    """One enabled scheduled search of the built savedsearches.conf."""
    stanza: str
    cron: Cron
    earliest: str
    latest: str
    search: Union[content.Detection, MaintenanceSearch]
    suppress_fields: Tuple[str, ...] = ()
    suppress_period: float = 0.0

    @property
    def detection(self) -> Optional[content.Detection]:
        return self.search if isinstance(self.search, content.Detection) else None


def _period(text: str, stanza: str) -> float:
    value = text.strip()
    if value and value[:-1].isdigit() and value[-1] in _PERIOD_UNITS:
        return float(int(value[:-1]) * _PERIOD_UNITS[value[-1]])
    if value.isdigit():
        return float(value)
    raise ReplayError("{}: alert.suppress.period {!r} is not <n>[smhd]".format(stanza, text))


def scheduled_searches(app_dir: Path, content_dir: Path, enable: Sequence[str]) -> List[Scheduled]:
    """The saved searches that are enabled and scheduled once `enable` is applied as the setup page applies it."""
    stanzas = conffile.parse(app_dir / "default" / "savedsearches.conf")
    manifest = page.Manifest(json.loads((app_dir / "bin" / MANIFEST_NAME).read_text(encoding="utf-8")))
    unknown = sorted(set(enable) - {d.slug for d in manifest.detections})
    if unknown:
        raise ReplayError("--enable: unknown detection(s): {}".format(", ".join(unknown)))
    disabled = {name: keys.get("disabled", "0").strip().lower() in _TRUE for name, keys in stanzas.items()}
    for name, value in page.plan_analytics(manifest, {slug: "1" for slug in enable}, disabled):
        disabled[name] = value == "1"
    known: Dict[str, Union[content.Detection, MaintenanceSearch]] = {
        d.stanza: d for d in content.detections(content_dir)}
    known.update({m.stanza: m for m in content.maintenance_searches(content_dir)})
    result = []
    for name, keys in stanzas.items():
        if disabled[name] or keys.get("is_scheduled", "0").strip().lower() not in _TRUE:
            continue
        if name not in known:
            raise ReplayError("{}: an enabled scheduled search that is not in content/: not simulated".format(name))
        try:
            cron = Cron(keys.get("cron_schedule", ""))
            for modifier in (keys.get("dispatch.earliest_time", ""), keys.get("dispatch.latest_time", "")):
                relative_time(modifier, datetime.now(timezone.utc))
        except ScheduleError as err:
            raise ReplayError("{}: {}".format(name, err)) from None
        suppress = keys.get("alert.suppress", "0").strip().lower() in _TRUE
        fields = tuple(f.strip() for f in keys.get("alert.suppress.fields", "").split(",") if f.strip())
        result.append(Scheduled(name, cron, keys.get("dispatch.earliest_time", ""), keys.get("dispatch.latest_time", ""),
                                known[name], fields if suppress else (),
                                _period(keys.get("alert.suppress.period", "0"), name) if suppress else 0.0))
    return result


class Simulation(Replay):
    """The replay's engine with a dispatch window, an index-time cut-off and search peers."""
    window: Tuple[float, float, float] = (0.0, 0.0, 0.0)  # earliest, latest, run time (epoch seconds)
    lag: float = DEFAULT_LAG
    peer_count: int = 1

    def visible(self, position: int) -> bool:
        earliest, latest, now = self.window
        when = float(str(self.events[position]["_time"]))
        return earliest <= when < latest and when + self.lag < now

    def setup_peers(self, count: int) -> None:
        self.peer_count = count
        stand_ins = [{"host": e.get("host", ""), "_time": e["_time"], "position": str(i)}
                     for i, e in enumerate(self.events)]
        self.peer_of: Dict[int, str] = {}
        for shard in peers.shard(stand_ins, count):
            for event in shard:
                self.peer_of[int(str(event["position"]))] = str(event["splunk_server"])
        for position, server in self.peer_of.items():  # where an alert's evidence says the event is
            self.events[position]["splunk_server"] = server
        self.index_evidence()
        self.distributed = {c.name for c in commands.commands(self.app_dir / "bin") if c.distributed}

    def peer_rows(self, selected: Sequence[int], required: Optional[Sequence[str]]) -> List[Event]:
        rows = []
        for position in selected:
            row = dict(self.fields_of(position))
            row["splunk_server"] = self.peer_of[position]
            rows.append(row)
        return project(rows, list(required) + ["splunk_server"] if required else None)

    def run_pipes(self, label: str, replayed: Sequence[str], selected: Sequence[int],
                  info: Optional[Mapping[str, Any]] = None) -> List[Event]:
        if self.peer_count == 1 or not selected:  # a search that reads saved results has no events to shard
            return super().run_pipes(label, replayed, selected, info)
        leading = 0
        while leading < len(replayed) and command_name(expand_macros(replayed[leading], self.macros))[0] \
                in self.distributed:
            leading += 1
        merged: List[Event] = []
        for peer in range(self.peer_count):
            name = peers.server_name(peer)
            rows = functools.partial(self.peer_rows, [i for i in selected if self.peer_of[i] == name])
            for pipe in replayed[:leading]:
                out = run_pipe(pipe, rows, self.macros, self.app_dir, self.state_dir, label + "@" + name, self.notes)
                rows = functools.partial(project, out)
            merged.extend(rows(None))
        # The search head merges the peers' results newest first, as it hands events to the next command.
        merged.sort(key=lambda r: float(str(r.get("_time", "0"))), reverse=True)
        provider = functools.partial(project, merged)
        for pipe in replayed[leading:]:
            merged = run_pipe(pipe, provider, self.macros, self.app_dir, self.state_dir, label, self.notes)
            provider = functools.partial(project, merged)
        return merged


def _epoch(when: datetime) -> float:
    return when.timestamp()


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _suppression_key(row: Mapping[str, object], fields: Sequence[str]) -> Tuple[str, ...]:
    return tuple(json.dumps(row.get(f, ""), sort_keys=True) for f in fields)


def simulate(specs: Sequence[InputSpec], start: datetime, end: datetime, lag: float = DEFAULT_LAG, peer_count: int = 1,
             settings: Sequence[str] = (), enable: Sequence[str] = (), content_dir: Path = content.CONTENT,
             app_dir: Path = APP_DIR, state_dir: Optional[Path] = None,
             fields: Sequence[str] = ()) -> Tuple[List[Dict[str, object]], List[str]]:
    """The alerts of every run in [start, end) and the failed runs (one message each); `fields` as the replay's."""
    if end <= start:
        raise ReplayError("--to must be after --from")
    if lag < 0 or peer_count < 1:
        raise ReplayError("--lag must be 0 or more and --peers 1 or more")
    overrides = validate_overrides(settings, content_dir)
    searches = scheduled_searches(app_dir, content_dir, enable)
    events, _ = load_inputs(specs, app_dir, True)
    runs = sorted((when, order) for order, s in enumerate(searches) for when in s.cron.times(start, end))
    alerts: List[Dict[str, object]] = []
    failures: List[str] = []
    suppressed_until: Dict[Tuple[str, Tuple[str, ...]], float] = {}
    with tempfile.TemporaryDirectory(prefix="escape-simulate-state-") as fresh:
        engine = Simulation(events, content_dir, app_dir, overrides, state_dir or Path(fresh), fields=fields)
        engine.lag = lag
        if peer_count > 1:
            engine.setup_peers(peer_count)
        for when, order in runs:
            search = searches[order]
            now = _epoch(when)
            engine.window = (_epoch(relative_time(search.earliest, when)), _epoch(relative_time(search.latest, when)),
                             now)
            runnable = cast(content.Detection, search.search)  # a maintenance search has no filter and no alerts
            try:
                rows = engine.result_rows(runnable)
            except ReplayError as err:
                failures.append("{} {}: {}".format(_iso(when), search.stanza, err))
                warn("{} | {}: the run failed: {}".format(_iso(when), search.stanza, err))
                continue
            detection = search.detection
            if detection is None:
                if rows:
                    warn("{} | {}: a maintenance search returned {} row(s)".format(_iso(when), search.stanza,
                                                                                   len(rows)))
                continue
            for row in rows:
                if search.suppress_fields:
                    key = (search.stanza, _suppression_key(row, search.suppress_fields))
                    if now < suppressed_until.get(key, float("-inf")):
                        continue
                    suppressed_until[key] = now + search.suppress_period
                alert = engine.alert(detection, row)
                alert["run_time"] = _iso(when)
                alerts.append(alert)
        engine.notes.flush()
    return alerts, failures


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="./build.sh simulate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", action="append", default=[], metavar="SOURCETYPE[,source=S][,host=H][,index=I]=PATH")
    parser.add_argument("--from", dest="start", required=True, metavar="ISO", help="first run time (UTC if no zone)")
    parser.add_argument("--to", dest="end", required=True, metavar="ISO", help="runs strictly before this time")
    parser.add_argument("--lag", type=float, default=DEFAULT_LAG, metavar="SECONDS",
                        help="index time = event time + lag (default 120)")
    parser.add_argument("--peers", type=int, default=1, metavar="N", help="search peers (default 1)")
    parser.add_argument("--set", action="append", default=[], metavar="MACRO=VALUE")
    parser.add_argument("--enable", action="append", default=[], metavar="SLUG",
                        help="enable this detection (and its companions) as the setup page does")
    parser.add_argument("--state", type=Path, help="the stand-in KV store's folder; default: fresh")
    parser.add_argument("--content", type=Path, default=content.CONTENT, help=argparse.SUPPRESS)
    parser.add_argument("--app", type=Path, default=APP_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if not args.input:
            raise ReplayError("give at least one --input SOURCETYPE[,source=S][,host=H][,index=I]=PATH")
        if args.state:
            args.state.mkdir(parents=True, exist_ok=True)
        alerts, failures = simulate([parse_input(i) for i in args.input], parse_iso(args.start), parse_iso(args.end),
                                    args.lag, args.peers, args.set, args.enable, args.content, args.app, args.state)
    except (ReplayError, ScheduleError, content.DetectionError) as err:
        print("simulate: error: {}".format(err), file=sys.stderr)
        return 2
    sys.stdout.write(render(alerts, "json"))
    warn("{} alert(s), {} failed run(s)".format(len(alerts), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
