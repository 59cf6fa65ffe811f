"""labels.tsv of a podman lab capture (tests/lab/podman_lab.sh): one row per step with its label, the container it
runs or acts on (the `--name` of its command, or the container `podman exec` / `podman rm` names) and that
container's full id from the capture's `podman events --format json`.

    .venv/bin/python -m tests.lab.podman_labels CAPTURE_DIR
"""
import json
import re
import sys
from pathlib import Path
from typing import Dict, List

EXPECTED = {"escape": "escape", "suspicious": "suspicious", "benign": "none"}
COLUMNS = ["step", "label", "container", "container_id", "expected_alert", "description"]


def container_ids(capture: Path) -> Dict[str, str]:
    """container name -> its full id, from the first event that names both."""
    ids: Dict[str, str] = {}
    for line in (capture / "podman-events.json").read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event.get("Type") == "container" and event.get("Name") and event.get("ID"):
            ids.setdefault(event["Name"], event["ID"])
    return ids


def step_commands(capture: Path) -> Dict[str, str]:
    commands: Dict[str, str] = {}
    step = ""
    for line in (capture / "steps.log").read_text(encoding="utf-8", errors="replace").splitlines():
        begin = re.match(r"=== \S+ BEGIN (\S+) ", line)
        if begin:
            step = begin.group(1)
        elif line.startswith("+ ") and step and step not in commands:
            commands[step] = line[2:]
    return commands


def labels(capture: Path) -> List[List[str]]:
    ids, commands = container_ids(capture), step_commands(capture)
    rows = []
    for line in (capture / "timeline.tsv").read_text(encoding="utf-8").splitlines():
        _, kind, step, label, description = line.split("\t", 4)
        if kind != "BEGIN":
            continue
        command = commands.get(step, "")
        named = re.search(r" --name (\S+)", command) or re.search(r" (?:exec|rm -f -t \d+) (lab-\S+)", command)
        name = named.group(1) if named else ""
        rows.append([step, label, name, ids.get(name, ""), EXPECTED[label], description])
    return rows


def write(capture: Path) -> Path:
    out = capture / "labels.tsv"
    out.write_text("\n".join("\t".join(row) for row in [COLUMNS] + labels(capture)) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    print(write(Path(sys.argv[1])))
