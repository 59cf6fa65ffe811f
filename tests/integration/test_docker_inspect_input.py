"""The docker inspect scripted input (package/bin/escape_docker_inspect.sh) run by sh against a stand-in docker CLI,
and its records through the shipped index-time settings, search-time extractions and the replay (_time = the event)."""
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from tests.conftest import DATA, ROOT, tools_env
from tools import conffile, indextime
from tools.searchtime import SearchTimeKnowledge

STANZA = "script://$SPLUNK_HOME/etc/apps/TA_escape_to_host/bin/escape_docker_inspect.sh 60"
SCRIPT = ROOT / "package" / "bin" / "escape_docker_inspect.sh"
SHELL = shutil.which("sh") or "/bin/sh"
# A week-old privileged container restarted now, a fresh one created and started, and a --rm one already gone.
OLD_START = 1796529601123456789
FRESH_CREATE, FRESH_START = 1796529602000000000, 1796529602500000100
GONE_CREATE = 1796529603000000000


def fake_docker(tmp_path: Path) -> Tuple[Dict[str, Dict[str, object]], Path]:
    items = json.loads((DATA / "lab-run1" / "docker-inspect.json").read_text())
    old, fresh = items[0], items[1]
    known = {old["Id"]: old, fresh["Id"]: fresh}
    gone = "f" * 64
    events = ["{} start {}".format(OLD_START, old["Id"]), "{} create {}".format(FRESH_CREATE, fresh["Id"]),
              "{} start {}".format(FRESH_START, fresh["Id"]), "{} create {}".format(GONE_CREATE, gone)]
    (tmp_path / "inspect.json").write_text(json.dumps(known))
    (tmp_path / "events.txt").write_text("\n".join(events) + "\n")
    fake = tmp_path / "docker"
    fake.write_text("#!/usr/bin/env python3\nimport json, sys\nargs = sys.argv[1:]\n"
                    "open({log!r}, 'a').write(' '.join(args) + '\\n')\n"
                    "data = json.load(open({data!r}))\n"
                    "if args[0] == 'events':\n"
                    "    assert args[args.index('--format') + 1] == '{{{{.TimeNano}}}} {{{{.Action}}}} {{{{.Actor.ID}}}}'\n"
                    "    sys.stdout.write(open({events!r}).read())\n"
                    "elif args[0] == 'inspect':\n    cid = args[-1]\n"
                    "    if cid not in data: sys.exit(1)\n    print(json.dumps(data[cid], separators=(',', ':')))\n".format(
                        log=str(tmp_path / "calls.log"), data=str(tmp_path / "inspect.json"),
                        events=str(tmp_path / "events.txt")))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return known, fake


