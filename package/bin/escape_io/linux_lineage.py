"""escapecorrelate's persisted per-host lineage: one document per host in the collection escape_linux_lineage.

A document is {"_key": <host>, "state": <the host's lineage as a JSON string>} (default/collections.conf; the Data
Health dashboard reads the same field). The engine stays pure: the wrapper hands it what `load` returns and saves
what its `state()` returns.
"""
import json
from typing import Any, Dict, List, Mapping

from escape_io.store import Collection

COLLECTION = "escape_linux_lineage"
BATCH = 100


def load(collection: Collection, unreadable: List[str]) -> Dict[str, Any]:
    """Every host's state; an empty collection is an empty state. A document whose state is not JSON (a hand edit,
    a cut document) is skipped and its key appended to `unreadable`: the engine then starts that host afresh."""
    states: Dict[str, Any] = {}
    for document in collection.load():
        if not isinstance(document, dict) or "state" not in document:
            continue
        key = document.get("_key")
        try:
            if not isinstance(key, str):
                raise ValueError("no _key")
            states[key] = json.loads(document["state"])
        except (TypeError, ValueError):
            unreadable.append(str(key if key is not None else ""))
    return states


def save(collection: Collection, state: Mapping[str, Any]) -> None:
    """Store every host's state, one document per host."""
    documents = [{"_key": host, "state": json.dumps(value, sort_keys=True)} for host, value in state.items()]
    collection.save(documents, BATCH)
