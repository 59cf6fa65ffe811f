"""Issue 18: the Overview dashboard's Incidents panel (package/default/data/ui/views/escape_overview.xml) over replayed
alert rows. The spec alert (docker create) and the chain alerts (auditd) of one lab container become one incident
row whose alerts are listed in time order.

The panel reads the rows of fired alerts (`| rest .../fired_alerts` then `| loadjob`, like the other panels: it needs
neither ES nor a new index). What follows the `map` is run here by a reader of exactly the commands and functions the
panel uses, with Splunk's documented semantics (Search Reference: null propagation in `.` concatenation, values()
sorted and distinct, list() in arrival order); any other command or function fails the test, so a change to the
panel's shape has to be read here too."""
import re
import time
from pathlib import Path
from typing import Dict, List, Optional
from xml.etree import ElementTree

from tests.conftest import ROOT
from tools import content, replay
from tools.spl import command_name, split_pipes, split_top

VIEW = ROOT / "package" / "default" / "data" / "ui" / "views" / "escape_overview.xml"
Row = Dict[str, List[str]]
SPEC, CHAIN = "docker_container_host_access", "linux_container_escape_chain"
LAB_CONTAINER = "ceeb6cd20f98acb210675556a012202fdb51cc1b88eb9cc2c8904bc4e45f6815"  # esc01-nsenter-r3 of lab-run1


def panel_query() -> str:
    root = ElementTree.parse(str(VIEW)).getroot()
    found = [p.findtext(".//query") or "" for p in root.iter("panel") if (p.findtext("title") or "").startswith(
        "Incidents")]
    assert len(found) == 1
    return found[0]


def tail(query: str) -> List[str]:
    """The pipes after `map` (the rows of the alert jobs)."""
    pipes = split_pipes(query.strip()[1:])
    names = [command_name(p)[0] for p in pipes]
    assert names[:7] == ["rest", "search", "sort", "dedup", "head", "fields", "map"], names
    return pipes[7:]


def _term(term: str, row: Row) -> Optional[str]:
    term = term.strip()
    if term.startswith('"'):
        return term[1:-1]
    call = re.fullmatch(r"(\w+)\((.*)\)", term, re.DOTALL)
    if call is None:
        assert re.fullmatch(r"\w+", term), term
        return row[term][0] if row.get(term) else None
    args = [a.strip() for a in split_top(call.group(2), ",")]
    if call.group(1) == "coalesce":
        return next((v for v in (_term(a, row) for a in args) if v is not None), None)
    assert call.group(1) == "strftime" and len(args) == 2, term
    value = _term(args[0], row)
    if value is None:
        return None
    stamp = float(value)
    fmt = args[1][1:-1].replace("%3N", "%03d" % (round(stamp * 1000) % 1000))
    return time.strftime(fmt, time.gmtime(stamp))


def _eval(args: str, row: Row) -> Row:
    out = dict(row)
    for assignment in split_top(args, ","):
        name, expr = assignment.split("=", 1)
        terms = [_term(t, row) for t in split_top(expr, ".")]
        out[name.strip()] = [] if any(t is None for t in terms) else ["".join(str(t) for t in terms)]
    return out


def _stats(args: str, rows: List[Row]) -> List[Row]:
    clause, by = re.fullmatch(r"(.*) by (\w+)", args).groups()  # type: ignore[union-attr]
    aggregations = re.findall(r"(\w+)\((\w+)\) as (\w+)", clause)
    assert " ".join("{}({}) as {}".format(*a) for a in aggregations) == clause.strip(), clause
    groups: Dict[str, List[Row]] = {}
    for row in rows:
        for key in row.get(by, []):
            groups.setdefault(key, []).append(row)
    result = []
    for key in sorted(groups):
        out: Row = {by: [key]}
        for function, field, name in aggregations:
            values = [v for r in groups[key] for v in r.get(field, [])]
            if function in ("min", "max"):
                out[name] = ["%s" % (min if function == "min" else max)(float(v) for v in values)]
            elif function == "values":
                out[name] = sorted(set(values))
            else:
                assert function == "list", function
                out[name] = values
        result.append(out)
    return result


