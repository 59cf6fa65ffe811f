"""Runtime clients inside a container that start a new container through a mounted runtime socket (issue 15: a
renamed client; issue 20: containerd's `ctr` and the CRI's `crictl` on containerd or CRI-O), in the record shapes of
the lab capture (tests/data/lab-run1: the new container's shim on a host device, its first process carrying the
stale `runc init` PROCTITLE and a parent that is the shim, the client's executable on the container's overlay
device). The client is known by what it asked for and what followed, never by its file name: a create request whose
arguments end with the new container's first command, or a start request that names the new container's id."""
from typing import Dict, List

from escape_engine.correlate import run
from tests.unit.test_correlate import _exec, _records

RUNC_INIT = "72756E6300696E6974"  # PROCTITLE "runc\0init"
OVERLAY = "00:27"                 # a container's anonymous (overlay) device
CRIO_ID = "3f2a9c41d7be" + "5" * 52


def _shim(serial: int, when: float, pid: int, container: str) -> List[str]:
    return _exec(serial, when, pid, 1, "containerd-shim", "/usr/bin/containerd-shim-runc-v2", "fe:00",
                 ["/usr/bin/containerd-shim-runc-v2", "-namespace", "default", "-id", container, "-address",
                  "/run/containerd/containerd.sock"])


def _conmon(serial: int, when: float, pid: int, container: str) -> List[str]:
    return _exec(serial, when, pid, 1, "conmon", "/usr/bin/conmon", "fe:00",
                 ["/usr/bin/conmon", "-b", "/run/containers/storage/overlay-containers/%s/userdata" % container,
                  "-c", container, "-r", "/usr/bin/runc"])


# The attacker's container (id abc123): its first process, a shell, on the overlay device.
ATTACKER = _shim(1, 100.0, 50, "abc123") + _exec(2, 101.0, 60, 50, "sh", "/bin/sh", OVERLAY, ["sh"], RUNC_INIT)
CHILD_COMMAND = ["chroot", "/host", "/bin/sh", "-c", "id"]


def _client(serial: int, when: float, exe: str, argv: List[str]) -> List[str]:
    return _exec(serial, when, 70 + serial, 60, exe.rsplit("/", 1)[-1], exe, OVERLAY, argv)


def _new_container(serial: int, when: float, container: str, command: List[str], conmon: bool = False) -> List[str]:
    parent = (_conmon if conmon else _shim)(serial, when, 200 + serial, container)
    return parent + _exec(serial + 1, when + 0.1, 300 + serial, 200 + serial, command[0], "/bin/busybox", "00:32",
                          command, RUNC_INIT)


def _findings(lines: List[str], report: str = "all") -> List[Dict[str, object]]:
    """The attacker's container's rows (the new container's own chroot is a chain of its own)."""
    return [{"finding": r["escape_finding"], "severity": r["escape_severity"], "container": r["escape_container"]}
            for r in run(_records(lines), report=report) if r["escape_container"] == "abc123"]


CTR_RUN = ["ctr", "run", "--privileged", "--mount", "type=bind,src=/,dst=/host,options=rbind:rw",
           "docker.io/library/busybox:latest", "esc"] + CHILD_COMMAND
ESCAPE = [{"finding": "runtime_socket_escape", "severity": "critical", "container": "abc123"}]


def test_ctr_run_from_a_container_that_starts_a_host_root_container_is_an_escape() -> None:
    lines = ATTACKER + _client(10, 110.0, "/usr/bin/ctr", CTR_RUN) + _new_container(20, 111.0, "esc", CHILD_COMMAND)
    assert _findings(lines) == ESCAPE


def test_a_renamed_client_is_known_by_its_request_and_the_container_that_followed() -> None:
    # `cp /usr/bin/ctr /usr/local/bin/runc`: a runtime's name on the container's own device; the same request
    renamed = ["runc"] + CTR_RUN[1:]
    lines = ATTACKER + _client(10, 110.0, "/usr/local/bin/runc", renamed) + \
        _new_container(20, 111.0, "esc", CHILD_COMMAND)
    assert _findings(lines) == ESCAPE
    # without host-access options the request is no trigger until its container starts
    plain = ["x", "run", "docker.io/library/busybox:latest", "esc"] + CHILD_COMMAND
    lines = ATTACKER + _client(10, 110.0, "/tmp/x", plain) + _new_container(20, 111.0, "esc", CHILD_COMMAND)
    assert _findings(lines) == ESCAPE
    assert _findings(ATTACKER + _client(10, 110.0, "/tmp/x", plain)) == []


def test_a_renamed_client_whose_container_never_started_is_an_attempt_by_its_request() -> None:
    renamed = ["runc"] + CTR_RUN[1:]
    assert _findings(ATTACKER + _client(10, 110.0, "/usr/local/bin/runc", renamed), report="attempts") == [
        {"finding": "runtime_socket_attempt", "severity": "medium", "container": "abc123"}]


