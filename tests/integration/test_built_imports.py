"""Every module the built add-on ships under lib/ and bin/ imports on the Pythons Splunk runs it with: 3.9 (Splunk
9.3-10.1) and 3.13 (Splunk 10.2+), both from pyenv. A module may fail only because it needs something Splunk itself
provides (splunk.*: a stand-in from tests/integration/harness is on the path for bin/) or an optional dependency the
add-on does not ship (listed below with the reason); a SyntaxError, a TypeError from a 3.10+ construct or a missing
module of our own fails the test."""
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from tests.conftest import ROOT

PYENV = Path(os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))) / "versions"
HARNESS = ROOT / "tests" / "integration" / "harness"
# Top-level modules an import may miss, and why that is expected.
OPTIONAL = {
    "opentelemetry": "solnlib.observability: removed by package/lib/exclude.txt (modular-input metrics only)",
    "grpc": "solnlib.observability's exporter: removed by exclude.txt",
    "OpenSSL": "urllib3.contrib.pyopenssl: optional TLS backend",
    "cryptography": "urllib3.contrib.pyopenssl: optional TLS backend",
    "ntlm": "urllib3.contrib.ntlmpool: optional NTLM support",
    "brotli": "urllib3 optional compression", "brotlicffi": "urllib3 optional compression",
    "google": "urllib3.contrib.appengine: Google App Engine only",
    "_winreg": "Windows only", "winreg": "Windows only",
    "lxml": "defusedxml.lxml: only for callers that bring lxml",
}
# What Splunk's own Python provides: its private splunk package (tests/integration/harness/splunk stands in for
# splunk.admin only) and requests, which it bundles in its site-packages.
SPLUNK_PROVIDED = {"splunk", "requests"}
SPLUNK_ONLY = "This module requires Splunk to be installed."   # solnlib.splunkenv, when splunk.* is missing
# Modules that refuse the platform on purpose, and the message they refuse with.
PLATFORM_ONLY = {"urllib3.contrib.securetransport": "Only macOS is supported",
                 "urllib3.contrib._securetransport": "Only macOS is supported"}

PROBE = r'''
import importlib, json, os, pkgutil, sys, traceback, warnings
import __main__
app, harness = sys.argv[1], sys.argv[2]
__main__.__file__ = os.path.join(app, "bin", "probe.py")   # splunktaucclib reads the app name from it
lib, bin_ = os.path.join(app, "lib"), os.path.join(app, "bin")
sys.path[:0] = [bin_, lib, harness]
names = []
for base in (lib, bin_):
    for info in pkgutil.walk_packages([base], onerror=lambda name: None):
        if not info.name.startswith(("test", "tests")) and ".tests." not in info.name:
            names.append(info.name)
results = {}
warnings.simplefilter("ignore")
for name in sorted(set(names)):
    try:
        importlib.import_module(name)
        results[name] = None
    except ImportError as err:
        results[name] = ["ImportError", getattr(err, "name", None) or "", str(err)]
    except BaseException as err:
        results[name] = [type(err).__name__, "", "".join(traceback.format_exception_only(type(err), err)).strip()]
print(json.dumps(results))
'''


def interpreter(version: str) -> Path:
    found = sorted(PYENV.glob("{}.*/bin/python{}".format(version, version)))
    if not found:
        pytest.skip("Python {} is not installed under {} (pyenv install {})".format(version, PYENV, version))
    return found[-1]


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_every_shipped_module_imports(version: str, built_app: Path, tmp_path: Path) -> None:
    python = interpreter(version)
    app = tmp_path / "splunk" / "etc" / "apps" / built_app.name       # where Splunk runs it from
    shutil.copytree(built_app, app)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1",
           "SPLUNK_HOME": str(tmp_path / "splunk")}
    result = subprocess.run([str(python), "-c", PROBE, str(app), str(HARNESS)], capture_output=True, text=True,
                            env=env, cwd=str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome: Dict[str, List[str]] = json.loads(result.stdout.splitlines()[-1])
    assert len(outcome) > 100, sorted(outcome)      # lib/ (splunklib, solnlib, ...) and bin/ were walked
    assert {"packaging.version", "escapeinspect", "escape_engine.inspect", "TA_escape_to_host_rh_settings"} <= set(outcome)
    bad = {}
    for name, failure in outcome.items():
        if failure is None:
            continue
        kind, missing, text = failure
        if kind == "ImportError" and (missing.split(".")[0] in OPTIONAL or missing.split(".")[0] in SPLUNK_PROVIDED
                                      or text == SPLUNK_ONLY):
            continue
        if any(name.startswith(prefix) and text == message for prefix, message in PLATFORM_ONLY.items()):
            continue
        bad[name] = text
    assert not bad, "Python {}: {}".format(version, json.dumps(bad, indent=1)[:4000])
