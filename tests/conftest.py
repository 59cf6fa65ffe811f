"""Shared paths and fixtures. Every sample, capture and ground truth a test reads lives under tests/ (tests/data/PROVENANCE.md)."""
import json
import os
from pathlib import Path
from typing import Dict

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP_NAME = "TA_escape_to_host"
BUILT_APP = ROOT / "output" / APP_NAME
DATA = ROOT / "tests" / "data"


def tools_env() -> Dict[str, str]:
    """The environment of a subprocess that runs a tool (`python -m tools.<name>`): the import path build.sh exports
    (pytest itself gets it from pyproject.toml's pythonpath)."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "package" / "bin")]))


def app_version() -> str:
    return str(json.loads((ROOT / "globalConfig.json").read_text())["meta"]["version"])


@pytest.fixture(scope="session")
def built_app() -> Path:
    """The ucc-gen build output. ./test.sh builds first; a missing build is an error, not a skip."""
    if not (BUILT_APP / "default" / "app.conf").is_file():
        pytest.fail("output/{} is missing: run ./build.sh (./test.sh does it for you)".format(APP_NAME))
    return BUILT_APP


@pytest.fixture(scope="session")
def package_tarball() -> Path:
    tarball = ROOT / "dist" / "{}-{}.tar.gz".format(APP_NAME, app_version())
    if not tarball.is_file():
        pytest.fail("{} is missing: run ./build.sh".format(tarball.relative_to(ROOT)))
    return tarball
