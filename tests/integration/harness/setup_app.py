"""An installed-looking copy of the built add-on for the settings handler, and a client that sends it requests.

make_app() lays out <tmp>/etc/apps/TA_escape_to_host with the built lib/, default/, metadata/ and appserver/ (symlinks)
and a copy of bin/.
Given a content folder (fixture detections), it regenerates from that content what the build would have made:
the settings manifest (tools/setup_manifest.py) and the handler file (ucc-gen's own generator on a globalConfig whose
tabs tools/setup_page.py rewrote, plus the hand-written tail: tools/setup_page.handler_text).
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

from tests.conftest import APP_NAME, BUILT_APP, ROOT
from tools import setup_manifest, setup_page

from .splunkd import SESSION_KEY

HANDLER = setup_page.HANDLER.name
RUNNER = Path(__file__).with_name("run_settings_handler.py")


def make_app(tmp: Path, content: Optional[Path] = None) -> Path:
    app = tmp / "etc" / "apps" / APP_NAME
    app.mkdir(parents=True)
    for name in ("lib", "default", "metadata", "appserver"):
        os.symlink(BUILT_APP / name, app / name)
    shutil.copytree(BUILT_APP / "bin", app / "bin")
    if content is not None:
        setup_manifest.write_manifest(app, content)
        config = setup_page.expected(json.loads((ROOT / "globalConfig.json").read_text(encoding="utf-8")), content)
        (app / "bin" / HANDLER).write_text(setup_page.handler_text(config, tmp), encoding="utf-8")
    return app


class SettingsClient:
    """Sends list / edit requests of the settings endpoint to the handler, one process per request as splunkd does."""

    def __init__(self, app: Path, splunkd_uri: str) -> None:
        self.script = app / "bin" / HANDLER
        self.env = dict(os.environ, SPLUNKD_URI=splunkd_uri)
        self.env.pop("SPLUNK_HOME", None)

    def request(self, action: str, tab: str, data: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        request = {"action": action, "id": tab, "data": data or {}, "session_key": SESSION_KEY}
        # The runner's folder first (its splunk.admin stand-in), then the handler's bin/ (as splunkd runs it).
        env = dict(self.env, PYTHONPATH=os.pathsep.join([str(RUNNER.parent), str(self.script.parent)]))
        run = subprocess.run([sys.executable, str(RUNNER), str(self.script), json.dumps(request)],
                             capture_output=True, text=True, env=env, timeout=60)
        if run.returncode != 0:
            raise AssertionError("handler crashed:\n" + run.stderr[-3000:])
        result: Dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
        return result

    def list(self, tab: str) -> Dict[str, str]:
        result = self.request("list", tab)
        assert "error" not in result, result["error"]
        return dict(result["entries"][tab])

    def edit(self, tab: str, data: Dict[str, str]) -> Dict[str, Any]:
        return self.request("edit", tab, data)
