"""Who reads and writes the KV store state, who enables the detections: metadata/default.meta and commands.conf of the
BUILT app (README, "Permissions").

The lineage holds every process of every Linux host with its arguments, the baseline the ESXi hosts' module history:
only the admin roles read or write them, through the collection or its lookup, and neither is exported, so
`| inputlookup escape_linux_lineage` cannot bypass index permissions. Enterprise Security admins (ess_admin) enable
and disable the detections; the setup page stays admin_all_objects.
"""
import re
from pathlib import Path
from typing import Dict, List, Set

import pytest

from escape_io import container_registry, esxi_baseline, linux_findings, linux_lineage
from tests.conftest import BUILT_APP
from tools import conffile

# Splunk's admin roles and Enterprise Security's (help.splunk.com, "Roles required for the UEBA Content App for Cloud":
# admin, sc_admin and ess_admin have full access; ess_analyst and ess_user only view and run searches).
ADMIN_ROLES = {"admin", "sc_admin", "ess_admin"}
SPLUNK_ADMIN_ROLES = {"admin", "sc_admin"}
STATE_COLLECTIONS = [linux_lineage.COLLECTION, esxi_baseline.COLLECTION, linux_findings.COLLECTION,
                     container_registry.COLLECTION]


def _access(value: str) -> Dict[str, Set[str]]:
    """`read : [ a, b ], write : [ c ]` -> {"read": {"a", "b"}, "write": {"c"}}."""
    found = {kind: {r.strip() for r in roles.split(",") if r.strip()}
             for kind, roles in re.findall(r"(read|write)\s*:\s*\[([^\]]*)\]", value)}
    assert found, "unreadable access line {!r}".format(value)
    return found


@pytest.fixture(scope="module")
def meta(built_app: Path) -> Dict[str, Dict[str, str]]:
    return conffile.parse(built_app / "metadata" / "default.meta")


def _effective(meta: Dict[str, Dict[str, str]], kind: str, name: str, key: str) -> str:
    """The value Splunk applies to one object: its own stanza, else its category's, else the app's (default.meta.spec:
    object, then category, then [])."""
    for stanza in ("{}/{}".format(kind, name), kind, ""):
        if key in meta.get(stanza, {}):
            return meta[stanza][key]
    return ""


def _kvstore_lookups() -> Dict[str, str]:
    transforms = conffile.parse(BUILT_APP / "default" / "transforms.conf")
    return {name: keys["collection"] for name, keys in transforms.items() if keys.get("external_type") == "kvstore"}


def test_every_kv_store_collection_and_lookup_is_the_state_we_protect(built_app: Path) -> None:
    collections = [name for name in conffile.parse(built_app / "default" / "collections.conf") if name != "default"]
    assert sorted(collections) == sorted(STATE_COLLECTIONS)
    assert set(_kvstore_lookups().values()) <= set(STATE_COLLECTIONS)  # the findings have no lookup


@pytest.mark.parametrize("collection", STATE_COLLECTIONS)
def test_only_admin_roles_read_or_write_the_collection_and_its_lookups(meta: Dict[str, Dict[str, str]],
                                                                       collection: str) -> None:
    objects = [("collections", collection)] + [("transforms", lookup) for lookup, target in _kvstore_lookups().items()
                                               if target == collection]
    # the findings are read by escapefindings only; the other state has its lookup for the Data Health panels
    assert len(objects) >= (1 if collection == linux_findings.COLLECTION else 2), "no lookup over {}".format(collection)
    for kind, name in objects:
        access = _access(_effective(meta, kind, name, "access"))
        assert access.get("read") == ADMIN_ROLES, (kind, name, access)
        assert access.get("write") == ADMIN_ROLES, (kind, name, access)


@pytest.mark.parametrize("collection", STATE_COLLECTIONS)
def test_the_state_is_not_exported_system_wide(meta: Dict[str, Dict[str, str]], collection: str) -> None:
    # [transforms] is exported (the reference lookups are shared); the state's lookups must override it.
    for kind, name in [("collections", collection)] + [("transforms", lookup) for lookup, target
                                                       in _kvstore_lookups().items() if target == collection]:
        assert _effective(meta, kind, name, "export") == "none", (kind, name)


def _kv_store_writers(built_app: Path) -> List[str]:
    return sorted(path.stem for path in (built_app / "bin").glob("escape*.py")
                  if "from escape_io.store import KVStore" in path.read_text(encoding="utf-8"))


def test_commands_that_use_the_kv_store_state_are_risky(built_app: Path) -> None:
    writers = _kv_store_writers(built_app)
    assert writers == ["escapecorrelate", "escapeesxi", "escapefindings", "escaperegistry"]
    commands = conffile.parse(built_app / "default" / "commands.conf")
    for name, keys in commands.items():
        if name != "default":
            assert keys.get("is_risky", "false") == ("true" if name in writers else "false"), name


def test_es_admins_enable_and_disable_the_detections(meta: Dict[str, Dict[str, str]], built_app: Path) -> None:
    searches = [name for name in conffile.parse(built_app / "default" / "savedsearches.conf") if name != "default"]
    assert searches
    for name in searches:
        access = _access(_effective(meta, "savedsearches", name, "access"))
        assert access.get("write") == ADMIN_ROLES, (name, access)
        assert access.get("read") == {"*"}, (name, access)


def test_only_splunk_admins_change_settings(meta: Dict[str, Dict[str, str]], built_app: Path) -> None:
    # The setup page writes macros and saved searches with the caller's session, and only admin_all_objects may post.
    restmap = conffile.parse(built_app / "default" / "restmap.conf")
    for method in ("post", "put", "delete"):
        assert restmap["admin:TA_escape_to_host_configuration"]["capability." + method] == "admin_all_objects"
    for kind in ("macros", "eventtypes", "tags", "props", "lookups", "commands", "views", "nav"):
        assert _access(_effective(meta, kind, "-", "access"))["write"] == SPLUNK_ADMIN_ROLES, kind
    assert _access(meta[""]["access"])["write"] == SPLUNK_ADMIN_ROLES
