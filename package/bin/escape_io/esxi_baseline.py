"""escapeesxi's first-seen module baseline: one document per (host, module) in the collection
escape_esxi_module_baseline.

A document is {"_key": "<host>|<module>", "host": <host>, "module": <module>, "first_seen": <epoch seconds>}; a save
keeps the earliest first_seen of a pair. Module names never hold "|" (escape_engine.esxi reads [A-Za-z0-9_.-]), so
the key is unambiguous whatever the host name. Documents without a host (written by versions whose baseline was one
list for every host) are skipped: a module learnt on one host is still new on another.
"""
from typing import Dict, Mapping, Tuple

from escape_engine.scalars import finite_float
from escape_io.store import Collection

COLLECTION = "escape_esxi_module_baseline"
BATCH = 500  # splunkd takes at most 1,000 documents per batch
Pair = Tuple[str, str]  # (host, lower-case module)


def document_key(host: str, module: str) -> str:
    return "{}|{}".format(host, module)


def load(collection: Collection) -> Dict[Pair, float]:
    """{(host, module): first_seen}; documents without a module name or a host are skipped."""
    baseline: Dict[Pair, float] = {}
    for document in collection.load():
        if not isinstance(document, dict):
            continue
        module, host = document.get("module"), document.get("host")
        if isinstance(module, str) and module and isinstance(host, str):
            # an unreadable first_seen ("abc", NaN, a list) keeps the module known: only the date is lost
            baseline[(host, module.lower())] = finite_float(document.get("first_seen")) or 0.0
    return baseline


def save(collection: Collection, learned: Mapping[Pair, float], current: Mapping[Pair, float]) -> None:
    """Merge {(host, module): first_seen} into the baseline read at the start (`current`), keeping the earliest
    first_seen; pairs already known with an earlier or equal time are not written again."""
    merged = {p: t for p, t in learned.items() if p not in current or t < current[p]}
    if not merged:
        return
    collection.save([{"_key": document_key(h, m), "host": h, "module": m, "first_seen": t}
                     for (h, m), t in sorted(merged.items())], BATCH)
