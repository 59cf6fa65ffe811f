"""Splunk 9.3-10.1 run add-on code on Python 3.9 and Splunk 10.2+ on 3.13, while these tests run on 3.11."""
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

BIN = ROOT / "package" / "bin"
VENV_BIN = Path(sys.executable).parent


def test_package_code_needs_nothing_newer_than_python_3_9() -> None:
    result = subprocess.run([str(VENV_BIN / "vermin"), "-t=3.9-", "--no-tips", "--violations", "--eval-annotations",
                             "--backport", "typing", str(BIN)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_vermin_catches_a_3_10_construct(tmp_path: Path) -> None:
    sample = tmp_path / "new.py"
    sample.write_text("def f(x: int | None) -> None:\n    match x:\n        case 1:\n            pass\n")
    result = subprocess.run([str(VENV_BIN / "vermin"), "-t=3.9-", "--no-tips", "--violations", "--eval-annotations",
                             str(tmp_path)], capture_output=True, text=True)
    assert result.returncode != 0


def test_removed_modules_of_python_3_13_are_not_imported() -> None:
    removed = {"cgi", "cgitb", "pipes", "telnetlib", "crypt", "imghdr", "sndhdr", "nntplib", "uu", "xdrlib",
               "aifc", "audioop", "chunk", "mailcap", "msilib", "nis", "ossaudiodev", "spwd", "sunau", "distutils",
               "imp", "asynchat", "asyncore", "smtpd"}
    offenders = []
    for path in BIN.rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            words = line.replace(",", " ").split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1 and words[1].split(".")[0] in removed:
                offenders.append("{}: {}".format(path.relative_to(ROOT), line.strip()))
    assert not offenders


def test_engine_passes_mypy_strict_for_python_3_9() -> None:
    result = subprocess.run([str(VENV_BIN / "mypy"), "--strict", "--python-version", "3.9", "--no-incremental",
                             str(BIN / "escape_engine")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
