"""escapecorrelate's state I/O (package/bin/escape_state.py): JSON files offline, the KV store in Splunk."""
import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

import escape_state


class _Data:
    def __init__(self, documents: List[Dict[str, Any]]) -> None:
        self.documents = documents
        self.saved: List[List[Dict[str, Any]]] = []

    def query(self) -> List[Dict[str, Any]]:
        return self.documents

    def batch_save(self, *documents: Dict[str, Any]) -> None:
        self.saved.append(list(documents))


class _Collection:
    def __init__(self, data: _Data) -> None:
        self.data = data


class _Service:
    def __init__(self, data: _Data) -> None:
        self.kvstore = {"escape_linux_lineage": _Collection(data)}


class _Command:
    def __init__(self, data: _Data) -> None:
        self.service = _Service(data)


def test_offline_state_is_one_json_file_replaced_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCAPE_STATE_DIR", str(tmp_path / "state"))
    assert escape_state.load(None, "escape_linux_lineage") == {}
    escape_state.save(None, "escape_linux_lineage", {"h1": {"procs": [1]}})
    escape_state.save(None, "escape_linux_lineage", {"h2": {"procs": []}})
    assert escape_state.load(None, "escape_linux_lineage") == {"h2": {"procs": []}}
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["escape_linux_lineage.json"]


def test_a_corrupt_state_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCAPE_STATE_DIR", str(tmp_path))
    (tmp_path / "escape_linux_lineage.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        escape_state.load(None, "escape_linux_lineage")


def test_kv_store_holds_one_document_per_host_saved_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESCAPE_STATE_DIR", raising=False)
    data = _Data([{"_key": "h1", "state": json.dumps({"max_time": 5.0}), "_user": "nobody"}, {"_key": "junk"}])
    command = _Command(data)
    assert escape_state.load(command, "escape_linux_lineage") == {"h1": {"max_time": 5.0}}
    escape_state.save(command, "escape_linux_lineage", {"host%d" % i: {"max_time": float(i)} for i in range(250)})
    assert [len(batch) for batch in data.saved] == [100, 100, 50]
    first = data.saved[0][0]
    assert first["_key"] == "host0" and json.loads(first["state"]) == {"max_time": 0.0}


def test_a_kv_document_whose_state_is_not_json_is_skipped_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESCAPE_STATE_DIR", raising=False)
    data = _Data([{"_key": "h1", "state": json.dumps({"max_time": 5.0})}, {"_key": "cut", "state": '{"procs": [1'},
                  {"_key": "h{2}", "state": None}])
    unreadable: List[str] = []
    assert escape_state.load(_Command(data), "escape_linux_lineage", unreadable) == {"h1": {"max_time": 5.0}}
    assert unreadable == ["cut", "h{2}"]
