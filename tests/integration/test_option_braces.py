"""A bad option value holding "{" or "}" gets the engine's clear message, not a traceback.

splunklib's write_error(message, *args) always runs message.format(*args): a wrapper that hands it an error text which
quotes the user's value ("findings: 'x{' is not one of ...") as the format string crashes on the braces. Runs the
built commands over the real SCP v2 protocol (tests/integration/harness/scp.py)."""
from pathlib import Path
from typing import List

import pytest

from tests.integration.harness.scp import run_command
from tests.integration.winesxi_commands import app_bin

CASES = [  # command, options, what the error message must say (the offending value quoted as typed)
    ("escapewindows", ["restricted=C:/Windows", "findings=x{"], "findings: 'x{' is not one of"),
    ("escapewindows", ["restricted=C:/Win}dows,rel{0}"], "restricted directory 'rel{0}' needs a drive letter"),
    ("escapeesxi", ["findings={0}"], "findings: '{0}' is not one of"),
    ("escapeesxi", ["allowed=mod{x}"], "allowed: 'mod{x}' is not a module name"),
    ("escapeinspect", ["allowed=rel{0}"], "allowed host path 'rel{0}' is not absolute"),
    ("escapeinspect", ["allowed=/", "finding=priv}"], "finding=priv} is unknown"),
]


@pytest.mark.parametrize("command, args, message", CASES, ids=["{}:{}".format(c, a[-1]) for c, a, _ in CASES])
def test_a_bad_option_value_with_braces_fails_with_the_engines_message(built_app: Path, tmp_path: Path, command: str,
                                                                       args: List[str], message: str) -> None:
    script = app_bin(built_app, tmp_path) / (command + ".py")
    result = run_command(script, args, [[{"_raw": "x", "_cd": "0:0"}]], state_dir=tmp_path)
    assert result.returncode != 0
    errors = result.errors()
    assert any(message in text for text in errors), (result.messages, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
