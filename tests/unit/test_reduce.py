"""escapereduce (escape_engine.reduce) and escapecorrelate input=reduced: the same alerts, evidence and lineage as the
correlation over raw events, also when a host's events are sharded over search peers (tools.peers.shard, the one
sharding rule), and the drop rules that make the rows few."""
import gzip
from typing import Dict, List, Mapping, Sequence

import pytest

from escape_engine import sysmon_linux
from escape_engine.correlate import Correlator
from escape_engine.ground import Row, Value
from escape_engine.reduce import Reducer
from tests.conftest import DATA
from tests.unit.linux_lab import (
    LAB3,
    LAB3_HOST,
    capture_records,
    interpreted_records,
    lab2_records,
    lab_records,
    public_text,
    to_records,
)
from tools.peers import peer_of, server_name, shard

SAMPLES = DATA.parent / "knowledge" / "samples"


def _reduced(records: Sequence[Mapping[str, Value]], peers: int) -> List[Row]:
    """Each peer's escapereduce over its own events; the search head gets the rows merged newest first."""
    rows: List[Row] = []
    for events in shard(records, peers):
        reducer = Reducer()
        rows += reducer.feed(events) + reducer.finish()
    rows.sort(key=lambda r: float(str(r["_time"])), reverse=True)
    return rows


def _correlate(records: Sequence[Mapping[str, Value]], source: str) -> Dict[str, object]:
    correlator = Correlator(report="all", source=source)
    correlator.feed(records)
    rows = correlator.finish()
    counts = {k: v for k, v in correlator.summary.items() if k in ("escapes", "suspicious", "attempts")}
    return {"rows": rows, "state": correlator.state(), "counts": counts}


def _sysmon_records() -> List[Dict[str, str]]:
    records = []
    for index, line in enumerate((SAMPLES / "sysmon_linux_handwritten.log").read_bytes().split(b"\n")):
        text = line.decode("utf-8", "replace")
        data = sysmon_linux.parse_event(text)
        if data is None:
            continue
        when = sysmon_linux.utc_epoch(data.get("UtcTime", "")) or 0.0
        records.append({"_raw": text, "_time": "%.3f" % when, "host": "labhost", "_cd": "2:%d" % index,
                        "source": "syslog", "sourcetype": "sysmon:linux"})
    records.sort(key=lambda r: float(r["_time"]), reverse=True)
    return records


def _inputs() -> Dict[str, List[Mapping[str, Value]]]:
    public = {path.name: to_records(list(enumerate(public_text(path))))
              for path in sorted((DATA / "public" / "linux_auditd").glob("*.log"))}
    sample = list(enumerate((SAMPLES / "linux_audit_lab-run1.log").read_bytes().split(b"\n")))
    podman = gzip.decompress((DATA / "lab-podman" / "audit.log.gz").read_bytes()).split(b"\n")
    return {"lab-run1": list(lab_records()), "lab-run2": list(lab2_records()), LAB3: list(capture_records(LAB3, LAB3_HOST)),
            "lab-podman": list(to_records(list(enumerate(podman)))), "linux_audit_lab-run1.log": list(to_records(sample)),
            "auditd_ausearch-i_lab-run1.log": list(interpreted_records(SAMPLES / "auditd_ausearch-i_lab-run1.log")),
            "sysmon_linux_handwritten.log": list(_sysmon_records()), **public}


@pytest.mark.parametrize("peers", [1, 3])
@pytest.mark.parametrize("name", sorted(_inputs()))
def test_reduced_rows_give_the_alerts_evidence_and_lineage_of_the_raw_events(name: str, peers: int) -> None:
    # each record on the peer shard() puts it on: the raw correlation sees the same index, splunk_server and _cd
    records = [dict(r, splunk_server=server_name(peer_of(str(r.get("host", "")), float(str(r["_time"])), peers)))
               for r in _inputs()[name]]
    raw = _correlate(records, "raw")
    reduced = _correlate(_reduced(records, peers), "reduced")
    assert reduced == raw
    if name == "lab-run1":
        assert raw["counts"] == {"escapes": 7, "suspicious": 3, "attempts": 6}  # the capture's alerts are all there
    if name == "lab-run2":  # the escape families' calls (issue 20) reach the search head
        assert raw["counts"]["escapes"] >= 6
    if name == LAB3:  # so do the runtime-socket chains (the clients' connects, the new containers' starts)
        started = {c for r in raw["rows"] if r["escape_finding"] == "runtime_socket_escape"
                   for c in r["escape_new_containers"]}
        assert started >= {"lab-e16-child", "lab-e16a-child"}


