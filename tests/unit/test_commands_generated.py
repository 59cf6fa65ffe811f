"""searchbnf.conf and docs/commands.md are generated from the command wrappers (tools/commands.py reads their
options and docstrings with ast): the option names agree across wrapper, searchbnf and the docs page for every
command in commands.conf, and the reader copes with the shapes a wrapper may take."""
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tools import commands, conffile, docs

COMMANDS_CONF = conffile.parse(ROOT / "package" / "default" / "commands.conf")
NAMES = sorted(s for s in COMMANDS_CONF if s != "default")
SEARCHBNF = conffile.parse_text(commands.render_searchbnf_conf())
COMMANDS_MD = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")


def _wrapper_options(name: str) -> list:
    """The Option attributes as a plain reading of the source sees them (independent of tools/commands.py)."""
    source = (ROOT / "package" / "bin" / (name + ".py")).read_text(encoding="utf-8")
    return re.findall(r"^    (\w+)\s*(?::[^=]+)?=\s*Option\(", source, re.MULTILINE)


def _md_section(name: str) -> str:
    start = COMMANDS_MD.index("\n## {}\n".format(name))
    end = COMMANDS_MD.find("\n## ", start + 1)
    return COMMANDS_MD[start:end if end > 0 else None]


def test_every_command_in_commands_conf_is_generated_and_nothing_else() -> None:
    assert NAMES == sorted(commands.COMMANDS)
    assert sorted(s[:-len("-command")] for s in SEARCHBNF if s != "default") == NAMES
    assert sorted(re.findall(r"^## (\w+)$", COMMANDS_MD, re.MULTILINE)) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_option_names_agree_across_wrapper_searchbnf_and_docs(name: str) -> None:
    options = _wrapper_options(name)  # may be none (escapereduce)
    stanza = SEARCHBNF[name + "-command"]
    assert re.findall(r"(\w+)=", stanza["syntax"].replace("(", " ")) == options
    docstring_syntax = commands.read_command(ROOT / "package" / "bin" / (name + ".py")).syntax
    assert re.findall(r"(\w+)=", docstring_syntax) == options
    assert re.findall(r"^\| `(\w+)` \|", _md_section(name), re.MULTILINE) == options


@pytest.mark.parametrize("name", NAMES)
def test_searchbnf_stanza_has_the_search_assistant_keys(name: str) -> None:
    stanza = SEARCHBNF[name + "-command"]
    assert list(stanza) == ["syntax", "shortdesc", "description", "example1", "comment1", "usage"]
    assert stanza["usage"] == "public" and all(stanza.values())
    assert (stanza["syntax"] + " ").startswith(name + " ") and "| " + name + " " in stanza["example1"]
    # is_risky: which commands carry it is test_state_permissions' check (the ones that use the KV store state)
    assert {k: v for k, v in COMMANDS_CONF[name].items() if k != "is_risky"} == {
        "filename": name + ".py", "chunked": "true", "python.version": "python3", "python.required": "3.9, 3.13"}
    assert COMMANDS_CONF[name].get("is_risky", "true") == "true"


def test_generated_files_live_only_in_the_build_output() -> None:
    assert not (ROOT / "package" / "default" / "searchbnf.conf").exists()
    attributes = (ROOT / ".gitattributes").read_text(encoding="utf-8")
    assert "docs/commands.md" not in attributes, "a generated file is regenerated, never merged as a union"


def test_where_it_runs_follows_the_configuration() -> None:
    found = {c.name: c for c in commands.commands()}
    assert found["escapeinspect"].distributed and not found["escapecorrelate"].distributed
    assert "distributed=True" in _md_section("escapeinspect") and "distributed=False" in _md_section("escapecorrelate")


