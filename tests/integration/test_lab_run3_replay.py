"""lab-run3's runtime-socket steps (E16, E16a, B21, B22) through tools/replay.py, what ./build.sh replay runs: the
audit input alone and the real commands over SCP v2 (the correlation search's escapereduce | escapecorrelate
input=reduced findings=save, then each Linux detection's escapefindings). tests/unit/test_lab_run3.py replays the
whole capture through the engine."""
from pathlib import Path
from typing import Dict, List

import pytest

from tests.conftest import DATA
from tests.unit.linux_lab import LAB3, capture_lines, capture_steps, stamp_serial
from tools import replay
from tools.inputs import InputSpec

CHAIN = "linux_container_escape_chain"
ATTEMPT = "linux_container_escape_attempt"
STEPS = {step: (begin, end) for begin, end, step, _ in capture_steps(LAB3)}
FIELDS = ("escape_finding", "escape_container", "escape_new_containers")


@pytest.fixture(scope="module")
def alerts(built_app: Path, tmp_path_factory: pytest.TempPathFactory) -> List[Dict]:
    low, high = STEPS["E16"][0] - 1.0, STEPS["B22"][1] + 1.0
    kept = [line for line in capture_lines(LAB3)
            if line and stamp_serial(line) and low <= float(stamp_serial(line)[0]) <= high]
    path = tmp_path_factory.mktemp("lab3") / "runtime-sockets.log"
    path.write_bytes(b"\n".join(kept) + b"\n")
    assert (DATA / LAB3 / "audit.log.gz").is_file()
    return replay.replay([InputSpec("linux:audit", path)], app_dir=built_app, only=[CHAIN, ATTEMPT], fields=FIELDS)


def _in(alerts: List[Dict], step: str) -> List[Dict]:
    begin, end = STEPS[step]
    return [a for a in alerts if any(key and begin <= float(key[0]) <= end
                                     for key in (stamp_serial(str(raw).encode()) for raw in a["evidence"]))]


@pytest.mark.parametrize("step, child", [("E16", "lab-e16-child"), ("E16a", "lab-e16a-child")])
def test_the_ctr_escape_alerts_critical_naming_both_containers(alerts: List[Dict], step: str, child: str) -> None:
    found = _in(alerts, step)
    chain = [a for a in found if a["fields"]["escape_finding"] == "runtime_socket_escape"]
    assert len(chain) == 1, [(a["detection"], a["fields"]) for a in found]
    alert = chain[0]
    assert alert["detection"].endswith("Container Escape Chain on Linux Host - Rule")
    assert alert["severity"] == "critical"
    assert len(str(alert["fields"]["escape_container"])) == 64  # the client's docker container, by its full id
    assert alert["fields"]["escape_new_containers"] in ([child], child)  # a one-value multivalue field
    assert child in str(alert["summary"]) and str(alert["fields"]["escape_container"]) in str(alert["summary"])
    assert not [a for a in found if a["detection"].endswith("Blocked Container Escape Attempt on Linux Host - Rule")]


@pytest.mark.parametrize("step", ["B21", "B22"])
def test_the_benign_twins_stay_quiet(alerts: List[Dict], step: str) -> None:
    assert not _in(alerts, step), [a["summary"] for a in _in(alerts, step)]
