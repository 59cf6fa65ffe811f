"""Each containers detection's command pipes, as content/ declares them, over its own fires / silent samples.

Until the replay (./build.sh replay) is on main this drives the pipes directly through SCP v2: every event of a
sample goes to the first pipe (a superset of what the base search selects, since the commands decide), and each
pipe's output feeds the next. Macros are expanded with the shipped definitions from content/.
"""
import re
import shlex
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from tests.conftest import ROOT
from tests.integration.harness.scp import run_command
from tools import content

DETECTIONS = sorted((ROOT / "content" / "detections").glob("*.yml"))
MINE = [p for p in DETECTIONS if p.stem.startswith(("kube_", "docker_", "container_"))]
MACROS = {m["name"]: m["definition"] for m in content.macros()}


def expand(text: str) -> str:
    return re.sub(r"`([^`]+)`", lambda m: MACROS[m.group(1)], text)


def pipes(detection: Dict[str, Any]) -> List[List[str]]:
    """The replayed pipes as argv lists, quotes removed as splunkd removes them."""
    stages = [s.strip() for s in detection["search"].strip().split("\n|")][1:]
    result = []
    for stage in stages[:detection["replay_pipes"]]:
        words = shlex.split(expand(stage))
        result.append(words)
    return result


def events(sample: Dict[str, str]) -> List[Dict[str, str]]:
    path = (ROOT / sample["path"]).resolve()
    lines = [line.decode("utf-8") for line in path.read_bytes().split(b"\n") if line.strip()]
    return [{"_raw": line, "_cd": "0:{}".format(i), "_time": "1795923800", "host": "lab",
             "source": str(path.name), "sourcetype": sample["sourcetype"]} for i, line in enumerate(lines)][::-1]


def alerts(built_app: Path, detection: Dict[str, Any], sample: Dict[str, str]) -> List[Dict[str, Any]]:
    records: List[Dict[str, Any]] = events(sample)
    for argv in pipes(detection):
        run = run_command(built_app / "bin" / (argv[0] + ".py"), argv[1:], [records])
        assert run.returncode == 0 and not run.errors(), (argv, run.messages, run.stderr[-2000:])
        records = run.records
    return records


def cases(kind: str) -> List[Any]:
    result = []
    for path in MINE:
        detection = yaml.safe_load(path.read_text(encoding="utf-8"))
        for sample in detection["samples"][kind]:
            result.append(pytest.param(detection, sample, id="{}:{}".format(path.stem, Path(sample["path"]).name)))
    return result


def test_my_detections_follow_the_contract() -> None:
    assert len(MINE) == 5
    for path in MINE:
        detection = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert detection["slug"] == path.stem and detection["analytic"] == "container"
        assert len(detection["title"]) <= 57
        search = detection["search"].strip()
        assert search.split("\n")[-1] == "| `escape_{}_filter`".format(detection["slug"])
        base = search.split("\n|")[0]
        # The base search uses only data-scope macros, sourcetype= and plain terms: the decision is the command's.
        assert not re.search(r"\b(?!sourcetype\b)[\w.]+=", expand(base).replace('source="kubernetes"', "")), base
        assert all(p[0].startswith("escape") for p in pipes(detection))
        for kind in ("fires", "silent"):
            assert detection["samples"][kind]
            for sample in detection["samples"][kind]:
                assert (ROOT / sample["path"]).is_file(), sample


@pytest.mark.parametrize("detection, sample", cases("fires"))
def test_fires_on_every_attack_sample(built_app: Path, detection: Dict[str, Any], sample: Dict[str, str]) -> None:
    rows = alerts(built_app, detection, sample)
    assert rows
    for row in rows:
        assert row["escape_severity"] in ("informational", "low", "medium", "high", "critical")
        assert row["escape_summary"] and row["escape_finding"] and row["escape_evidence_cd"]


@pytest.mark.parametrize("detection, sample", cases("silent"))
def test_silent_on_every_benign_sample(built_app: Path, detection: Dict[str, Any], sample: Dict[str, str]) -> None:
    assert alerts(built_app, detection, sample) == []


def test_attack_samples_alert_once_per_attack_event(built_app: Path) -> None:
    detection = yaml.safe_load((ROOT / "content" / "detections" / "docker_container_host_access.yml").read_text())
    creates = {"sourcetype": "docker:daemon", "path": "tests/knowledge/samples/dockerd_debug_attack_creates.log"}
    assert len(alerts(built_app, detection, creates)) == len(events(creates)) // 2
    kube = yaml.safe_load((ROOT / "content" / "detections" / "kube_workload_host_access.yml").read_text())
    panther = {"sourcetype": "kube:apiserver-audit", "path": "tests/knowledge/samples/panther_k8s_cases_fire.jsonl"}
    assert len(alerts(built_app, kube, panther)) == len(events(panther))
