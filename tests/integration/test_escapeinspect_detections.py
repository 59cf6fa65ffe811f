"""The containers detections' own conventions (the replay of their samples is tests/integration/test_replay.py and
test_escapeinspect_replay.py): base search of terms only, escape commands in the replayed pipes, samples present."""
import re
import shlex
from typing import Any, Dict, List

import yaml

from tests.conftest import ROOT
from tools import content
from tools.model import escape_pipes

DETECTIONS = sorted((ROOT / "content" / "detections").glob("*.yml"))
MINE = [p for p in DETECTIONS if p.stem.startswith(("kube_", "docker_", "container_"))]
MACROS = {m["name"]: m["definition"] for m in content.macros()}


def expand(text: str) -> str:
    return re.sub(r"`([^`]+)`", lambda m: MACROS[m.group(1)], text)


def pipes(detection: Dict[str, Any]) -> List[List[str]]:
    """The replayed pipes as argv lists, quotes removed as splunkd removes them."""
    stages = [s.strip() for s in detection["search"].strip().split("\n|")][1:]
    result = []
    for stage in stages[:escape_pipes(detection["search"])]:
        words = shlex.split(expand(stage))
        result.append(words)
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
