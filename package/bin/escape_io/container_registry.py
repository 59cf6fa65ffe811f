"""The container registry: what the runtimes' APIs said about each recent container, one document per container in
the collection escape_container_registry (default/collections.conf).

escaperegistry (the Container Registry maintenance search) writes it; escapecorrelate reads it to name each chain's
container. A document is escape_engine.containers.ContainerFacts.document() plus "seen", the time of the search that
last described the container; escape_engine.registry owns the merge and the bounds, this module the I/O: each save
deletes the documents seen before the bound's cutoff, so the collection never grows with time.
"""
from typing import Any, List, Sequence, Tuple

from escape_engine.containers import ContainerFacts
from escape_engine.ground import Row
from escape_engine.registry import lookup, upsert
from escape_io.store import Collection

COLLECTION = "escape_container_registry"
BATCH = 500


def save(collection: Collection, rows: Sequence[Row], now: float) -> int:
    """Upsert a search's registry rows; returns how many documents were written."""
    kept = upsert(collection.load(), rows, now)
    if kept.documents:
        collection.save(kept.documents, BATCH)
    collection.delete_below("seen", kept.cutoff)
    return len(kept.documents)


def load(collection: Collection) -> Tuple[List[ContainerFacts], int]:
    """Every stored container, and how many documents were unreadable (skipped)."""
    documents: List[Any] = collection.load()
    return lookup(documents)