def run(pipes: List[str], rows: List[Row]) -> List[Row]:
    for pipe in pipes:
        name, args = command_name(pipe)
        if name == "fields":
            rows = [{k: v for k, v in r.items() if k in args.split()} for r in rows]
        elif name == "where":
            field = re.fullmatch(r"isnotnull\((\w+)\)", args.strip()).group(1)  # type: ignore[union-attr]
            rows = [r for r in rows if r.get(field)]
        elif name == "mvexpand":
            rows = [dict(r, **{args.strip(): [v]}) for r in rows for v in r.get(args.strip(), [])]
        elif name == "sort":
            order = re.fullmatch(r"0 (- )?(\w+)", args.strip())
            assert order is not None, args
            rows = sorted(rows, key=lambda r: float(r[order.group(2)][0]), reverse=bool(order.group(1)))
        elif name == "eval":
            rows = [_eval(args, r) for r in rows]
        elif name == "stats":
            rows = _stats(args, rows)
        elif name == "convert":
            fields = re.findall(r"ctime\((\w+)\)", args)
            assert " ".join("ctime({})".format(f) for f in fields) == args.strip(), args
            rows = [dict(r, **{f: [time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(float(r[f][0])))]
                               for f in fields}) for r in rows]
        else:
            raise AssertionError("the panel's {!r} is not read by this test".format(name))
    return rows


def alert_rows(built_app: Path, fields: List[str]) -> List[Row]:
    detections = {d.slug: d for d in content.detections(content.CONTENT)}
    specs = replay.sample_specs(detections[SPEC], "fires") + replay.sample_specs(detections[CHAIN], "fires")
    alerts = replay.replay(specs, content.CONTENT, built_app, only=[SPEC, CHAIN], fields=fields)
    rows = []
    for number, alert in enumerate(alerts):
        row: Row = {"escape_rule": [str(alert["detection"])], "escape_sid": ["replay_%d" % number],
                    "host": [str(alert["host"])]}
        for name, value in alert["fields"].items():  # type: ignore[union-attr]
            if name in row:
                continue  # set by the panel's map (escape_rule, escape_sid) or the alert's own host
            values = [str(v) for v in value] if isinstance(value, list) else [str(value)]
            row[name] = [v for v in values if v != ""]
        rows.append(row)
    return rows


def test_one_lab_containers_spec_and_chain_alerts_are_one_incident_in_time_order(built_app: Path) -> None:
    pipes = tail(panel_query())
    fields = command_name(pipes[0])[1].split()
    assert command_name(pipes[0])[0] == "fields" and "escape_incident" in fields
    incidents = {r["escape_incident"][0]: r for r in run(pipes, alert_rows(built_app, fields))}
    incident = incidents["container:replay/" + LAB_CONTAINER]
    alerts = incident["alerts"]
    stamps = [a[:23] for a in alerts]
    assert stamps == sorted(stamps) and len(alerts) >= 2
    rules = [a.split(" ", 3)[3] for a in alerts]
    spec_rule = next(d.stanza for d in content.detections(content.CONTENT) if d.slug == SPEC)
    chain_rule = next(d.stanza for d in content.detections(content.CONTENT) if d.slug == CHAIN)
    assert rules[0] == spec_rule and chain_rule in rules  # the create comes first, then the chain from inside it
    assert incident["container_id"] == [LAB_CONTAINER]
    assert "esc01-nsenter-r3" in incident["container"]
    assert incident["host"] == ["replay"] and incident["severities"] == ["critical"]
    assert incident["first_alert"][0] <= incident["last_alert"][0]
    # every incident row lists alerts of one key only, and no alert is lost or counted twice
    assert sum(len(r["alerts"]) for r in incidents.values()) == len(
        [r for r in alert_rows(built_app, fields) if r.get("escape_incident")])
