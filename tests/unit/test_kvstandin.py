"""tools/kvstandin.py: the offline KV store refuses what splunkd refuses and truncates what splunkd truncates."""
import json
from pathlib import Path

import pytest

from escape_io.store import DocumentTooLarge
from tools import kvstandin
from tools.kvstandin import KVStoreLimitError, LimitedStore


# escape_io.store.batches never builds an over-limit request (tests/unit/test_escape_io.py), so these send one
# batch_save request as it comes, the way a client without that splitting would.
def test_a_document_over_16_mb_is_refused_and_nothing_of_its_batch_is_written(tmp_path: Path) -> None:
    collection = LimitedStore(str(tmp_path)).collection("escape_test")
    big = {"_key": "big", "blob": "x" * (kvstandin.MAX_DOCUMENT_SIZE + 1)}
    with pytest.raises(KVStoreLimitError, match="16 MB"):
        collection.save_batch([{"_key": "small"}, big])
    assert collection.load() == []
    with pytest.raises(DocumentTooLarge, match="16 MB"):  # the add-on's own save refuses it before sending
        collection.save([{"_key": "small"}, big], 100)
    assert collection.load() == []


def test_a_batch_over_50_mb_is_refused_but_earlier_batches_stay(tmp_path: Path) -> None:
    collection = LimitedStore(str(tmp_path)).collection("escape_test")
    blob = "y" * (10 * kvstandin.MB)
    documents = [{"_key": "first", "v": 1}] + [{"_key": "d%d" % i, "blob": blob} for i in range(6)]
    with pytest.raises(KVStoreLimitError, match="max_size_per_batch_save_mb"):
        collection.save_batch(documents[:6])  # 6 documents of more than 50 MB in all
    assert collection.load() == []
    collection.save_batch(documents[:1])
    assert [d["_key"] for d in collection.load()] == ["first"]
    collection.save(documents, 6)  # the add-on's save splits by bytes: every document arrives
    assert len(collection.stored()) == 7  # (a query of all 60 MB would be over max_size_per_result_mb)


def test_a_collection_listed_as_refused_refuses_every_save(tmp_path: Path) -> None:
    (tmp_path / kvstandin.REFUSE_FILE).write_text("escape_test\n")
    with pytest.raises(KVStoreLimitError, match="not ready"):
        LimitedStore(str(tmp_path)).collection("escape_test").save([{"_key": "a"}], 1)
    LimitedStore(str(tmp_path)).collection("escape_other").save([{"_key": "a"}], 1)


def test_more_than_1000_documents_per_batch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1000"):
        LimitedStore(str(tmp_path)).collection("escape_test").save([{"_key": "a"}], 1001)


def test_a_query_returns_at_most_50000_rows_silently(tmp_path: Path) -> None:
    (tmp_path / "escape_test.json").write_text(json.dumps([{"_key": str(i)} for i in range(50005)]))
    collection = LimitedStore(str(tmp_path)).collection("escape_test")
    assert len(collection.load()) == kvstandin.MAX_ROWS_PER_QUERY
    assert len(collection.query(limit=60000)) == kvstandin.MAX_ROWS_PER_QUERY
    assert len(collection.query(skip=50000)) == 5  # paging reaches the rest
    collection.save([{"_key": "new"}], 1)  # a save keeps every stored document, not only the rows a query returns
    assert len(json.loads((tmp_path / "escape_test.json").read_text())) == 50006


def test_a_query_result_over_50_mb_fails(tmp_path: Path) -> None:
    blob = "z" * (9 * kvstandin.MB)
    (tmp_path / "escape_test.json").write_text(json.dumps([{"_key": str(i), "b": blob} for i in range(6)]))
    with pytest.raises(KVStoreLimitError, match="max_size_per_result_mb"):
        LimitedStore(str(tmp_path)).collection("escape_test").load()
