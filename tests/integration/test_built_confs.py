"""Every conf file in the built add-on parses strictly; runtimes, permissions and names are what Splunk needs."""
import re
from pathlib import Path
from typing import Dict, List

import pytest

from tests.conftest import BUILT_APP
from tools import conffile

CONF_FILES = sorted(BUILT_APP.glob("default/*.conf")) + sorted(BUILT_APP.glob("metadata/*.meta"))


@pytest.mark.parametrize("path", CONF_FILES, ids=lambda p: p.name)
def test_conf_parses_without_duplicate_stanza_or_key(path: Path, built_app: Path) -> None:
    conffile.parse(path)


def test_the_build_has_the_conf_files_we_expect(built_app: Path) -> None:
    names = {p.name for p in CONF_FILES}
    assert {"app.conf", "macros.conf", "commands.conf", "searchbnf.conf", "restmap.conf", "web.conf",
            "ta_escape_to_host_settings.conf", "default.meta"} <= names


def _stanzas(name: str) -> Dict[str, Dict[str, str]]:
    return conffile.parse(BUILT_APP / "default" / name)


def test_every_python_stanza_requires_3_9_and_3_13(built_app: Path) -> None:
    checked: List[str] = []
    for conf in ("commands.conf", "restmap.conf"):
        for stanza, keys in _stanzas(conf).items():
            if conf == "restmap.conf" and keys.get("handlertype") != "python":
                continue
            if stanza == "default":
                continue
            assert keys.get("python.required") == "3.9, 3.13", "{} [{}]".format(conf, stanza)
            checked.append(stanza)
    assert "admin_external:TA_escape_to_host_settings" in checked


def test_commands_conf_declares_scp_v2_for_existing_scripts(built_app: Path) -> None:
    for stanza, keys in _stanzas("commands.conf").items():
        if stanza == "default":
            continue
        assert re.fullmatch(r"escape[a-z]+", stanza), stanza
        assert keys["filename"] == stanza + ".py"
        assert (BUILT_APP / "bin" / keys["filename"]).is_file()
        assert keys["chunked"] == "true" and keys["python.version"] == "python3"


def test_only_admins_write_and_views_are_not_exported(built_app: Path) -> None:
    meta = conffile.parse(BUILT_APP / "metadata" / "default.meta")
    assert re.search(r"write\s*:\s*\[\s*admin\s*,\s*sc_admin\s*\]", meta[""]["access"])
    assert meta[""]["export"] == "none"
    for stanza in ("views", "nav", "savedsearches"):
        assert meta[stanza]["export"] == "none"
    for stanza in ("macros", "eventtypes", "tags", "props", "transforms", "lookups", "commands"):
        assert meta[stanza]["export"] == "system"
    for stanza, keys in meta.items():
        if "access" in keys and "write" in keys["access"]:
            # admin and sc_admin, plus Enterprise Security's ess_admin where it may (tests/integration/test_state_permissions.py)
            assert re.search(r"write\s*:\s*\[\s*admin\s*,\s*sc_admin\s*(,\s*ess_admin\s*)?\]", keys["access"]), stanza


def test_exported_knowledge_objects_are_prefixed(built_app: Path) -> None:
    for conf in ("macros.conf", "eventtypes.conf", "transforms.conf", "commands.conf"):
        path = BUILT_APP / "default" / conf
        if path.is_file():
            for stanza in conffile.parse(path):
                if stanza != "default":
                    assert stanza.startswith("escape"), "{} [{}]".format(conf, stanza)


def test_macros_conf_is_the_rendered_content(built_app: Path) -> None:
    from tools import content
    assert (BUILT_APP / "default" / "macros.conf").read_text(encoding="utf-8") == content.render_macros_conf()


def test_app_conf_identity(built_app: Path) -> None:
    app = _stanzas("app.conf")
    assert app["package"]["id"] == "TA_escape_to_host"
    assert app["ui"]["label"] == "Escape to Host Detection Add-on for Splunk"
