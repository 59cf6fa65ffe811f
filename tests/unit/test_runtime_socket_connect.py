"""A container process's connect() to a runtime's API socket (the kernel's record, issue 20: runtime sockets beyond
docker). The records are shaped like those this machine's kernel (6.18) wrote for
`-a always,exit -F arch=b64 -S connect -F saddr_fam=1`: SYSCALL syscall=42, a SOCKADDR record and a PATH item of the
socket file (mode 0140755), its name as the caller passed it (relative to the CWD record when relative).

A command shaped like a plain container request whose process reached a runtime socket is a runtime client by that
kernel fact, whatever its file name and however short the command its container runs."""
from typing import List

from escape_engine import auditfacts
from escape_engine.auditd import parse_line
from tests.unit.test_correlate import _audit_event, _exec
from tests.unit.test_runtime_clients import ATTACKER, ESCAPE, _findings, _new_container

OVERLAY = "00:27"
CONTAINERD_SOCK = "/run/containerd/containerd.sock"


def _connect(serial: int, when: float, pid: int, comm: str, exe: str, name: str, cwd: str = "/",
             success: str = "yes", mode: str = "0140755") -> List[str]:
    saddr = "0100" + name.encode().hex().upper() + "00"
    return _audit_event(serial, when, "42", pid, 60, comm, exe, [
        "type=SOCKADDR %%(m)s saddr=%s" % saddr,
        'type=CWD %%(m)s cwd="%s"' % cwd,
        'type=PATH %%(m)s item=0 name="%s" inode=2162782 dev=00:19 mode=%s ouid=0 ogid=0 rdev=00:00 '
        'nametype=NORMAL' % (name, mode)], success=success)


def _client(serial: int, when: float, argv: List[str]) -> List[str]:
    return _exec(serial, when, 70 + serial, 60, argv[0], "/tmp/" + argv[0], OVERLAY, argv)


# `cp /usr/bin/ctr /tmp/x; /tmp/x run docker.io/library/busybox:latest esc sh`: no host-access option in the request
# and a one-word command in the new container (the privileges come from a spec file or a snapshot label).
PLAIN = ["x", "run", "docker.io/library/busybox:latest", "esc", "sh"]


def test_a_short_plain_request_that_reached_containerd_and_started_a_container_is_an_escape() -> None:
    base = ATTACKER + _client(10, 110.0, PLAIN)
    started = _new_container(20, 111.0, "esc", ["sh"])
    # without the kernel's connect record: a one-word command links no client (too many containers run `sh`)
    assert _findings(base + started) == []
    connect = _connect(11, 110.2, 80, "x", "/tmp/x", CONTAINERD_SOCK)
    assert _findings(base + connect + started) == ESCAPE


def test_a_relative_connect_through_a_socket_mounted_elsewhere_is_read_against_the_cwd() -> None:
    base = ATTACKER + _client(10, 110.0, PLAIN)
    connect = _connect(11, 110.2, 80, "x", "/tmp/x", "containerd.sock", cwd="/var/run/containerd")
    assert _findings(base + connect + _new_container(20, 111.0, "esc", ["sh"])) == ESCAPE


def test_the_connect_makes_the_request_a_trigger_before_any_container_starts() -> None:
    connect = _connect(11, 110.2, 80, "x", "/tmp/x", CONTAINERD_SOCK)
    assert _findings(ATTACKER + _client(10, 110.0, PLAIN) + connect, report="attempts") == [
        {"finding": "runtime_socket_attempt", "severity": "medium", "container": "abc123"}]


def test_benign_twins_stay_quiet() -> None:
    # a monitoring container reading through the socket (lab-run3 B21): connects, but no container request; a
    # runtime client that only reads (version, ls, ps, get ...) is no escape tool either
    for argv in (["x", "containers", "ls"], ["ctr", "containers", "ls"], ["ctr", "version"],
                 ["ctr", "-n", "k8s.io", "tasks", "ls"], ["crictl", "--runtime-endpoint",
                                                            "unix:///run/crio/crio.sock", "ps", "-a"],
                 ["docker", "ps", "--format", "{{.ID}}"], ["kubectl", "get", "pods", "-A"]):
        listing = ATTACKER + _client(10, 110.0, argv)
        connect = _connect(11, 110.2, 80, argv[0], "/tmp/" + argv[0], CONTAINERD_SOCK)
        assert _findings(listing + connect) == [], argv
    # a named client asking for something else than a read stays the low escape-tool attempt
    assert _findings(ATTACKER + _client(10, 110.0, ["ctr", "images", "import", "/tmp/i.tar"])) == [
        {"finding": "escape_attempt", "severity": "low", "container": "abc123"}]
    # a refused connect, another socket, a regular file of a runtime socket's name
    for connect in (_connect(11, 110.2, 80, "x", "/tmp/x", CONTAINERD_SOCK, success="no"),
                    _connect(11, 110.2, 80, "x", "/tmp/x", "/run/app/app.sock"),
                    _connect(11, 110.2, 80, "x", "/tmp/x", CONTAINERD_SOCK, mode="0100644")):
        assert _findings(ATTACKER + _client(10, 110.0, PLAIN) + connect + _new_container(
            20, 111.0, "esc", ["sh"])) == []
    # a host admin's ctr: no container process
    host = _audit_event(11, 110.2, "42", 900, 1, "ctr", "/usr/bin/ctr", [
        'type=PATH %%(m)s item=0 name="%s" inode=2 dev=00:19 mode=0140660 nametype=NORMAL' % CONTAINERD_SOCK])
    assert _findings(ATTACKER + host) == []


def test_only_a_successful_connect_to_a_runtime_socket_matters() -> None:
    def facts(lines: List[str]) -> auditfacts.AuditFacts:
        return auditfacts.facts_of([parse_line(line) for line in lines])
    assert auditfacts.runtime_socket(facts(_connect(1, 1.0, 80, "x", "/tmp/x", CONTAINERD_SOCK))) == CONTAINERD_SOCK
    assert auditfacts.audit_matters(facts(_connect(1, 1.0, 80, "x", "/tmp/x", "/run/crio/crio.sock")))
    assert not auditfacts.audit_matters(facts(_connect(1, 1.0, 80, "x", "/tmp/x", "/dev/log")))
    assert not auditfacts.audit_matters(facts(_connect(1, 1.0, 80, "x", "/tmp/x", CONTAINERD_SOCK, success="no")))


def test_a_renamed_crictl_run_that_reached_cri_o_is_a_medium_attempt() -> None:
    # `crictl run` takes the command and privileges from JSON files (docs/audit-rules.md): no container is linked,
    # but the kernel's connect makes the renamed request a trigger, an attempt by what it asked for
    run = ["x", "--runtime-endpoint", "unix:///run/crio/crio.sock", "run", "/tmp/container.json", "/tmp/pod.json"]
    base = ATTACKER + _client(10, 110.0, run)
    assert _findings(base, report="attempts") == []
    connect = _connect(11, 110.2, 80, "x", "/tmp/x", "/run/crio/crio.sock")
    assert _findings(base + connect, report="attempts") == [
        {"finding": "runtime_socket_attempt", "severity": "medium", "container": "abc123"}]
