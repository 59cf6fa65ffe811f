"""The setup page's REST handler compiles without warnings on Python 3.12+: ucc-gen 6.6.0 writes each field's
defaultValue into a Python string literal as is ("'%s'" % value, no escaping), so a default with a backslash
(C:\\Windows) becomes an invalid escape sequence, which 3.12 warns about and a later Python will refuse."""
import json
import warnings
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import ROOT

HANDLER = "TA_escape_to_host_rh_settings.py"


def _entities(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        if "field" in node:
            yield node
        for value in node.values():
            yield from _entities(value)
    elif isinstance(node, list):
        for value in node:
            yield from _entities(value)


def test_no_default_value_needs_escaping_in_a_python_literal() -> None:
    config = json.loads((ROOT / "globalConfig.json").read_text())
    for entity in _entities(config["pages"]):
        value = entity.get("defaultValue")
        if isinstance(value, str):
            assert "\\" not in value and "'" not in value and "\n" not in value, entity["field"]


@pytest.mark.parametrize("where", ["package", "built"])
def test_the_handler_compiles_with_warnings_as_errors(where: str, request: pytest.FixtureRequest) -> None:
    folder = ROOT / "package" / "bin" if where == "package" else Path(request.getfixturevalue("built_app")) / "bin"
    source = (folder / HANDLER).read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # SyntaxWarning (3.12+) / DeprecationWarning (3.6-3.11): invalid escape
        compile(source, str(folder / HANDLER), "exec")
