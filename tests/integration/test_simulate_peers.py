"""Distributed correctness: every detection whose first command is distributed (runs on the indexers) gives the
same alerts with its bundled samples sharded over three search peers (tools/peers.py, as forwarders spread a host's
events every 30 s) as on one peer. The commands run per peer exactly as tools/simulate.py runs them."""
import json
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

from tools import commands, content, replay
from tools.inputs import load_inputs
from tools.simulate import Simulation
from tools.spl import command_name, expand_macros

DISTRIBUTED = {c.name for c in commands.commands() if c.distributed}


def first_command(detection: content.Detection) -> str:
    table = replay.macro_table(content.CONTENT, {})
    _, replayed, _ = replay.replay_plan(detection.search, detection.replay_pipes, table)
    return command_name(expand_macros(replayed[0], table))[0]


CASES = [d for d in content.detections() if first_command(d) in DISTRIBUTED]


def alert_set(detection: content.Detection, peer_count: int, state: Path) -> Set[Tuple[str, ...]]:
    events, _ = load_inputs(replay.sample_specs(detection, "fires"), replay.APP_DIR, False)
    engine = Simulation(events, state_dir=state)
    engine.window = (float("-inf"), float("inf"), float("inf"))
    if peer_count > 1:
        engine.setup_peers(peer_count)
    rows = engine.result_rows(detection)
    return {(str(a["host"]), str(a["time"]), str(a["summary"]), json.dumps(a["evidence"]))
            for a in (engine.alert(detection, r) for r in rows)}


def test_there_are_distributed_detections_to_check() -> None:
    assert DISTRIBUTED and CASES


@pytest.mark.parametrize("detection", CASES, ids=[d.slug for d in CASES])
def test_three_peers_give_the_same_alerts_as_one(built_app: Path, tmp_path: Path, detection: content.Detection) -> None:
    one = alert_set(detection, 1, tmp_path / "one")
    three = alert_set(detection, 3, tmp_path / "three")
    assert one, "the samples must alert, or the comparison proves nothing"
    assert three == one, "only on one peer: {}; only on three: {}".format(sorted(one - three), sorted(three - one))


def test_the_shards_really_differ(built_app: Path, tmp_path: Path) -> None:
    """The check is no check if every sample event lands on one peer."""
    spread: Dict[str, List[int]] = {}
    for detection in CASES:
        events, _ = load_inputs(replay.sample_specs(detection, "fires"), replay.APP_DIR, False)
        engine = Simulation(events, state_dir=tmp_path)
        engine.setup_peers(3)
        spread[detection.slug] = sorted({int(s[-1]) for s in engine.peer_of.values()})
    assert any(len(peers) > 1 for peers in spread.values()), spread
