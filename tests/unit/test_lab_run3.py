"""lab-run3 (tests/data/lab-run3): runtime sockets beyond docker (issue 20), replayed from the real capture with the
audit input only (no docker or containerd source), as the chain and the attempt detections run it.

E16 and E16a start a new privileged container with the host's / bound at /host through containerd's socket, mounted
into a default container that has containerd's client `ctr` (E16a: copied to /tmp/x, a create then a start by id);
the new container runs host commands. B21 is a monitoring container reading through the same socket (`ctr version`,
`containers ls`, ...), B22 a host admin's `ctr run`. The rest of the run repeats lab-run2's steps, with the opt-in
connect rules loaded (rules.loaded): their labels must hold as they did there."""
import json
from typing import Dict, List

import pytest

from escape_engine import auditfacts
from escape_engine.auditd import parse_line
from escape_engine.reduce import Reducer
from tests.unit.linux_lab import (
    LAB3,
    LAB3_HOST,
    capture_alerts,
    capture_lines,
    capture_records,
    capture_steps,
    capture_times,
    check_step_alerts,
    outside_steps,
    rows_in,
    stamp_serial,
)

STEPS = {step: (begin, end, labels) for begin, end, step, labels in capture_steps(LAB3)}
SOCKET = "/run/containerd/containerd.sock"


@pytest.fixture(scope="module")
def rows() -> List[Dict]:
    return capture_alerts([dict(r) for r in capture_records(LAB3, LAB3_HOST)], capture_times(LAB3))


def _connect_events() -> Dict[str, List[bytes]]:
    """Every event the opt-in connect rules logged (key escape_to_host_sock), by its stamp and serial."""
    keys = {stamp_serial(line) for line in capture_lines(LAB3) if b'key="escape_to_host_sock"' in line}
    events: Dict[str, List[bytes]] = {}
    for line in capture_lines(LAB3):
        key = stamp_serial(line)
        if key in keys:
            events.setdefault(":".join(key), []).append(line)
    return events


@pytest.mark.parametrize("step", [s for s, (_, _, labels) in STEPS.items() if labels["finding"] != "-"])
def test_each_step_alerts_at_its_stated_severity(rows: List[Dict], step: str) -> None:
    check_step_alerts(rows, STEPS, step)


@pytest.mark.parametrize("step", [s for s, (_, _, labels) in STEPS.items() if labels["label"] == "benign"])
def test_benign_twins_stay_quiet(rows: List[Dict], step: str) -> None:
    assert not rows_in(rows, STEPS, step), (step, [r["escape_summary"] for r in rows_in(rows, STEPS, step)])


@pytest.mark.parametrize("step, child", [("E16", "lab-e16-child"), ("E16a", "lab-e16a-child")])
def test_the_socket_chain_names_the_client_container_and_the_container_it_started(rows: List[Dict], step: str,
                                                                                    child: str) -> None:
    found = rows_in(rows, STEPS, step)
    chain = [r for r in found if r["escape_finding"] == "runtime_socket_escape"]
    assert len(chain) == 1, [(r["escape_finding"], r["escape_container"]) for r in found]
    row = chain[0]
    # the client's container: the docker container the step ran, known by its shim's -id (a full id), exactly
    assert len(row["escape_container"]) == 64 and row["escape_container_id"] == row["escape_container"]
    assert row["escape_identity"] == "exact" and row["escape_category"] == "escape"
    assert row["escape_new_containers"] == [child]
    assert child in row["escape_summary"] and row["escape_container"] in row["escape_summary"]
    # the started container's own host execution is a chain of its own, named by containerd's id
    own = [r for r in found if r["escape_container"] == child]
    assert [(r["escape_finding"], r["escape_severity"]) for r in own] == [("chroot_host_exec", "critical")]
    assert "/usr/bin/id" in own[0]["escape_host_binaries"]


def test_the_connect_rules_record_the_socket_a_container_client_reached() -> None:
    """The kernel's record of E16a's renamed client: SYSCALL connect, SOCKADDR, CWD and a PATH item of the socket
    file (mode 014xxxx) named as the client passed it; a refused or unrelated connect is not a runtime socket."""
    begin, end, _ = STEPS["E16a"]
    reached = []
    for key, lines in _connect_events().items():
        facts = auditfacts.facts_of([parse_line(line.decode()) for line in lines])
        if begin <= float(key.split(":")[0]) <= end and facts.comm == "x":
            reached.append(auditfacts.runtime_socket(facts))
    assert reached and set(reached) == {SOCKET}
    others = [auditfacts.runtime_socket(auditfacts.facts_of([parse_line(line.decode()) for line in lines]))
              for lines in _connect_events().values()]
    assert others.count("") > len(others) / 2  # nscd, dbus, the shims' ttrpc sockets, refused connects


def test_escapereduce_keeps_the_connects_to_runtime_sockets_and_drops_the_rest() -> None:
    records = [dict(r) for r in capture_records(LAB3, LAB3_HOST)]
    reducer = Reducer()
    kept = reducer.feed(records) + reducer.finish()
    connects = [r for r in kept if r.get("escape_syscall") == "connect"]
    # the host's docker CLI and dockerd reach runtime sockets too; nscd, the shims' ttrpc sockets, libnetwork's and
    # the refused connects are dropped on the peers
    assert {json.loads(str(r["escape_paths"]))[0][1] for r in connects} == {SOCKET, "/var/run/docker.sock"}
    assert len(connects) < len(_connect_events()) / 2
    assert {r["escape_comm"] for r in connects if SOCKET in str(r["escape_paths"])} == {"ctr", "x", "dockerd"}


def test_without_the_opt_in_connect_rules_the_ctr_steps_still_alert() -> None:
    """What detection loses without the connect rules (docs/audit-rules.md): nothing on these steps, whose requests
    ask for host access and end with the new container's command; the renamed client's connect only adds its start
    request as a further trigger."""
    dropped = {key for key in _connect_events()}
    records = [dict(r) for r in capture_records(LAB3, LAB3_HOST)
               if ":".join(stamp_serial(r["_raw"].encode()) or ("", "")) not in dropped]
    found = capture_alerts(records, capture_times(LAB3))
    for step in ("E16", "E16a"):
        check_step_alerts(found, STEPS, step)
    for step in ("B21", "B22"):
        assert not rows_in(found, STEPS, step)


def test_nothing_outside_the_steps_alerts(rows: List[Dict]) -> None:
    assert not outside_steps(rows, STEPS)
