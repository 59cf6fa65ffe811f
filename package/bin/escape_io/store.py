"""Collections of documents, kept in the app's KV store (Splunk) or in JSON files (offline), behind one interface.

A collection holds JSON objects keyed by `_key`. `load()` returns every document as the KV store's data endpoint
returns them; `save(documents, batch)` inserts or replaces each document by its `_key` (the KV store's batch_save,
`batch` documents per request) and leaves the others alone. The file store keeps the same documents in
<folder>/<collection>.json and behaves the same way, so the offline replay exercises what Splunk runs.
"""
import importlib
import json
import os
import re
import tempfile
from abc import ABC, abstractmethod
from typing import Any, Dict, List, Mapping, Sequence
from urllib.parse import urlsplit

# The KV store collections are declared in this app's default/collections.conf and shared app-wide, so every request
# goes to this namespace, whatever app the search runs from and whoever runs it.
APP = "TA_escape_to_host"
OWNER = "nobody"
MAX_BATCH = 1000  # splunkd's limit of documents per batch_save ([kvstore] max_documents_per_batch_save)
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


class Collection(ABC):
    """One collection of documents."""

    def __init__(self, name: str) -> None:
        self.name = _checked_name(name)

    @abstractmethod
    def load(self) -> List[Any]:
        """Every document (JSON objects with `_key`; a hand-edited file may hold other values, left to the reader)."""

    @abstractmethod
    def save(self, documents: Sequence[Mapping[str, Any]], batch: int) -> None:
        """Insert or replace each document by its `_key`, `batch` documents at a time."""

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

    def save(self, documents: Sequence[Mapping[str, Any]], batch: int) -> None:
        _checked_batch(batch)
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
        response = self.context.get(self.path, owner=OWNER, app=APP, output_mode="json")
        documents = json.loads(response.body.read().decode("utf-8"))
        if not isinstance(documents, list):
            raise ValueError("{}: splunkd answered no list of documents".format(self.location()))
        return documents

    def save(self, documents: Sequence[Mapping[str, Any]], batch: int) -> None:
        size = _checked_batch(batch)
        for start in range(0, len(documents), size):
            self.context.post(self.path + "/batch_save", owner=OWNER, app=APP,
                              headers=[("Content-Type", "application/json")],
                              body=json.dumps([dict(d) for d in documents[start:start + size]]))


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
