"""The offline stand-in for the app's KV store: the file store (escape_io.store.FileStore) with splunkd's limits.

Every command the replay and the simulation run offline keeps its state here (tools/offline_command.py hands this
store to the command class), so one folder is the one KV store that all searches of a run share. The limits are the
documented defaults of escape_io.kvlimits (their one owner), each applied the way splunkd applies it:

- limits.conf.spec [kvstore] max_documents_per_batch_save: a batch_save with more documents is refused
  (escape_io.store already refuses it before sending);
- limits.conf.spec [kvstore] max_size_per_batch_save_mb = 50: a batch_save whose JSON body is larger is refused;
- REST API Reference, KV store endpoints, "Limits": a document is at most 16 MB; a larger one is refused;
- limits.conf.spec [kvstore] max_rows_per_query = 50000: a query returns at most that many documents, silently;
- limits.conf.spec [kvstore] max_size_per_result_mb = 50: a query whose result is larger fails here (what splunkd
  returns instead is only confirmed on a real Splunk; the stand-in refuses rather than guess).

A refused save raises KVStoreLimitError before anything of that batch is written (splunkd answers HTTP 400 and keeps
the batch out); batches before it stay written, as they would in the KV store.

A test can make splunkd refuse every save to some collections, as it does while the KV store is not ready (HTTP 503
during a restart or a restore): their names, one a line, in the file REFUSE_FILE of the folder.
"""
import json
import os
from typing import Any, Dict, List, Mapping, Optional

from escape_io.kvlimits import (
    MAX_DOCUMENT_SIZE,
    MAX_DOCUMENTS_PER_BATCH_SAVE,
    MAX_ROWS_PER_QUERY,
    MAX_SIZE_PER_BATCH_SAVE,
    MAX_SIZE_PER_RESULT,
    MB,
)
from escape_io.store import Collection, FileCollection, FileStore

__all__ = [
    "MAX_DOCUMENTS_PER_BATCH_SAVE",
    "MAX_DOCUMENT_SIZE",
    "MAX_ROWS_PER_QUERY",
    "MAX_SIZE_PER_BATCH_SAVE",
    "MAX_SIZE_PER_RESULT",
    "MB",
    "KVStoreLimitError",
    "LimitedCollection",
    "LimitedStore",
    "check_batch",
    "check_result",
]
REFUSE_FILE = "kvstore-refuses-saves.txt"


class KVStoreLimitError(ValueError):
    """What splunkd's HTTP 400 answer to an over-limit request becomes offline."""


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def check_result(name: str, documents: List[Any]) -> List[Any]:
    """A query's result as splunkd returns it: refused over max_size_per_result_mb (the caller cuts the rows)."""
    size = _size(documents)
    if size > MAX_SIZE_PER_RESULT:
        raise KVStoreLimitError("{}: a query result of {:,} bytes is over max_size_per_result_mb = 50".format(
            name, size))
    return documents


def check_batch(name: str, documents: List[Dict[str, Any]]) -> None:
    """Refuse a batch_save request as splunkd does: too many documents, a document over 16 MB, a body over 50 MB."""
    if not 1 <= len(documents) <= MAX_DOCUMENTS_PER_BATCH_SAVE:
        raise KVStoreLimitError("{}: a batch_save of {} documents is outside 1..{} (max_documents_per_batch_save)"
                                .format(name, len(documents), MAX_DOCUMENTS_PER_BATCH_SAVE))
    total = 2
    for document in documents:
        size = _size(document)
        if size > MAX_DOCUMENT_SIZE:
            raise KVStoreLimitError("{}: document {!r} of {:,} bytes is over the 16 MB document limit".format(
                name, document.get("_key"), size))
        total += size + 1
    if total > MAX_SIZE_PER_BATCH_SAVE:
        raise KVStoreLimitError("{}: a batch_save of {:,} bytes is over max_size_per_batch_save_mb = 50"
                                .format(name, total))


class LimitedCollection(FileCollection):
    """A file collection that answers as a KV store collection with the default limits does."""

    def load(self) -> List[Any]:
        return self._result(self.stored()[:MAX_ROWS_PER_QUERY])

    def query(self, query: Optional[Mapping[str, Any]] = None, skip: int = 0, limit: int = 0) -> List[Any]:
        rows = min(limit, MAX_ROWS_PER_QUERY) if limit else MAX_ROWS_PER_QUERY
        return self._result(super().query(query, skip, rows))

    def _result(self, documents: List[Any]) -> List[Any]:
        return check_result(self.name, documents)

    def save_batch(self, documents: List[Dict[str, Any]]) -> None:
        refused = os.path.join(os.path.dirname(self.path), REFUSE_FILE)
        if os.path.exists(refused):
            with open(refused, encoding="utf-8") as handle:
                if self.name in handle.read().split():
                    raise KVStoreLimitError("{}: splunkd refused the batch_save (HTTP 503: KV Store is not ready)"
                                            .format(self.name))
        check_batch(self.name, documents)
        super().save_batch(documents)


class LimitedStore(FileStore):
    """Collections as JSON files in one folder, with the KV store's limits."""

    def collection(self, name: str) -> Collection:
        return LimitedCollection(self.folder, name)
