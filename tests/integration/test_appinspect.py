"""AppInspect on the built tarball: no failure, no future failure, and exactly the warnings the README explains."""
import re
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from tests.conftest import ROOT
from tools.appinspect_summary import findings

APPINSPECT = ROOT / ".venv-appinspect" / "bin" / "splunk-appinspect"
RUNS = {"cloud": ["--included-tags", "cloud"], "precert": []}


@pytest.fixture(scope="module")
def reports(package_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Dict[str, List[str]]]:
    """Both runs at once (about 13 s each): the cloud tag set, and the default precert set of all checks."""
    if not APPINSPECT.is_file():
        pytest.fail("splunk-appinspect is missing: run ./build.sh env")
    out = tmp_path_factory.mktemp("appinspect")
    procs = {}
    for name, tags in RUNS.items():
        cmd = [str(APPINSPECT), "inspect", str(package_tarball), "--mode", "precert", "--skip-trusted-libraries-update",
               "--ci", "--data-format", "json", "--output-file", str(out / (name + ".json"))] + tags
        procs[name] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    result = {}
    for name, proc in procs.items():
        output = proc.communicate(timeout=600)[0].decode("utf-8", "replace")
        # --ci: 0 clean, 103 warnings only; 101 failures, 104 future failures.
        assert proc.returncode in (0, 103), "AppInspect {} exited {}:\n{}".format(name, proc.returncode, output[-3000:])
        result[name] = findings(str(out / (name + ".json")))
    return result


def readme_warnings() -> List[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### AppInspect warnings that remain", 1)[1].split("\n#", 1)[0]
    return sorted(re.findall(r"^\|\s*`(check_[a-z0-9_]+)`\s*\|", section, re.MULTILINE))


@pytest.mark.parametrize("run", sorted(RUNS))
def test_appinspect_has_no_failure_and_no_future_failure(reports: Dict[str, Dict[str, List[str]]], run: str) -> None:
    for level in ("failure", "error", "future_failure", "manual_check"):
        assert not reports[run].get(level), "{} {}: {}".format(run, level, reports[run].get(level))
    assert reports[run].get("success"), "no check passed: the report is not what we think it is"


def test_remaining_warnings_are_exactly_those_the_readme_explains(reports: Dict[str, Dict[str, List[str]]]) -> None:
    seen = sorted(set(reports["precert"].get("warning", [])) | set(reports["cloud"].get("warning", [])))
    assert seen == readme_warnings()
