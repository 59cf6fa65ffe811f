"""escape_io: the one state interface (package/bin/escape_io/store.py) with its KV store and file implementations,
and the two collections kept through it (the Linux lineage, the ESXi first-seen baseline)."""
import json
import os
import threading
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from escape_io import esxi_baseline, kvlimits, linux_lineage, store
from escape_io.store import APP, OWNER, FileStore, KVStore


class _Body:
    def __init__(self, data: Any) -> None:
        self.data = json.dumps(data).encode("utf-8")

    def read(self) -> bytes:
        return self.data


class _Response:
    def __init__(self, data: Any) -> None:
        self.body = _Body(data)


class _Context:
    """What KVStore needs of splunklib.binding.Context: get and post, with every call recorded."""

    def __init__(self, documents: List[Any]) -> None:
        self.documents = documents
        self.calls: List[Tuple[str, str, Dict[str, Any]]] = []

    def get(self, path: str, **kwargs: Any) -> _Response:
        self.calls.append(("GET", path, kwargs))
        return _Response(self.documents)

    def post(self, path: str, **kwargs: Any) -> _Response:
        self.calls.append(("POST", path, kwargs))
        return _Response([])

    def batches(self) -> List[List[Dict[str, Any]]]:
        return [json.loads(k["body"]) for m, _, k in self.calls if m == "POST"]


# ---- the file store ----------------------------------------------------------------------------------------------

def test_file_collection_inserts_or_replaces_by_key_like_the_kv_store(tmp_path: Path) -> None:
    collection = FileStore(str(tmp_path / "state")).collection("escape_linux_lineage")
    assert collection.load() == []
    collection.save([{"_key": "h1", "state": "1"}, {"_key": "h2", "state": "2"}], 100)
    collection.save([{"_key": "h2", "state": "two"}, {"_key": "h3", "state": "3"}], 100)
    assert collection.load() == [{"_key": "h1", "state": "1"}, {"_key": "h2", "state": "two"},
                                 {"_key": "h3", "state": "3"}]
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["escape_linux_lineage.json"]  # no temporary left
    assert collection.location() == str(tmp_path / "state" / "escape_linux_lineage.json")


def test_a_file_that_holds_no_list_of_documents_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "escape_linux_lineage.json").write_text('{"h1": {"procs": []}}')
    with pytest.raises(ValueError, match="does not hold a JSON list of documents"):
        FileStore(str(tmp_path)).collection("escape_linux_lineage").load()


