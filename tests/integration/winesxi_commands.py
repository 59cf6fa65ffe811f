"""Helpers for the escapewindows / escapeesxi SCP v2 tests: the built app laid out as in Splunk, detection args."""
import re
import shlex
import shutil
from pathlib import Path
from typing import Dict, List

import yaml

from tests.conftest import ROOT
from tools import content

DETECTIONS = ROOT / "content" / "detections"


def app_bin(built_app: Path, tmp_path: Path) -> Path:
    """A copy of the built app's bin/ and lookups/ with lib/ linked, so import_declare_test finds ../lib."""
    app = tmp_path / "TA_escape_to_host"
    shutil.copytree(built_app / "bin", app / "bin")
    shutil.copytree(built_app / "lookups", app / "lookups")
    (app / "lib").symlink_to(built_app / "lib")
    return app / "bin"


def detection(slug: str) -> Dict[str, object]:
    data: Dict[str, object] = yaml.safe_load((DETECTIONS / (slug + ".yml")).read_text(encoding="utf-8"))
    return data


def command_args(slug: str) -> List[str]:
    """The arguments of the detection's escape<verb> pipe with the shipped macro definitions expanded, tokenised and
    quote-stripped as splunkd hands them to a command."""
    definitions = {m["name"]: m["definition"] for m in content.macros()}
    pipes = [p.strip() for p in str(detection(slug)["search"]).split("\n| ")]
    pipe = next(p for p in pipes if re.match(r"\|?\s*escape[a-z]+\s", p))
    expanded = re.sub(r"`([a-z_]+)`", lambda m: definitions[m.group(1)], pipe.lstrip("| "))
    words = shlex.split(expanded)
    return words[1:]


def my_slugs(prefix: str) -> List[str]:
    return sorted(p.stem for p in DETECTIONS.glob(prefix + "*.yml"))
