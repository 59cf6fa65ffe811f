"""Collections of documents, kept in the app's KV store (Splunk) or in JSON files (offline), behind one interface.

A collection holds JSON objects keyed by `_key`. `load()` returns every document as the KV store's data endpoint
returns them; `query(query, skip, limit)` the documents a KV store query selects (the subset of its operators listed
in `matches`), sorted by `_key`, `limit` at a time; `save(documents, batch)` inserts or replaces each document by its
`_key` (the KV store's batch_save, at most `batch` documents and escape_io.kvlimits' bytes per request: `batches`)
and leaves the others alone. The file store keeps the same documents in <folder>/<collection>.json and behaves the
same way, so the offline replay exercises what Splunk runs.
"""
import importlib
import json
import os
import re
import tempfile
from abc import ABC, abstractmethod
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional
from urllib.parse import urlsplit

from escape_io import kvlimits

# The KV store collections are declared in this app's default/collections.conf and shared app-wide, so every request
# goes to this namespace, whatever app the search runs from and whoever runs it.
APP = "TA_escape_to_host"
OWNER = "nobody"
MAX_BATCH = kvlimits.MAX_DOCUMENTS_PER_BATCH_SAVE
BATCH_BYTES = int(kvlimits.MAX_SIZE_PER_BATCH_SAVE * kvlimits.MARGIN)  # what one batch_save request body may hold
_NAME = re.compile(r"[A-Za-z0-9_]+")

Document = Dict[str, Any]


def _checked_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError("collection name {!r}: use letters, digits and _".format(name))
    return name


def _checked_batch(batch: int) -> int:
    if not 1 <= batch <= MAX_BATCH:
        raise ValueError("batch size {} is outside 1..{}".format(batch, MAX_BATCH))
    return batch


class DocumentTooLarge(ValueError):
    """A document the KV store would refuse (over its 16 MB): never sent."""


def encoded_size(value: Any) -> int:
    """Bytes of `value` as a request body carries it (json.dumps' defaults: ASCII, ", " and ": ")."""
    return len(json.dumps(value))


def batches(documents: Iterable[Mapping[str, Any]], most: int, max_bytes: int = BATCH_BYTES,
            ) -> Iterator[List[Dict[str, Any]]]:
    """The documents in batch_save requests of at most `most` documents and `max_bytes` bytes of body each, in their
    order. A document over the KV store's 16 MB raises DocumentTooLarge before anything of its batch is sent."""
    _checked_batch(most)
    part: List[Dict[str, Any]] = []
    size = 2  # "[]"
    for document in documents:
        one = encoded_size(document)
        if one > kvlimits.MAX_DOCUMENT_SIZE:
            raise DocumentTooLarge("document {!r} of {:,} bytes is over the KV store's 16 MB per document".format(
                document.get("_key"), one))
        if part and (len(part) >= most or size + 2 + one > max_bytes):
            yield part
            part, size = [], 2
        part.append(dict(document))
        size += one + (2 if len(part) > 1 else 0)  # ", " between documents
    if part:
        yield part


_COMPARE = {"$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b, "$gt": lambda a, b: a > b,
            "$gte": lambda a, b: a >= b, "$ne": lambda a, b: a != b}


def matches(document: Any, query: Optional[Mapping[str, Any]]) -> bool:
    """Whether a document satisfies a KV store query of the operators the add-on uses: {field: value},
    {field: {"$lt" | "$lte" | "$gt" | "$gte" | "$ne": value}}, {"$and": [...]}, {"$or": [...]} (the file store's
    evaluation; in Splunk the KV store evaluates it). Numbers compare with numbers, text with text."""
    if not query:
        return True
    if not isinstance(document, dict):
        return False
    for name, condition in query.items():
        if name in ("$and", "$or"):
            results = [matches(document, part) for part in condition]
            if not (all(results) if name == "$and" else any(results)):
                return False
            continue
        value = document.get(name)
        if not isinstance(condition, dict):
            if value != condition:
                return False
            continue
        for operator, operand in condition.items():
            comparable = isinstance(value, type(operand)) or (
                isinstance(value, (int, float)) and isinstance(operand, (int, float)))
            if isinstance(value, bool) or not comparable:
                if operator != "$ne":
                    return False
                continue
            if not _COMPARE[operator](value, operand):
                return False
    return True


class Collection(ABC):
    """One collection of documents."""

    def __init__(self, name: str) -> None:
        self.name = _checked_name(name)

    @abstractmethod
    def load(self) -> List[Any]:
        """Every document (JSON objects with `_key`; a hand-edited file may hold other values, left to the reader)."""

    @abstractmethod
    def query(self, query: Optional[Mapping[str, Any]] = None, skip: int = 0, limit: int = 0) -> List[Any]:
        """The documents `query` selects, sorted by `_key`, from the `skip`th on, at most `limit` (0: as many as the
        KV store returns, max_rows_per_query)."""

    def save(self, documents: Iterable[Mapping[str, Any]], batch: int) -> None:
        """Insert or replace each document by its `_key`, at most `batch` documents and BATCH_BYTES at a time (a
        generator of documents is read one batch ahead: memory holds one batch, not every document)."""
        for part in batches(documents, batch):
            self.save_batch(part)

    @abstractmethod
    def save_batch(self, documents: List[Dict[str, Any]]) -> None:
        """One batch_save request."""

    @abstractmethod
    def delete_below(self, name: str, value: float) -> None:
        """Delete every document whose number `name` is below `value` (the KV store's query {name: {"$lt": value}})."""

    @abstractmethod
    def location(self) -> str:
        """Where the documents live, for messages."""


