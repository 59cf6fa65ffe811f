"""Issue 18 through the replay (what ./build.sh replay runs): the Container Registry maintenance search reads the
replay's docker (events, dockerd create calls) and podman (events) inputs before the Linux correlation, so every
Linux chain and attempt of the two lab captures names its container by the --name given to docker run / podman run
and by its full id, and the docker create alert and the chain alert of one lab container share escape_incident."""
import re
from pathlib import Path
from typing import Dict, List

import pytest

from tests.conftest import DATA
from tools import replay
from tools.inputs import InputSpec

CHAIN = "linux_container_escape_chain"
ATTEMPT = "linux_container_escape_attempt"
CREATE = "docker_container_host_access"
FIELDS = ["escape_container_id", "escape_container_name", "escape_image", "escape_incident", "escape_host_access"]
RUN1 = DATA / "lab-run1"
PODMAN = DATA / "lab-podman"
NAMED = re.compile(r"--name ([a-z0-9-]+)")


def _fields(alert: Dict) -> Dict[str, str]:
    return {k: str(v) for k, v in dict(alert["fields"]).items()}


def _named_in(*logs: Path) -> set:
    return {name for log in logs for name in NAMED.findall(log.read_text(encoding="utf-8"))}


@pytest.fixture(scope="module")
def run1(built_app: Path, tmp_path_factory: pytest.TempPathFactory) -> List[Dict]:
    state = tmp_path_factory.mktemp("run1-state")
    return replay.replay([InputSpec("linux:audit", RUN1 / "audit-session1.log.gz"),
                          InputSpec("docker:events", RUN1 / "docker-events.jsonl"),
                          InputSpec("docker:daemon", RUN1 / "dockerd-debug.log.gz")],
                         app_dir=built_app, state_dir=state, only=[CHAIN, ATTEMPT, CREATE], fields=FIELDS)


@pytest.fixture(scope="module")
def podman(built_app: Path, tmp_path_factory: pytest.TempPathFactory) -> List[Dict]:
    return replay.replay([InputSpec("linux:audit", PODMAN / "audit.log.gz"),
                          InputSpec("podman:events", PODMAN / "podman-events.json")],
                         app_dir=built_app, only=[CHAIN, ATTEMPT], fields=FIELDS)


def _linux(alerts: List[Dict]) -> List[Dict]:
    return [a for a in alerts if a["analytic"] == "linux"]


def test_lab_run1_chains_are_named_by_the_docker_run_name_and_full_id(run1: List[Dict]) -> None:
    linux = _linux(run1)
    assert len(linux) >= 10
    names = _named_in(RUN1 / "scenarios.log", RUN1 / "scenarios2.log", RUN1 / "scenarios3.log")
    for alert in linux:
        fields = _fields(alert)
        assert re.fullmatch(r"[0-9a-f]{64}", fields["escape_container_id"]), alert["summary"]
        assert fields["escape_container_name"] in names, alert["summary"]
        assert "container {} (id {}, image ".format(fields["escape_container_name"], fields["escape_container_id"]) \
            in str(alert["summary"])
        assert fields["escape_incident"] == "container:replay/" + fields["escape_container_id"]


def test_lab_run1_create_and_chain_alerts_of_one_container_share_the_incident(run1: List[Dict]) -> None:
    creates = {_fields(a)["escape_incident"]: a for a in run1 if a["analytic"] == "container"}
    chains = {_fields(a)["escape_container_name"]: a for a in _linux(run1)}
    nsenter = chains["esc01-nsenter-r3"]
    assert _fields(nsenter)["escape_incident"] in creates
    assert "Host access: privileged + host PID from the create at 2026-11-29T03:45:4" in str(nsenter["summary"])
    assert _fields(nsenter)["escape_host_access"] == "privileged + host PID"
    # every chain of a container whose create asked for host access shares its incident with that create's alert;
    # the default containers (esc06a, esc07a: seccomp refused their calls) had no create alert to share it with
    privileged = {name for name, alert in chains.items() if _fields(alert)["escape_host_access"]}
    shared = {name for name, alert in chains.items() if _fields(alert)["escape_incident"] in creates}
    assert shared == privileged and len(shared) >= 12
    assert set(chains) - shared == {"esc06a-unshare", "esc07a-keyctl"}


def test_lab_podman_chains_are_named_by_the_podman_run_name_and_full_id(podman: List[Dict]) -> None:
    labels = [line.split("\t") for line in (PODMAN / "labels.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    expected = {cid: name for _, label, name, cid, alert, _ in labels if alert != "none"}
    names = _named_in(PODMAN / "steps.log")
    found = {}
    for alert in _linux(podman):
        fields = _fields(alert)
        found[fields["escape_container_id"]] = fields["escape_container_name"]
        assert fields["escape_container_name"] in names
        assert "container {} (id {}, image localhost/lab/busybox:latest)".format(
            fields["escape_container_name"], fields["escape_container_id"]) in str(alert["summary"])
    assert found == expected
