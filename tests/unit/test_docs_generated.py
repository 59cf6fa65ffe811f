"""The README's detection list, docs/detections.md and docs/tunables.md are generated from content/ by tools/docs.py:
these tests fail when any of them drifts from the YAML."""
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tools import content, docs


@pytest.mark.parametrize("name", ["README.md", "docs/detections.md", "docs/tunables.md", "docs/commands.md"])
def test_generated_docs_match_the_content(name: str) -> None:
    expected = docs.outputs()[ROOT / name]
    assert (ROOT / name).read_text(encoding="utf-8") == expected, \
        "{} drifted from content/ or the command wrappers: run ./build.sh docs".format(name)


def test_readme_lists_every_detection_with_status_and_attack() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text[text.index(docs.BEGIN):text.index(docs.END)]
    for item in content.detections():
        row = next(line for line in block.splitlines() if "[{}]".format(item.stanza) in line)
        assert "| {} |".format(item.status) in row
        for technique in item.mitre_attack:
            assert "[{}]".format(technique) in row


def test_readme_command_table_lists_every_command_of_commands_conf_with_its_syntax() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text[text.index(docs.COMMANDS_BEGIN):text.index(docs.COMMANDS_END)]
    conf = (ROOT / "package" / "default" / "commands.conf").read_text(encoding="utf-8")
    names = re.findall(r"^\[(escape\w+)\]", conf, re.MULTILINE)
    assert names and sorted(names) == sorted(re.findall(r"^\| \[`(escape\w+)`\]", block, re.MULTILINE))
    for command in docs.commands.commands():
        assert docs.command_table().count("| `{}` |".format(command.syntax.strip().replace("|", "\\|"))) == 1


def test_a_changed_detection_makes_the_readme_drift(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "content", root / "content")
    (root / "docs").mkdir()
    shutil.copytree(ROOT / "package" / "bin", root / "package" / "bin")
    shutil.copy(ROOT / "README.md", root / "README.md")
    before = docs.outputs(root)[root / "README.md"]
    assert before == (ROOT / "README.md").read_text(encoding="utf-8")
    path = root / "content" / "detections" / "esxi_vmx_crash.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("status: experimental", "status: production", 1),
                    encoding="utf-8")
    after = docs.outputs(root)[root / "README.md"]
    assert after != before
    assert docs.main(["--check"]) == 0  # the real repository is still in step


def test_readme_without_its_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="exactly one generated block"):
        docs.readme_with_block("# no block\n", "x")


def test_detections_md_lists_only_samples_that_are_in_the_repository() -> None:
    text = (ROOT / "docs" / "detections.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| samples that ")]
    listed = [p for line in rows for p in re.findall(r"`([^`]+)`", line)]
    assert len(rows) == 2 * len(content.detections()) and listed
    for path in listed:
        assert path.startswith(("tests/data/", "tests/knowledge/samples/")), path
        assert (ROOT / path).is_file(), "docs/detections.md lists {}, which is not in the repository".format(path)