WRAPPER = '''"""Module docstring without sections."""
import sys

from splunklib.searchcommands import Configuration, Option, StreamingCommand, dispatch, validators


@Configuration(required_fields=["_raw"], distributed=True)
class ProbeCommand(StreamingCommand):
    """Probes things for a test.

    ##Syntax
        escapeprobe level=<low|high> [count=<int>] [ratio=<num>] [by=<field>] [flag=<bool>] [note=<text>]
    ##Description
        Emits one row per
        probed event.
    ##Example
        Count probes per host.
        `escape_x` | escapeprobe level=high
    """
    def prepare(self):
        pass

    count: int = Option(default=3, validate=validators.Integer(minimum=1, maximum=9), doc="**Syntax:** **count=***<n>*")
    level = Option(validate=validators.Set("low", "high"), require=True)
    ratio = Option(validate=validators.Float(0.5), default=1.5)
    by = Option(doc="**Syntax:** **by=***<field>* **Description:** The field to group by.",
                validate=validators.Fieldname(), default="host")
    flag = Option(default=False, validate=validators.Boolean())
    note = Option()


dispatch(ProbeCommand, sys.argv, sys.stdin, sys.stdout, __name__)
'''


def test_the_reader_takes_a_class_docstring_and_options_in_any_order(tmp_path: Path) -> None:
    (tmp_path / "escapeprobe.py").write_text(WRAPPER, encoding="utf-8")
    command = commands.read_command(tmp_path / "escapeprobe.py")
    assert command.shortdesc == "Probes things for a test." and command.distributed
    assert command.description == "Emits one row per probed event."
    assert (command.example, command.comment) == ("`escape_x` | escapeprobe level=high", "Count probes per host.")
    assert command.bnf_syntax == ("escapeprobe (count=<int>)? level=(low|high) (ratio=<num>)? (by=<field>)? "
                                  "(flag=<bool>)? (note=<string>)?")
    count, level, ratio, by, flag, note = command.options
    assert (count.default, count.minimum, count.maximum, count.placeholder) == ("3", "1", "9", "<n>")
    assert level.required and level.allowed == ("low", "high") and level.default is None
    assert (ratio.default, ratio.minimum, ratio.allowed_text) == ("1.5", "0.5", "number >= 0.5")
    assert by.meaning == "The field to group by." and by.kind == "field"
    assert (flag.kind, flag.default) == ("bool", "False") and note.kind == "string"


@pytest.mark.parametrize("change, message", [
    (("@Configuration(required_fields=[\"_raw\"], distributed=True)", "@Configuration()"), "must say distributed="),
    (("validators.Boolean()", "validators.Match('x', 'y')"), "validators.Match is not one this reader knows"),
    (("    ##Example\n        Count probes per host.\n        `escape_x` | escapeprobe level=high\n", ""),
     "the docstring has no ##Example section"),
    (("@Configuration(", "class Helper:\n    level = 1\n\n\n@Configuration("), None),
])
def test_the_reader_names_the_wrapper_it_cannot_read(tmp_path: Path, change: tuple, message: str) -> None:
    (tmp_path / "escapeprobe.py").write_text(WRAPPER.replace(*change), encoding="utf-8")
    if message is None:  # an undecorated helper class beside the command is fine
        assert commands.read_command(tmp_path / "escapeprobe.py").name == "escapeprobe"
        return
    with pytest.raises(commands.CommandError, match="^escapeprobe.py: .*" + re.escape(message)):
        commands.read_command(tmp_path / "escapeprobe.py")


def test_a_new_option_in_a_wrapper_makes_searchbnf_and_commands_md_follow(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in NAMES:
        shutil.copy(ROOT / "package" / "bin" / (name + ".py"), bin_dir)
    path = bin_dir / "escapethreshold.py"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "    by = Option(", "    limit = Option(default=10, validate=validators.Integer(1))\n    by = Option("),
        encoding="utf-8")
    assert "(limit=<int>)?" in conffile.parse_text(commands.render_searchbnf_conf(bin_dir))[
        "escapethreshold-command"]["syntax"]
    assert "| `limit` | `10` | whole number >= 1 |" in docs.commands_md(bin_dir)
    assert docs.commands_md(bin_dir) != COMMANDS_MD
