"""The privileged-launch threshold as its saved search runs (issue 16): a docker container seen by its create call
and by docker inspect is one launch. The create call names only the container; its create event (docker:events)
gives the id that docker inspect carries, so the detection's base search must hand the events to escapeinspect."""
import gzip
import json
from pathlib import Path

from tools import replay
from tools.inputs import InputSpec

DATA = Path(__file__).resolve().parents[1] / "data" / "lab-run1"


def test_a_docker_container_seen_by_its_create_call_and_by_inspect_is_one_launch(built_app: Path,
                                                                                  tmp_path: Path) -> None:
    lines = gzip.decompress((DATA / "dockerd-debug.log.gz").read_bytes()).decode("utf-8").split("\n")
    at = next(i for i, line in enumerate(lines) if line.endswith("create?name=ben14-priv-agent\""))
    form = next(line for line in lines[at + 1:at + 4] if "form data:" in line)
    created = next(line for line in (DATA / "docker-events.jsonl").read_text(encoding="utf-8").split("\n")
                   if '"ben14-priv-agent"' in line and '"Action":"create"' in line)
    item = next(i for i in json.loads((DATA / "docker-inspect.json").read_text(encoding="utf-8"))
                if i["Name"] == "/ben14-priv-agent")
    daemon, events, inspect = tmp_path / "dockerd.log", tmp_path / "events.jsonl", tmp_path / "inspect.json"
    daemon.write_text(lines[at] + "\n" + form + "\n", encoding="utf-8")
    events.write_text(created + "\n", encoding="utf-8")
    inspect.write_text(json.dumps([item]) + "\n", encoding="utf-8")
    specs = [InputSpec("docker:daemon", daemon, "/var/log/docker.log", host="lab"),
             InputSpec("docker:events", events, "docker_events", host="lab"),
             InputSpec("docker:inspect", inspect, "docker_inspect", host="lab")]
    alerts = replay.replay(specs, app_dir=built_app, only=["container_privileged_launch_threshold"],
                           settings=["escape_privileged_threshold=0"], fields=("escape_count",))
    assert [a["fields"]["escape_count"] for a in alerts] == ["1"], alerts  # type: ignore[index]
