"""Fixture detections for the setup page's tests (no real detection exists on this branch yet).

fixture_content() copies content/tunables.yml and content/macros/ into a folder and adds detections in the format of
docs/development.md §1 (only the keys the setup page reads, plus a search that names its data scope).
"""
import shutil
from pathlib import Path
from typing import Dict, List

import yaml

from tests.conftest import ROOT

DETECTIONS: List[Dict[str, object]] = [
    {"slug": "linux_fixture_chain", "title": "Fixture Namespace Escape Chain", "analytic": "linux", "type": "chain",
     "schedule": {"cron": "13 * * * *", "earliest": "-75m@m", "latest": "-10m@m"},
     "search": "`escape_auditd` syscall=setns\n| `escape_linux_fixture_chain_filter`"},
    {"slug": "linux_fixture_chain_sysmon", "title": "Fixture Sysmon Escape Chain", "analytic": "linux",
     "type": "chain", "schedule": {"cron": "*/15 * * * *", "earliest": "-30m@m", "latest": "-5m@m"},
     "search": "`escape_sysmon_linux` EventID=1\n| `escape_linux_fixture_chain_sysmon_filter`"},
    {"slug": "kube_fixture_single", "title": "Fixture Privileged Pod", "analytic": "container", "type": "single",
     "schedule": {"cron": "7 * * * *", "earliest": "-70m@m", "latest": "-10m@m"},
     "search": "`escape_kube_audit` verb=create\n| `escape_kube_fixture_single_filter`"},
    {"slug": "esxi_fixture_threshold", "title": "Fixture Module Loads", "analytic": "esxi", "type": "threshold",
     "schedule": {"cron": "21 */4 * * *", "earliest": "-250m@m", "latest": "-10m@m"},
     "search": "`escape_esxi` vmkernel\n| `escape_esxi_fixture_threshold_filter`"},
]


def saved_search(detection: Dict[str, object]) -> str:
    return "Escape to Host - {} - Rule".format(detection["title"])


def fixture_content(folder: Path) -> Path:
    shutil.copy(ROOT / "content" / "tunables.yml", folder / "tunables.yml")
    shutil.copytree(ROOT / "content" / "macros", folder / "macros")
    (folder / "detections").mkdir()
    for detection in DETECTIONS:
        (folder / "detections" / "{}.yml".format(detection["slug"])).write_text(yaml.safe_dump(detection))
    return folder
