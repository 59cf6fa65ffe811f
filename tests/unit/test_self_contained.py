"""The repository builds, tests and documents itself from its own files: nothing names a path outside it, and every
file under tests/data has its provenance row."""
import re
from pathlib import Path
from typing import Iterator, List

import yaml

from tests.conftest import DATA, ROOT

# Folders that are not sources: environments and build products (gitignored), and the copied data itself, whose
# third-party bytes stay as their authors wrote them.
NOT_SOURCES = {".git", ".venv", ".venv-appinspect", ".venv-psa", "output", "dist", "__pycache__", ".mypy_cache",
               ".ruff_cache", ".pytest_cache", "node_modules"}
TEXT_SUFFIXES = {".py", ".sh", ".md", ".yml", ".yaml", ".json", ".conf", ".txt", ".xml", ".toml", ".cfg", ""}
# A sibling folder, or a document that lives only in one (named in pieces so this file does not match itself).
OUTSIDE = re.compile(r"\.\./" + "shared" + r"|\b" + "shared" + r"/(data|docs)\b|\b(telemetry|landscape|escape-lab|style|"
                     r"splunk-toolchain|spec)\.md\b")


def source_files() -> Iterator[Path]:
    for path in sorted(ROOT.rglob("*")):
        parts = path.relative_to(ROOT).parts
        if any(part in NOT_SOURCES for part in parts) or path.is_dir() or path.is_relative_to(DATA):
            continue
        if path.suffix in TEXT_SUFFIXES and path.stat().st_size < 2_000_000:
            yield path


def test_no_source_names_a_path_or_document_outside_the_repository() -> None:
    found: List[str] = []
    for path in source_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.split("\n"), 1):
            if OUTSIDE.search(line):
                found.append("{}:{}: {}".format(path.relative_to(ROOT), number, line.strip()[:120]))
    assert not found, "\n".join(found)


def test_the_outside_pattern_catches_what_it_is_for() -> None:
    assert OUTSIDE.search("path: ../" + "shared" + "/data/lab-run1/x.log")
    assert OUTSIDE.search("(telemetry" + ".md §3.2)")
    assert not OUTSIDE.search("collections.conf.spec, /data/sharedx, tests/data/lab-run1")


def test_every_detection_sample_is_a_file_inside_the_repository() -> None:
    for path in sorted((ROOT / "content" / "detections").glob("*.yml")):
        detection = yaml.safe_load(path.read_text(encoding="utf-8"))
        for kind, samples in detection["samples"].items():
            for sample in samples:
                resolved = (ROOT / sample["path"]).resolve()
                assert resolved.is_relative_to(ROOT), "{} {}: {} is outside".format(path.name, kind, sample["path"])
                assert resolved.is_file(), "{} {}: {} is missing".format(path.name, kind, sample["path"])


def provenance_rows() -> List[str]:
    text = (DATA / "PROVENANCE.md").read_text(encoding="utf-8")
    return re.findall(r"^\| `([^`]+)` \|", text, re.MULTILINE)


def test_every_data_file_has_a_provenance_row_and_every_row_a_file() -> None:
    files = {str(p.relative_to(DATA)) for p in DATA.rglob("*") if p.is_file() and p.name != "PROVENANCE.md"}
    rows = set(provenance_rows())
    assert files - rows == set(), "files without a row in tests/data/PROVENANCE.md"
    assert rows - files == set(), "rows in tests/data/PROVENANCE.md naming no file"
