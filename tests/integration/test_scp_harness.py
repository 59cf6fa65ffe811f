"""The SCP v2 driver runs a command through the real splunklib dispatcher from the built lib/."""
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.harness.scp import decode_records, encode_records, run_command

PASSTHROUGH = ROOT / "tests" / "integration" / "harness" / "commands" / "escapepassthrough.py"


@pytest.fixture()
def passthrough(built_app: Path, tmp_path: Path) -> Path:
    # Laid out as in the app's bin/, so import_declare_test finds ../lib exactly as it does in Splunk.
    app = tmp_path / "TA_escape_to_host"
    shutil.copytree(built_app / "bin", app / "bin")
    (app / "lib").symlink_to(built_app / "lib")
    shutil.copy(PASSTHROUGH, app / "bin" / PASSTHROUGH.name)
    return app / "bin" / PASSTHROUGH.name


def test_getinfo_reports_a_streaming_command(passthrough: Path) -> None:
    run = run_command(passthrough, [], [[]])
    assert run.getinfo["type"] == "streaming", run.stderr
    assert run.returncode == 0, run.stderr


def test_records_round_trip_over_several_chunks_with_multivalues(passthrough: Path) -> None:
    chunks = [
        [{"_raw": 'type=SYSCALL msg=audit(1.0:1): comm="a b"', "host": "h1"},
         {"_raw": "line with, comma and \"quotes\"", "host": "h2", "tags": ["x", "y$z"]}],
        [{"_raw": "third", "host": "h3"}],
    ]
    run = run_command(passthrough, ["tag=seen"], chunks)
    assert run.returncode == 0, run.stderr
    assert len(run.chunk_replies) == 2  # exactly one reply per execute chunk
    assert [r["_raw"] for r in run.records] == ['type=SYSCALL msg=audit(1.0:1): comm="a b"',
                                                'line with, comma and "quotes"', "third"]
    assert run.records[1]["tags"] == ["x", "y$z"]
    assert all(r["escape_tag"] == "seen" for r in run.records)


def test_a_bad_option_is_reported_in_the_inspector_and_exits_non_zero(passthrough: Path) -> None:
    run = run_command(passthrough, ["limit=zero"], [[{"_raw": "x"}]])
    assert run.errors(), run.getinfo
    assert "limit" in " ".join(run.errors())
    assert run.returncode != 0


def test_csv_codec_keeps_dollar_signs_and_newlines() -> None:
    records = [{"a": ["$1", "two\nlines"], "b": "plain"}]
    assert decode_records(encode_records(records)) == records