def test_the_lab_capture_ships_a_fraction_of_its_records() -> None:
    rows = _reduced(list(lab_records()), 3)
    assert len(rows) < 0.15 * len(lab_records())


def _event(serial: int, records: Sequence[str], host: str = "node1") -> List[Dict[str, str]]:
    stamp = "1795923894.%03d" % serial
    return [{"_raw": "type=%s msg=audit(%s:%d): %s" % (r.split(" ", 1)[0], stamp, serial, r.split(" ", 1)[1]),
             "_time": stamp, "host": host, "_cd": "0:%d%02d" % (serial, n), "sourcetype": "linux:audit"}
            for n, r in enumerate(records)]


SYSCALL = ("SYSCALL arch=c000003e syscall={} success={} exit=0 a0=0 a1=0 items=1 ppid=1 pid=42 uid=0 "
           'comm="x" exe="/usr/bin/x" key={}')


def test_events_that_can_never_matter_are_dropped_and_counted() -> None:
    records = (
        _event(1, ["USER_ACCT pid=1298 uid=0 msg='op=PAM:accounting acct=\"root\" res=success'"])
        + _event(2, ["CRED_ACQ pid=1298 uid=0 msg='op=PAM:setcred acct=\"root\" res=success'"])
        + _event(3, ["SERVICE_START pid=1 uid=0 msg='unit=cron comm=\"systemd\" res=success'"])
        + _event(4, ["LOGIN pid=1298 uid=0 old-auid=4294967295 auid=0 res=1"])
        + _event(5, [SYSCALL.format(257, "yes", '"identity"'), 'PATH item=0 name="/etc/passwd" dev=fd:00',
                     'CWD cwd="/"'])                                       # another rule's file watch
        + _event(6, [SYSCALL.format(59, "no", '"exec"'), 'PATH item=0 name="/bin/x" dev=fd:00'])  # a failed exec
    )
    reducer = Reducer()
    assert reducer.feed(list(reversed(records))) + reducer.finish() == []
    assert reducer.summary["dropped_no_syscall"] == 4 and reducer.summary["dropped_syscall"] == 2


def test_what_the_correlation_reads_is_kept_whatever_rule_logged_it() -> None:
    records = (
        _event(1, [SYSCALL.format(165, "yes", '"mounts"'), 'PATH item=0 name="/mnt" dev=00:27'])  # a CIS rule's key
        + _event(2, [SYSCALL.format(59, "yes", '"privileged"'), 'EXECVE argc=2 a0="sudo" a1="-l"'])
        + _event(3, [SYSCALL.format(257, "yes", "(null)"),
                     'PATH item=0 name="/sys/fs/cgroup/rdma/release_agent" dev=00:2b'])
        + _event(4, [SYSCALL.format(308, "no", '"t1611"')])                # a failed escape syscall: an attempt
    )
    reducer = Reducer()
    rows = reducer.feed(list(reversed(records))) + reducer.finish()
    assert sorted(str(r["escape_serial"]) for r in rows) == ["1", "2", "3", "4"]
    sudo = next(r for r in rows if r["escape_serial"] == "2")
    assert sudo["escape_argv"] == '["sudo","-l"]' and sorted(sudo["escape_evidence_cd"]) == ["0:200", "0:201"]


def test_an_event_whose_records_reached_two_peers_is_joined_on_the_search_head() -> None:
    records = [dict(r) for r in lab_records()]
    moved = [r for r in records if "msg=audit(1795923894.294:8311)" in str(r["_raw"])
             and str(r["_raw"]).startswith("type=PATH")]
    assert len(moved) == 2  # the container's block-device mount: its PATH items name /dev/vda
    rows: List[Row] = []
    for part in ([r for r in records if r not in moved], moved):
        reducer = Reducer()
        rows += reducer.feed(part) + reducer.finish()
    rows.sort(key=lambda r: float(str(r["_time"])), reverse=True)
    joined, raw = _correlate(rows, "reduced"), _correlate(records, "raw")
    for result in (joined, raw):  # the parts' records come last in the evidence: the same records, in another order
        for row in result["rows"]:  # type: ignore[attr-defined]
            for field in ("escape_evidence_cd", "escape_evidence"):
                row[field] = sorted(row[field])
    assert joined == raw
