"""The container registry's storage (escape_io.container_registry over escape_engine.registry): an upsert keeps what
an earlier run learnt, the collection ages out and stays bounded in count and bytes under the KV store's limits (the
offline stand-in, tools/kvstandin.py), and unreadable documents are skipped and counted."""
import json
from pathlib import Path
from typing import Dict, List

import pytest

from escape_engine import registry
from escape_engine.containers import ContainerFacts
from escape_io import container_registry
from tools.kvstandin import MAX_SIZE_PER_RESULT, LimitedCollection

NOW = 1796000000.0


def _row(index: int, **extra: object) -> Dict[str, str]:
    facts = ContainerFacts("node1", "%064x" % (index + 1), name="c%d" % index, image="lab/busybox:latest",
                           runtime="docker", created=NOW - 3600 + index)
    document = facts.document()
    row = {k: ("%.3f" % v if isinstance(v, float) and v else "" if isinstance(v, float) else str(v))
           for k, v in document.items()}
    row.update({k: str(v) for k, v in extra.items()})
    return row


def _collection(tmp_path: Path) -> LimitedCollection:
    return LimitedCollection(str(tmp_path), container_registry.COLLECTION)


def test_a_later_run_keeps_the_create_call_an_earlier_run_joined(tmp_path: Path) -> None:
    collection = _collection(tmp_path)
    container_registry.save(collection, [_row(0, host_access="privileged + host PID", create_actor="alice")], NOW)
    container_registry.save(collection, [_row(0, image="lab/debian:bookworm")], NOW + 3600)
    (facts,), skipped = container_registry.load(collection)
    assert skipped == 0 and facts.host_access == "privileged + host PID" and facts.create_actor == "alice"
    assert facts.image == "lab/debian:bookworm"  # the newer description wins where it says something
    assert collection.stored()[0]["seen"] == NOW + 3600


def test_containers_not_seen_for_keep_seconds_are_deleted(tmp_path: Path) -> None:
    collection = _collection(tmp_path)
    container_registry.save(collection, [_row(0)], NOW - registry.KEEP_SECONDS - 1)
    container_registry.save(collection, [_row(1)], NOW - registry.KEEP_SECONDS + 1)
    container_registry.save(collection, [_row(2)], NOW)
    assert sorted(d["name"] for d in collection.stored()) == ["c1", "c2"]


def test_past_max_documents_the_least_recently_seen_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "MAX_DOCUMENTS", 3)
    collection = _collection(tmp_path)
    for index in range(3):
        container_registry.save(collection, [_row(index)], NOW + index)
    container_registry.save(collection, [_row(3), _row(4)], NOW + 10)
    assert sorted(d["name"] for d in collection.stored()) == ["c2", "c3", "c4"]
    container_registry.save(collection, [_row(i) for i in range(10, 20)], NOW + 20)  # one run past the bound
    assert len(collection.stored()) == 3


def test_attacker_chosen_texts_are_cut_and_a_full_registry_stays_under_the_query_limit() -> None:
    long = "x" * 5000
    rows = [_row(i, name=long + str(i), image=long, pod=long, namespace=long, node=long, create_actor=long,
                 host_access=long) for i in range(registry.MAX_DOCUMENTS)]
    kept = registry.upsert([], rows, NOW)
    assert len(kept.documents) == registry.MAX_DOCUMENTS
    assert all(len(v) <= registry.MAX_TEXT for d in kept.documents for k, v in d.items()
               if isinstance(v, str) and k != "_key")
    size = len(json.dumps(kept.documents, separators=(",", ":")).encode("utf-8"))
    assert size < MAX_SIZE_PER_RESULT, size


def test_unreadable_documents_are_skipped_and_counted(tmp_path: Path) -> None:
    collection = _collection(tmp_path)
    container_registry.save(collection, [_row(0)], NOW)
    stored: List[object] = collection.stored() + [{"_key": "x", "host": "node1", "container_id": "not-hex"},
                                                  {"_key": "y", "container_id": "a" * 64}, "text", 7]
    (tmp_path / (container_registry.COLLECTION + ".json")).write_text(json.dumps(stored))
    found, skipped = container_registry.load(collection)
    assert [f.name for f in found] == ["c0"] and skipped == 4
    container_registry.save(collection, [_row(1)], NOW)  # a save over them still works
    assert "c1" in {d.get("name") for d in collection.stored() if isinstance(d, dict)}
