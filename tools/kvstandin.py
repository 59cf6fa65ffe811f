"""The offline stand-in for the app's KV store: the file store (escape_io.store.FileStore) with splunkd's limits.

Every command the replay and the simulation run offline keeps its state here (tools/offline_command.py hands this
store to the command class), so one folder is the one KV store that all searches of a run share. The limits are the
documented defaults, each applied the way splunkd applies it:

- limits.conf.spec [kvstore] max_documents_per_batch_save = 1000: a batch_save with more documents is refused
  (escape_io.store already refuses it before sending);
- limits.conf.spec [kvstore] max_size_per_batch_save_mb = 50: a batch_save whose JSON body is larger is refused;
- REST API Reference, KV store endpoints, "Limits": a document is at most 16 MB; a larger one is refused;
- limits.conf.spec [kvstore] max_rows_per_query = 50000: a query returns at most that many documents, silently;
- limits.conf.spec [kvstore] max_size_per_result_mb = 50: a query whose result is larger fails here (what splunkd
  returns instead is only confirmed on a real Splunk; the stand-in refuses rather than guess).

A refused save raises KVStoreLimitError before anything of that batch is written (splunkd answers HTTP 400 and keeps
the batch out); batches before it stay written, as they would in the KV store.
"""
import json
from typing import Any, List, Mapping, Sequence

from escape_io.store import MAX_BATCH, Collection, FileCollection, FileStore

MB = 1024 * 1024
MAX_SIZE_PER_BATCH_SAVE = 50 * MB
MAX_SIZE_PER_RESULT = 50 * MB
MAX_ROWS_PER_QUERY = 50000
MAX_DOCUMENT_SIZE = 16 * MB


class KVStoreLimitError(ValueError):
    """What splunkd's HTTP 400 answer to an over-limit request becomes offline."""


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


class LimitedCollection(FileCollection):
    """A file collection that answers as a KV store collection with the default limits does."""

    def load(self) -> List[Any]:
        documents = self.stored()[:MAX_ROWS_PER_QUERY]
        size = _size(documents)
        if size > MAX_SIZE_PER_RESULT:
            raise KVStoreLimitError("{}: a query result of {:,} bytes is over max_size_per_result_mb = 50".format(
                self.name, size))
        return documents

    def save(self, documents: Sequence[Mapping[str, Any]], batch: int) -> None:
        if not 1 <= batch <= MAX_BATCH:
            raise KVStoreLimitError("{}: batch size {} is outside 1..{} (max_documents_per_batch_save)".format(
                self.name, batch, MAX_BATCH))
        size_of_batch = batch
        for start in range(0, len(documents), size_of_batch):
            part = [dict(d) for d in documents[start:start + size_of_batch]]
            for document in part:
                size = _size(document)
                if size > MAX_DOCUMENT_SIZE:
                    raise KVStoreLimitError("{}: document {!r} of {:,} bytes is over the 16 MB document limit".format(
                        self.name, document.get("_key"), size))
            size = _size(part)
            if size > MAX_SIZE_PER_BATCH_SAVE:
                raise KVStoreLimitError("{}: a batch_save of {:,} bytes is over max_size_per_batch_save_mb = 50"
                                        .format(self.name, size))
            super().save(part, size_of_batch)


class LimitedStore(FileStore):
    """Collections as JSON files in one folder, with the KV store's limits."""

    def collection(self, name: str) -> Collection:
        return LimitedCollection(self.folder, name)