def test_two_saves_racing_write_through_distinct_temporary_files_in_the_same_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both writers hold their temporary file at the same moment (a barrier in os.replace): they must not share it,
    or one would rename the other's half-written bytes into place."""
    target = tmp_path / "escape_esxi_module_baseline.json"
    barrier = threading.Barrier(2, timeout=10)
    temporaries: List[str] = []
    real_replace = os.replace

    def replace(source: str, destination: str) -> None:
        temporaries.append(source)
        barrier.wait()
        real_replace(source, destination)

    monkeypatch.setattr(store.os, "replace", replace)
    errors: List[BaseException] = []

    def save(module: str) -> None:
        try:
            FileStore(str(tmp_path)).collection("escape_esxi_module_baseline").save(
                [{"_key": module, "module": module, "first_seen": 1.0}], 500)
        except BaseException as error:  # noqa: BLE001  reported below
            errors.append(error)

    threads = [threading.Thread(target=save, args=(m,)) for m in ("atlantic", "kmemtap")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(set(temporaries)) == 2
    assert all(Path(t).parent == tmp_path and Path(t) != target for t in temporaries)
    assert [d["module"] for d in json.loads(target.read_text())] in (["atlantic"], ["kmemtap"])  # one whole file
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_a_crash_in_the_middle_of_a_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    collection = FileStore(str(tmp_path)).collection("escape_linux_lineage")
    collection.save([{"_key": "h1", "state": "old"}], 100)
    before = (tmp_path / "escape_linux_lineage.json").read_text()
    real_fdopen = os.fdopen

    class _Disk:
        """A file that takes half of what it is given, then fails (disk full, the process killed)."""

        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> "_Disk":
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, text: str) -> int:
            self.handle.write(text[:len(text) // 2])
            self.handle.flush()
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "fdopen", lambda *a, **k: _Disk(real_fdopen(*a, **k)))
    with pytest.raises(OSError, match="No space left"):
        collection.save([{"_key": "h1", "state": "new" * 1000}], 100)
    assert (tmp_path / "escape_linux_lineage.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["escape_linux_lineage.json"]


# ---- the KV store ------------------------------------------------------------------------------------------------

def test_kv_requests_name_this_app_and_owner_nobody_on_every_call() -> None:
    context = _Context([])
    collection = KVStore(context).collection("escape_linux_lineage")
    assert collection.load() == []
    collection.save([{"_key": "h1", "state": "{}"}], 100)
    assert [(m, p) for m, p, _ in context.calls] == [
        ("GET", "storage/collections/data/escape_linux_lineage"),
        ("POST", "storage/collections/data/escape_linux_lineage/batch_save")]
    assert all(k["owner"] == OWNER == "nobody" and k["app"] == APP == "TA_escape_to_host" for _, _, k in context.calls)
    assert context.calls[1][2]["headers"] == [("Content-Type", "application/json")]


def test_a_collection_name_or_batch_size_outside_what_splunkd_takes_is_refused() -> None:
    with pytest.raises(ValueError, match="collection name"):
        KVStore(_Context([])).collection("../other")
    with pytest.raises(ValueError, match="batch size"):
        KVStore(_Context([])).collection("escape_linux_lineage").save([{"_key": "x"}], 1001)


# ---- the Linux lineage -------------------------------------------------------------------------------------------

def test_lineage_is_one_document_per_host_saved_in_batches_of_100() -> None:
    context = _Context([{"_key": "h1", "state": json.dumps({"max_time": 5.0}), "_user": "nobody"}, {"_key": "junk"}])
    collection = KVStore(context).collection(linux_lineage.COLLECTION)
    assert linux_lineage.load(collection, ["h1"], []) == {"h1": {"max_time": 5.0}}
    assert json.loads(context.calls[0][2]["query"]) == {"$or": [{"_key": "h1"}]}  # only the hosts asked for
    linux_lineage.save(collection, {"host%d" % i: {"max_time": float(i)} for i in range(250)})
    batches = context.batches()
    assert [len(batch) for batch in batches] == [100, 100, 50]
    assert batches[0][0]["_key"] == "host0" and json.loads(batches[0][0]["state"]) == {"max_time": 0.0}


def test_lineage_reads_hosts_in_groups_whose_documents_fit_one_query_result() -> None:
    context = _Context([])
    hosts = ["host%03d" % i for i in range(100)]
    linux_lineage.load(KVStore(context).collection(linux_lineage.COLLECTION), hosts, [])
    groups = [json.loads(k["query"])["$or"] for _, _, k in context.calls]
    assert sorted(d["_key"] for g in groups for d in g) == hosts
    assert max(len(g) for g in groups) * linux_lineage.DOCUMENT_CAP <= kvlimits.MAX_SIZE_PER_RESULT
    assert linux_lineage.STATE_CHARS * 2 + 4096 <= linux_lineage.DOCUMENT_CAP


def test_saves_are_split_by_bytes_as_well_as_documents() -> None:
    context = _Context([])
    collection = KVStore(context).collection(linux_lineage.COLLECTION)
    big = "x" * (linux_lineage.DOCUMENT_CAP - 100)
    collection.save([{"_key": "h%d" % i, "state": big} for i in range(60)], 100)
    sizes = [len(k["body"]) for m, _, k in context.calls if m == "POST"]
    assert sum(len(b) for b in context.batches()) == 60 and len(sizes) > 1
    assert max(sizes) <= kvlimits.MAX_SIZE_PER_BATCH_SAVE * kvlimits.MARGIN


def test_a_lineage_document_whose_state_is_not_json_is_skipped_and_named() -> None:
    context = _Context([{"_key": "h1", "state": json.dumps({"max_time": 5.0})},
                        {"_key": "cut", "state": '{"procs": [1'}, {"_key": "h{2}", "state": None}, {"state": "{}"}])
    unreadable: List[str] = []
    assert linux_lineage.load(KVStore(context).collection(linux_lineage.COLLECTION), ["h1", "cut"], unreadable) == {
        "h1": {"max_time": 5.0}}
    assert unreadable == ["cut", "h{2}", ""]


def test_lineage_round_trip_through_files_is_what_the_kv_store_holds(tmp_path: Path) -> None:
    collection = FileStore(str(tmp_path)).collection(linux_lineage.COLLECTION)
    linux_lineage.save(collection, {"h1": {"procs": [1]}})
    linux_lineage.save(collection, {"h2": {"procs": []}})
    assert linux_lineage.load(collection, ["h2", "h1", "h3"], []) == {"h1": {"procs": [1]}, "h2": {"procs": []}}
    assert linux_lineage.load(collection, ["h2"], []) == {"h2": {"procs": []}}
    stored = json.loads((tmp_path / "escape_linux_lineage.json").read_text())
    assert stored == [{"_key": "h1", "state": '{"procs": [1]}'}, {"_key": "h2", "state": '{"procs": []}'}]


# ---- the ESXi first-seen baseline --------------------------------------------------------------------------------

def test_baseline_keeps_the_earliest_first_seen_and_saves_in_batches_of_500() -> None:
    context = _Context([{"_key": "esx01|atlantic", "host": "esx01", "module": "atlantic", "first_seen": 1000.0}])
    collection = KVStore(context).collection(esxi_baseline.COLLECTION)
    current = esxi_baseline.load(collection)
    assert current == {("esx01", "atlantic"): 1000.0}
    learned = {("esx01", "atlantic"): 5000.0, ("esx02", "atlantic"): 5000.0, ("esx01", "kmemtap"): 7.0}
    learned.update({("esx01", "mod%04d" % i): float(i) for i in range(600)})
    esxi_baseline.save(collection, learned, current)
    batches = context.batches()
    assert [len(batch) for batch in batches] == [500, 102]  # esx01|atlantic is known earlier: not written again
    saved = {d["_key"]: d for batch in batches for d in batch}
    assert "esx01|atlantic" not in saved
    assert saved["esx02|atlantic"] == {"_key": "esx02|atlantic", "host": "esx02", "module": "atlantic",
                                       "first_seen": 5000.0}
    assert saved["esx01|kmemtap"]["first_seen"] == 7.0
    esxi_baseline.save(collection, {}, current)
    assert len(context.batches()) == 2  # nothing learned: nothing written


def test_no_shipped_code_chooses_the_store_from_the_environment() -> None:
    """The wrapper chooses the store (the KV store unless tools/offline_command.py handed it files): nothing under
    package/bin reads ESCAPE_STATE_DIR or any other environment variable for it."""
    bin_dir = Path(__file__).resolve().parents[2] / "package" / "bin"
    offenders = []
    for path in sorted(bin_dir.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        offenders += ["{}: {}".format(path.relative_to(bin_dir), word) for word in
                      ("ESCAPE_STATE_DIR", "os.environ", "getenv") if word in text]
    assert offenders == []
