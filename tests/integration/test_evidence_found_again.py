"""Evidence that can be found again (issue 16): every alert row names each event it rests on by index, splunk_server
and _cd (escape_evidence, aligned with escape_evidence_cd; escape_engine.evidence), and the replay finds every one of
them again by that address: with inputs in different indexes, and with events on different search peers."""
import re
from pathlib import Path
from typing import Dict, List, Mapping, Tuple

from tools import content, replay
from tools.inputs import InputSpec, load_inputs
from tools.simulate import Simulation

FIELDS = ("escape_evidence", "escape_evidence_cd")
ADDRESS = re.compile(r"index=(\S+) splunk_server=(\S+) _cd=(\S+)")
SAMPLES = Path(__file__).resolve().parents[1] / "knowledge" / "samples"


def _values(value: object) -> List[str]:
    return [value] if isinstance(value, str) and value else [str(v) for v in value or []]  # type: ignore[attr-defined]


def places(alert: Mapping[str, object]) -> List[Tuple[str, str, str]]:
    """(index, splunk_server, _cd) of each evidence event an alert names; checks the two fields are aligned and that
    the replay found each event again (one _raw per address)."""
    fields: Dict[str, object] = alert["fields"]  # type: ignore[assignment]
    addresses, cds = _values(fields["escape_evidence"]), _values(fields["escape_evidence_cd"])
    found = [ADDRESS.fullmatch(a) for a in addresses]
    assert all(found) and [m.group(3) for m in found if m] == cds, (addresses, cds)
    assert len(alert["evidence"]) == len(addresses), alert  # type: ignore[arg-type]
    return [(m.group(1), m.group(2), m.group(3)) for m in found if m]


def test_every_alert_row_of_every_analytic_names_its_evidence_by_index_peer_and_cd(built_app: Path) -> None:
    groups: Dict[Tuple[object, ...], List[content.Detection]] = {}
    for detection in content.detections():
        groups.setdefault(tuple(tuple(sorted(s.items())) for s in detection.samples["fires"]), []).append(detection)
    seen: Dict[str, int] = {}
    for members in groups.values():
        specs = replay.sample_specs(members[0], "fires")
        for number, spec in enumerate(specs):
            spec.index = "input{}".format(number)
        for alert in replay.replay(specs, app_dir=built_app, only=[d.slug for d in members], fields=FIELDS,
                                   require_time=False):
            found = places(alert)
            assert found and all(server == "peer0" and re.fullmatch(r"input\d+", index) for index, server, _ in found)
            seen[str(alert["analytic"])] = seen.get(str(alert["analytic"]), 0) + 1
    assert set(seen) == set(content.ANALYTICS), seen


def test_an_alert_whose_evidence_is_in_two_indexes_names_both(built_app: Path, tmp_path: Path) -> None:
    """A docker create's two lines (its Calling POST and its form data) read from two inputs in two indexes."""
    lines = (SAMPLES / "dockerd_debug_attack_creates.log").read_bytes().split(b"\n")
    at = next(i for i, line in enumerate(lines) if b"Calling POST" in line and b"/containers/create" in line)
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    first.write_bytes(b"\n".join(lines[:at + 1]) + b"\n")
    second.write_bytes(b"\n".join(lines[at + 1:]))
    # one daemon's log (one source), its events sent to one index before a change and to another after it
    specs = [InputSpec("docker:daemon", path, "/var/log/docker.log", index=index)
             for path, index in ((first, "docker_a"), (second, "docker_b"))]
    alerts = replay.replay(specs, app_dir=built_app, only=["docker_container_host_access"], fields=FIELDS)
    indexes = [{index for index, _, _ in places(a)} for a in alerts]
    assert {"docker_a", "docker_b"} in indexes, indexes


def test_with_three_peers_an_alert_names_the_peer_of_each_event(built_app: Path, tmp_path: Path) -> None:
    # the launches one threshold alert counts are minutes apart: forwarders sent them to different indexers, where
    # escapeinspect (distributed) read them
    detection = next(d for d in content.detections() if d.slug == "container_privileged_launch_threshold")
    events, _ = load_inputs(replay.sample_specs(detection, "fires"), replay.APP_DIR, False)
    engine = Simulation(events, state_dir=tmp_path, fields=FIELDS)
    engine.window = (float("-inf"), float("inf"), float("inf"))
    engine.setup_peers(3)
    alerts = engine.run(detection)
    servers = [{server for _, server, _ in places(a)} for a in alerts]
    assert alerts and all(servers) and max(len(s) for s in servers) > 1, servers
