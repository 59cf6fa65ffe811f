"""escapecorrelate's persisted per-host lineage: one document per host in the collection escape_linux_lineage.

A document is {"_key": <host>, "state": <the host's lineage as a JSON string>} (default/collections.conf; the Data
Health dashboard reads the same field). The engine stays pure: the wrapper hands it what `load` returns and saves
what its `state(STATE_CHARS)` returns.

Bounded by design (escape_io.kvlimits): the engine keeps only what attribution needs and cuts a host's state at
STATE_CHARS characters of JSON (escape_engine.lineage.persist says what goes first). Stored as a JSON string, that
text at most doubles (every character it escapes is ASCII: a quote or a backslash), so a document stays under
DOCUMENT_CAP, far below the 16 MB of one document. A search reads only the documents of the hosts in its events,
HOSTS_PER_QUERY at a time, so no query result comes near max_size_per_result_mb; saves are split by documents and
bytes (escape_io.store.batches).
"""
import json
from typing import Any, Dict, Iterable, List, Mapping

from escape_io.kvlimits import MARGIN, MAX_SIZE_PER_RESULT, MB
from escape_io.store import Collection

COLLECTION = "escape_linux_lineage"
BATCH = 100
DOCUMENT_CAP = 4 * MB
STATE_CHARS = (DOCUMENT_CAP - 4096) // 2  # 4096: the _key (a host name) and the document's framing
HOSTS_PER_QUERY = int(MAX_SIZE_PER_RESULT * MARGIN) // DOCUMENT_CAP


def load(collection: Collection, hosts: Iterable[str], unreadable: List[str]) -> Dict[str, Any]:
    """The state of each of `hosts` that has one. A document whose state is not JSON (a hand edit, a cut document) is
    skipped and its key appended to `unreadable`: the engine then starts that host afresh. When a query of several
    hosts fails (documents an older version wrote without a cap can be larger), each host is read alone."""
    states: Dict[str, Any] = {}
    wanted = sorted(set(hosts))
    for start in range(0, len(wanted), HOSTS_PER_QUERY):
        group = wanted[start:start + HOSTS_PER_QUERY]
        try:
            documents = collection.query({"$or": [{"_key": host} for host in group]})
        except Exception:  # over a limit, most likely: one query per host; its failure is the caller's
            if len(group) == 1:
                raise
            documents = [d for host in group for d in collection.query({"_key": host})]
        _read(documents, states, unreadable)
    return states


def _read(documents: List[Any], states: Dict[str, Any], unreadable: List[str]) -> None:
    for document in documents:
        if not isinstance(document, dict) or "state" not in document:
            continue
        key = document.get("_key")
        try:
            if not isinstance(key, str):
                raise ValueError("no _key")
            states[key] = json.loads(document["state"])
        except (TypeError, ValueError):
            unreadable.append(str(key if key is not None else ""))


def save(collection: Collection, state: Mapping[str, Any]) -> None:
    """Store every host's state, one document per host, in batches of documents and bytes (each document made when
    its batch is, so memory holds one batch of JSON text)."""
    collection.save(({"_key": host, "state": json.dumps(value, sort_keys=True)} for host, value in state.items()),
                    BATCH)