class Store(ABC):
    """Where a command's collections live."""

    @abstractmethod
    def collection(self, name: str) -> Collection:
        """The collection of that name."""


# ---- files (offline) ---------------------------------------------------------------------------------------------

def write_atomically(path: str, text: str) -> None:
    """Replace `path` with `text` at once: written to a unique temporary file in the same folder, then renamed over it,
    so a reader sees the old or the new file, never part of one, and concurrent writers never share a temporary file.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


class FileCollection(Collection):
    """A collection kept as one JSON file: the list of its documents."""

    def __init__(self, folder: str, name: str) -> None:
        super().__init__(name)
        self.path = os.path.join(folder, self.name + ".json")

    def location(self) -> str:
        return self.path

    def load(self) -> List[Any]:
        return self.stored()

    def stored(self) -> List[Any]:
        """Every document in the file (load() is what a query returns; an offline stand-in may limit it)."""
        if not os.path.exists(self.path):
            return []
        with open(self.path, encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, list):
            raise ValueError("{} does not hold a JSON list of documents".format(self.path))
        return data

    def query(self, query: Optional[Mapping[str, Any]] = None, skip: int = 0, limit: int = 0) -> List[Any]:
        selected = sorted((d for d in self.stored() if matches(d, query)),
                          key=lambda d: str(d.get("_key", "")) if isinstance(d, dict) else "")
        return selected[skip:skip + limit] if limit else selected[skip:]

    def save_batch(self, documents: List[Dict[str, Any]]) -> None:
        current = self.stored()
        position = {d["_key"]: i for i, d in enumerate(current)
                    if isinstance(d, dict) and isinstance(d.get("_key"), str)}
        for document in documents:
            key = document.get("_key")
            if not isinstance(key, str):
                raise ValueError("{}: a document to save has no _key".format(self.name))
            if key in position:
                current[position[key]] = dict(document)
            else:
                position[key] = len(current)
                current.append(dict(document))
        write_atomically(self.path, json.dumps(current, indent=1, sort_keys=True) + "\n")

    def delete_below(self, name: str, value: float) -> None:
        current = self.stored()
        kept = [d for d in current if not (isinstance(d, dict) and isinstance(d.get(name), (int, float))
                                           and not isinstance(d.get(name), bool) and d[name] < value)]
        if len(kept) != len(current):
            write_atomically(self.path, json.dumps(kept, indent=1, sort_keys=True) + "\n")


class FileStore(Store):
    """Collections as JSON files in one folder (created on the first save)."""

    def __init__(self, folder: str) -> None:
        self.folder = str(folder)

    def collection(self, name: str) -> Collection:
        return FileCollection(self.folder, name)


# ---- the KV store (Splunk) ---------------------------------------------------------------------------------------

class KVCollection(Collection):
    """A KV store collection of this app, read and written through splunkd's storage/collections/data endpoint."""

    def __init__(self, context: Any, name: str) -> None:
        super().__init__(name)
        self.context = context
        self.path = "storage/collections/data/" + self.name

    def location(self) -> str:
        return "KV store collection " + self.name

    def load(self) -> List[Any]:
        return self.query()

    def query(self, query: Optional[Mapping[str, Any]] = None, skip: int = 0, limit: int = 0) -> List[Any]:
        arguments: Dict[str, Any] = {"output_mode": "json", "sort": "_key"}
        if query:
            arguments["query"] = json.dumps(query)
        if skip:
            arguments["skip"] = skip
        if limit:
            arguments["limit"] = limit
        response = self.context.get(self.path, owner=OWNER, app=APP, **arguments)
        documents = json.loads(response.body.read().decode("utf-8"))
        if not isinstance(documents, list):
            raise ValueError("{}: splunkd answered no list of documents".format(self.location()))
        return documents

    def save_batch(self, documents: List[Dict[str, Any]]) -> None:
        self.context.post(self.path + "/batch_save", owner=OWNER, app=APP,
                          headers=[("Content-Type", "application/json")], body=json.dumps(documents))

    def delete_below(self, name: str, value: float) -> None:
        self.context.delete(self.path, owner=OWNER, app=APP, query=json.dumps({_checked_name(name): {"$lt": value}}))


class KVStore(Store):
    """The app's KV store. `context` is a splunklib.binding.Context (or anything with its get/post)."""

    def __init__(self, context: Any) -> None:
        self.context = context

    @classmethod
    def connect(cls, splunkd_uri: str, session_key: str) -> "KVStore":
        """The KV store of the splunkd a search command was started by (searchinfo's splunkd_uri and session_key)."""
        binding = importlib.import_module("splunklib.binding")  # the add-on's lib/; the engine and tests need none
        uri = urlsplit(splunkd_uri)
        context = binding.Context(scheme=uri.scheme, host=uri.hostname, port=uri.port, token=session_key,
                                  owner=OWNER, app=APP)
        return cls(context)

    def collection(self, name: str) -> Collection:
        return KVCollection(self.context, name)
