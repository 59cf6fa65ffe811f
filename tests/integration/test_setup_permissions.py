"""The packaged add-on lets only admin-capable roles write the setup page, and ships our handler and manifest."""
import json
import tarfile
from pathlib import Path
from typing import Dict

import pytest

from tests.conftest import APP_NAME, ROOT
from tools import conffile, setup_manifest


@pytest.fixture(scope="module")
def packaged(package_tarball: Path) -> Dict[str, str]:
    """Text of the files the setup page depends on, read from dist/<app>-<version>.tar.gz."""
    wanted = ["default/restmap.conf", "metadata/default.meta", "bin/TA_escape_to_host_rh_settings.py",
              "bin/escape_settings_handler.py", "bin/escape_setup_manifest.json"]
    with tarfile.open(package_tarball) as tar:
        names = set(tar.getnames())
        assert "{}/bin/custom_hook_mixin.py".format(APP_NAME) not in names, "one way to run code on save, not two"
        files = {}
        for name in wanted:
            member = tar.extractfile("{}/{}".format(APP_NAME, name))
            assert member is not None, name
            files[name] = member.read().decode("utf-8")
    return files


def test_only_admin_all_objects_may_post_to_the_settings_endpoint(packaged: Dict[str, str]) -> None:
    restmap = conffile.parse_text(packaged["default/restmap.conf"])
    admin = restmap["admin:TA_escape_to_host_configuration"]
    assert admin["members"].split(",") == ["TA_escape_to_host_settings"]
    for method in ("post", "put", "delete"):
        assert admin["capability." + method] == "admin_all_objects", method
    handler = restmap["admin_external:TA_escape_to_host_settings"]
    assert handler["handlerfile"] == "TA_escape_to_host_rh_settings.py"
    assert handler["handleractions"] == "edit, list"


def test_metadata_lets_only_admins_write(packaged: Dict[str, str]) -> None:
    meta = conffile.parse_text(packaged["metadata/default.meta"])
    assert meta[""]["access"].replace(" ", "") == "read:[*],write:[admin,sc_admin]"
    for stanza, keys in meta.items():
        if "write" in keys.get("access", ""):
            assert keys["access"].replace(" ", "").endswith(("write:[admin,sc_admin]", "write:[admin,sc_admin,ess_admin]")), stanza


def test_the_package_ships_our_handler_and_the_manifest_of_its_content(packaged: Dict[str, str]) -> None:
    assert "handler=EscapeSettingsHandler" in packaged["bin/TA_escape_to_host_rh_settings.py"]
    assert "class EscapeSettingsHandler(AdminExternalHandler)" in packaged["bin/escape_settings_handler.py"]
    assert json.loads(packaged["bin/escape_setup_manifest.json"]) == setup_manifest.build_manifest()


def test_every_dashboard_has_its_permissions_readable_by_all_written_by_admins(packaged: Dict[str, str]) -> None:
    meta = conffile.parse_text(packaged["metadata/default.meta"])
    views = sorted(p.stem for p in (ROOT / "package" / "default" / "data" / "ui" / "views").glob("*.xml"))
    assert views and all("views/" + v in meta for v in views), sorted(meta)
    for view in views:
        keys = meta["views/" + view]
        assert keys["access"].replace(" ", "") == "read:[*],write:[admin,sc_admin]", view
        assert keys["export"] == "none", view