def test_ctr_create_then_task_start_is_linked_by_the_container_id() -> None:
    create = ["ctr", "c", "create", "--privileged", "--mount", "type=bind,src=/,dst=/host,options=rbind:rw",
              "docker.io/library/busybox:latest", "esc"]
    lines = ATTACKER + _client(10, 110.0, "/usr/bin/ctr", create) + \
        _client(11, 112.0, "/usr/bin/ctr", ["ctr", "t", "start", "esc"]) + \
        _new_container(20, 112.5, "esc", ["sh"])
    assert _findings(lines) == ESCAPE


def test_crictl_start_on_cri_o_is_linked_by_an_id_prefix() -> None:
    # crictl create takes the container's command from a JSON file: only the start names what it starts (a prefix)
    lines = ATTACKER + \
        _client(10, 110.0, "/usr/local/bin/crictl", ["crictl", "create", "8d1e", "container.json", "pod.json"]) + \
        _client(11, 111.0, "/usr/local/bin/crictl", ["crictl", "start", CRIO_ID[:13]]) + \
        _new_container(20, 111.5, CRIO_ID, CHILD_COMMAND, conmon=True)
    assert _findings(lines) == ESCAPE


def test_unrelated_commands_and_containers_are_not_linked() -> None:
    # a build script's `npm run ...` and a new container elsewhere on the host, another id and another command
    lines = ATTACKER + _client(10, 110.0, "/usr/bin/npm", ["npm", "run", "build", "--", "sh"]) + \
        _client(11, 110.5, "/usr/bin/pg_ctl", ["pg_ctl", "start", "-D", "/var/lib/postgresql/data"]) + \
        _new_container(20, 111.0, "other", ["sh"])
    assert _findings(lines) == []
    # a start request naming a shorter prefix than docker and crictl accept names no container
    lines = ATTACKER + _client(11, 111.0, "/tmp/x", ["x", "start", CRIO_ID[:6]]) + \
        _new_container(20, 111.5, CRIO_ID, CHILD_COMMAND, conmon=True)
    assert _findings(lines) == []


def test_a_container_started_after_the_window_is_not_linked() -> None:
    lines = ATTACKER + _client(10, 110.0, "/tmp/x", ["x", "run", "img"] + CHILD_COMMAND) + \
        _new_container(20, 110.0 + 301.0, "esc", CHILD_COMMAND)
    assert _findings(lines) == []


# crictl and CRI-O are not in Debian 12's archive, so no lab capture has them (tests/data/lab-run3/README.md): these
# are crictl's argv shapes (crictl(1): global options before the verb; create <pod-id> <container-config>
# <pod-config>; start <container-id>; run <container-config> <pod-config>).
CRIO_ENDPOINT = ["--runtime-endpoint", "unix:///run/crio/crio.sock"]


def test_crictl_with_an_endpoint_before_its_verb_is_linked_by_the_id_it_starts() -> None:
    lines = ATTACKER + \
        _client(10, 110.0, "/usr/local/bin/crictl", ["crictl"] + CRIO_ENDPOINT + [
            "create", "8d1e", "/tmp/container.json", "/tmp/pod.json"]) + \
        _client(11, 111.0, "/usr/local/bin/crictl", ["crictl", "-r", "unix:///run/crio/crio.sock", "start", CRIO_ID]) + \
        _new_container(20, 111.5, CRIO_ID, CHILD_COMMAND, conmon=True)
    assert _findings(lines) == ESCAPE


def test_crictl_run_names_neither_the_command_nor_the_id_of_what_it_starts() -> None:
    # the container's command and privileges sit in the JSON files and the runtime picks the id: the request links
    # no container, and a named client's request stays the low escape-tool attempt (docs/audit-rules.md, known limit)
    lines = ATTACKER + _client(10, 110.0, "/usr/local/bin/crictl", ["crictl"] + CRIO_ENDPOINT + [
        "run", "/tmp/container.json", "/tmp/pod.json"]) + _new_container(20, 111.0, CRIO_ID, CHILD_COMMAND, conmon=True)
    assert _findings(lines, report="escapes") == []
    assert _findings(lines, report="attempts") == [
        {"finding": "escape_attempt", "severity": "low", "container": "abc123"}]


def test_a_monitoring_container_listing_through_crictl_stays_quiet() -> None:
    for argv in (["crictl"] + CRIO_ENDPOINT + ["ps", "-a"], ["crictl", "pods"], ["crictl", "version"]):
        assert _findings(ATTACKER + _client(10, 110.0, "/usr/local/bin/crictl", argv)) == [], argv
