"""Fixture content and a fixture app for the replay, lint and renderer tests.

No real detection has to exist for these tests: the fixture content is the real content/ (tunables and macros)
plus detections written here, and the fixture app is a copy of the built app's bin/ and default/ with the test-only
commands added (tests/integration/harness/commands/), laid out as in Splunk so import_declare_test finds ../lib.
"""
import copy
import shutil
import uuid
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

from tests.conftest import ROOT

COMMANDS = ROOT / "tests" / "integration" / "harness" / "commands"
TEST_COMMANDS = ("escapepassthrough", "escapereplayprobe", "escapefieldsprobe")

# A detection in the documented format (docs/development.md §1); tests change copies of it.
DETECTION: Dict[str, Any] = {
    "slug": "linux_fixture_nsenter",
    "id": "00000000-0000-4000-8000-000000000001",
    "version": 1,
    "date": "2026-12-06",
    "title": "Fixture Nsenter Seen",
    "analytic": "linux",
    "status": "experimental",
    "type": "single",
    "data_source": ["Linux Auditd Syscall"],
    "search": "`escape_auditd` nsenter\n| escapereplayprobe severity=critical\n| `escape_linux_fixture_nsenter_filter`\n",
    "schedule": {"cron": "7 * * * *", "earliest": "-70m@m", "latest": "-10m@m"},
    "severity": "high",
    "suppress": {"fields": ["host"], "period": "24h"},
    "description": "A fixture: every audit record that mentions nsenter.",
    "how_to_tune": "Override escape_linux_fixture_nsenter_filter.",
    "known_false_positives": "Admins running nsenter.",
    "mitre_attack": ["T1611"],
    "references": ["https://attack.mitre.org/techniques/T1611/"],
    "samples": {
        "fires": [{"sourcetype": "linux:audit", "path": "tests/data/lab-run1/audit-session1.log.gz"}],
        "silent": [{"sourcetype": "linux:audit", "path": "tests/data/public/linux_auditd/go-libaudit_audit-rhel7.log"}],
    },
}

# Our own index-time settings for the owned sourcetypes, written for these tests from the formats in docs/sourcetypes.md.
PROPS = """
[docker:daemon]
SHOULD_LINEMERGE = false
LINE_BREAKER = ([\\r\\n]+)(?=time=")
TIME_PREFIX = ^time="
TIME_FORMAT = %Y-%m-%dT%H:%M:%S.%9N%Z
MAX_TIMESTAMP_LOOKAHEAD = 40
TRUNCATE = 100000
EXTRACT-escape_fixture = level=(?<escape_level>\\w+)

[docker:events]
SHOULD_LINEMERGE = false
TIME_PREFIX = "timeNano":
TIME_FORMAT = %s%9N
MAX_TIMESTAMP_LOOKAHEAD = 25
KV_MODE = json
"""


def detection(**changes: Any) -> Dict[str, Any]:
    """A copy of DETECTION with `changes`; another slug gets its own stable id (ids are unique across content/)."""
    data = copy.deepcopy(DETECTION)
    if "slug" in changes and "id" not in changes:
        data["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, "fixture:" + str(changes["slug"])))
    data.update(changes)
    return data


def make_content(folder: Path, *detections: Dict[str, Any]) -> Path:
    """content/ with the real tunables and macros plus the given detections."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "content" / "tunables.yml", folder / "tunables.yml")
    shutil.copytree(ROOT / "content" / "macros", folder / "macros")
    (folder / "detections").mkdir()
    for data in detections:
        (folder / "detections" / "{}.yml".format(data["slug"])).write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def make_app(built_app: Path, folder: Path, props: Optional[str] = None) -> Path:
    """A copy of the built app's bin/, default/ and lookups/ plus the test-only commands; lib/ is linked.
    `props` replaces default/props.conf (None keeps the add-on's own)."""
    app = folder / "TA_escape_to_host"
    shutil.copytree(built_app / "bin", app / "bin")
    shutil.copytree(built_app / "default", app / "default")
    (app / "lib").symlink_to(built_app / "lib")
    if (built_app / "lookups").is_dir():
        shutil.copytree(built_app / "lookups", app / "lookups")
    with (app / "default" / "commands.conf").open("a") as conf:
        for name in TEST_COMMANDS:
            shutil.copy(COMMANDS / (name + ".py"), app / "bin" / (name + ".py"))
            conf.write("\n[{0}]\nfilename = {0}.py\nchunked = true\npython.version = python3\n"
                       "python.required = 3.9, 3.13\n".format(name))
    if props is not None:
        (app / "default" / "props.conf").write_text(props)
    return app


def make_bare_app(folder: Path, commands: str = "", transforms: str = "", eventtypes: str = "",
                  lookups: Optional[Dict[str, str]] = None) -> Path:
    """An app folder with only the confs the lint reads (no build needed: unit tests)."""
    app = folder / "TA_escape_to_host"
    (app / "default").mkdir(parents=True)
    (app / "default" / "commands.conf").write_text(
        commands or "[escapereplayprobe]\nfilename = escapereplayprobe.py\n[escapepassthrough]\nfilename = escapepassthrough.py\n")
    (app / "default" / "transforms.conf").write_text(transforms)
    (app / "default" / "eventtypes.conf").write_text(eventtypes)
    for name, text in (lookups or {}).items():
        (app / "lookups").mkdir(exist_ok=True)
        (app / "lookups" / name).write_text(text)
    return app
