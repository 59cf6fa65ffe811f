"""Persisted per-host state of the stateful commands: the KV store in Splunk, JSON files under $ESCAPE_STATE_DIR offline.

The engine stays pure: commands hand it the loaded state and store what it returns. One document per host, the state
as a JSON string (KV store collections declared in default/collections.conf). Offline (the replay's --state DIR, tests)
the whole collection is one file, <ESCAPE_STATE_DIR>/<collection>.json, replaced atomically.
"""
import json
import os
import tempfile
from typing import Any, Dict, List, Optional


def _state_dir():
    return os.environ.get("ESCAPE_STATE_DIR", "")


def location(collection):
    directory = _state_dir()
    return os.path.join(directory, collection + ".json") if directory else "KV store collection " + collection


def load(command, collection, unreadable=None):
    # type: (Any, str, Optional[List[str]]) -> Dict[str, Any]
    """Every host's state; an absent file or empty collection is an empty state. A KV document whose state is not
    JSON is skipped and its key appended to `unreadable` (the engine then starts that host afresh)."""
    directory = _state_dir()
    if directory:
        path = os.path.join(directory, collection + ".json")
        if not os.path.exists(path):
            return {}
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, dict):
            raise ValueError("{} does not hold a JSON object".format(path))
        return data
    states = {}  # type: Dict[str, Any]
    for document in command.service.kvstore[collection].data.query():
        if "state" not in document:
            continue
        try:
            states[document["_key"]] = json.loads(document["state"])
        except (TypeError, ValueError):
            if unreadable is not None:
                unreadable.append(str(document.get("_key", "")))
    return states


def save(command, collection, state):
    # type: (Any, str, Dict[str, Dict[str, Any]]) -> None
    directory = _state_dir()
    if directory:
        os.makedirs(directory, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix="." + collection, suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(state, out, sort_keys=True)
        os.replace(temporary, os.path.join(directory, collection + ".json"))
        return
    data = command.service.kvstore[collection].data
    documents = [{"_key": host, "state": json.dumps(value, sort_keys=True)} for host, value in state.items()]
    for start in range(0, len(documents), 100):
        data.batch_save(*documents[start:start + 100])