def run_input(tmp_path: Path, *args: str) -> "subprocess.CompletedProcess[str]":
    env = dict(os.environ, PATH="{}:/usr/bin:/bin".format(tmp_path), ESCAPE_DOCKER_INSPECT_STATE=str(tmp_path / "state"),
               ESCAPE_DOCKER_INSPECT_NO_PAUSE="1")
    return subprocess.run([SHELL, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60)


def test_one_record_per_create_or_start_stamped_with_that_event(tmp_path: Path) -> None:
    known, _ = fake_docker(tmp_path)
    result = run_input(tmp_path, "120")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    old, fresh = list(known)
    assert [(r["EscapeEvent"]["action"], r["Id"]) for r in records] == [("start", old), ("create", fresh), ("start", fresh)]
    assert [r["EscapeEvent"]["time"] for r in records] == [
        "2026-12-06T04:00:01.123456789Z", "2026-12-06T04:00:02.000000000Z", "2026-12-06T04:00:02.500000100Z"]
    assert all(r["HostConfig"] == known[r["Id"]]["HostConfig"] for r in records)   # the inspect record is whole
    assert "f" * 64 in result.stderr and "removed before it could be inspected" in result.stderr
    # it resumes after the last event it handled (a nanosecond later), not at "now - 120 s"
    assert (tmp_path / "state" / "since").read_text() == "1796529603.000000001\n"
    run_input(tmp_path, "120")
    calls = (tmp_path / "calls.log").read_text().splitlines()
    events = [c for c in calls if c.startswith("events ")]
    assert "--filter type=container --filter event=create --filter event=start" in events[0]
    assert "--until" not in events[0]                   # it follows the stream instead of polling a window
    assert events[1].startswith("events --since 1796529603.000000001 ")


def test_the_records_get_the_event_time_and_the_escape_fields(tmp_path: Path) -> None:
    known, _ = fake_docker(tmp_path)
    output = run_input(tmp_path).stdout.encode()
    props = conffile.parse(ROOT / "package" / "default" / "props.conf")
    broken = indextime.break_events(output, indextime.index_time_settings(props["docker:inspect"], "docker:inspect"))
    assert broken.untimed == 0
    assert [round(t, 3) for _, t in broken.events] == [1796529601.0, 1796529602.0, 1796529602.0]
    created = [known[json.loads(raw)["Id"]]["Created"] for raw, _ in broken.events]
    assert created[0].startswith("2026-11-29")          # the container is a week older than its record
    knowledge = SearchTimeKnowledge.from_app(ROOT / "package")
    fields = knowledge.fields({"_raw": broken.events[0][0], "sourcetype": "docker:inspect",
                               "source": "escape_docker_inspect", "host": "node7"})
    assert fields["escape_docker_container_id"] == next(iter(known))
    assert fields["escape_docker_privileged"] == "true"
    assert "escape_docker_inspect_container" in knowledge.eventtypes(fields)


def test_the_replay_alerts_on_a_restarted_privileged_container_at_the_restart(tmp_path: Path, built_app: Path) -> None:
    fake_docker(tmp_path)
    records = tmp_path / "records.jsonl"
    records.write_text(run_input(tmp_path).stdout)
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "tools.replay", "--input",
                             "docker:inspect,host=node7={}".format(records), "--app", str(built_app)],
                            capture_output=True, text=True, env=tools_env(), cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    host_access = [a for a in alerts if "Docker Container Created With Host Access" in str(a["detection"])]
    assert host_access and "2026-12-06T04:00:01" in str(host_access[-1]["time"])


def test_bad_arguments_and_a_missing_cli(tmp_path: Path) -> None:
    assert run_input(tmp_path, "1m").returncode == 2
    missing = subprocess.run([SHELL, str(SCRIPT)], capture_output=True, text=True, env={"PATH": "/nonexistent"})
    assert missing.returncode == 1 and "docker CLI not found" in missing.stderr


@pytest.mark.parametrize("line", ["12 start " + "a" * 64, "1796529601123456789 start /etc/passwd",
                                  "x start " + "a" * 64])
def test_unexpected_event_lines_are_reported_not_inspected(tmp_path: Path, line: str) -> None:
    fake_docker(tmp_path)
    (tmp_path / "events.txt").write_text(line + "\n")
    result = run_input(tmp_path)
    assert result.returncode == 0 and result.stdout == "" and "unexpected" in result.stderr
    assert not any(c.startswith("inspect") for c in (tmp_path / "calls.log").read_text().splitlines())


def test_the_scripted_input_ships_disabled_and_runs_continuously(built_app: Path) -> None:
    inputs = conffile.parse_text((built_app / "default" / "inputs.conf").read_text())
    stanza = inputs[STANZA]     # the released stanza name: a local/inputs.conf that enables it keeps working
    assert stanza == {"disabled": "1", "interval": "0", "sourcetype": "docker:inspect",
                      "source": "escape_docker_inspect"}
    script = built_app / "bin" / "escape_docker_inspect.sh"
    assert script.stat().st_mode & stat.S_IXUSR and "python" not in script.read_text().lower()


def _docs() -> List[str]:
    return [(ROOT / "docs" / "sourcetypes.md").read_text(), (ROOT / "package" / "default" / "inputs.conf").read_text()]


def test_the_privileges_are_documented() -> None:
    for text in _docs():
        assert "docker group or root" in text and "root-equivalent" in text
