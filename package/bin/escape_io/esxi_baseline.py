"""escapeesxi's first-seen module baseline: one document per module in the collection escape_esxi_module_baseline.

A document is {"_key": <module>, "module": <module>, "first_seen": <epoch seconds>}; a save keeps the earliest
first_seen of a module.
"""
from typing import Dict, Mapping

from escape_engine.scalars import finite_float
from escape_io.store import Collection

COLLECTION = "escape_esxi_module_baseline"
BATCH = 500  # splunkd takes at most 1,000 documents per batch


def load(collection: Collection) -> Dict[str, float]:
    """{module: first_seen}; documents without a module name are skipped."""
    baseline: Dict[str, float] = {}
    for document in collection.load():
        module = document.get("module") if isinstance(document, dict) else None
        if isinstance(module, str) and module:
            # an unreadable first_seen ("abc", NaN, a list) keeps the module known: only the date is lost
            baseline[module.lower()] = finite_float(document.get("first_seen")) or 0.0
    return baseline


def save(collection: Collection, learned: Mapping[str, float]) -> None:
    """Merge {module: first_seen} into the baseline, keeping the earliest first_seen."""
    if not learned:
        return
    current = load(collection)
    merged = {m: min(t, current.get(m, t)) for m, t in learned.items()}
    collection.save([{"_key": m, "module": m, "first_seen": t} for m, t in sorted(merged.items())], BATCH)
