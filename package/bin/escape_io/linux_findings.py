"""The Linux correlation's saved findings: one document per row in the collection escape_linux_findings.

escapecorrelate findings=save writes them, escapefindings reads them (escape_engine.findings owns the document and
the window rule). Each save deletes the documents older than escape_engine.findings.KEEP_SECONDS, so the collection
holds about two days of findings and never grows with time.
"""
from typing import Any, List, Sequence

from escape_engine.findings import KEEP_SECONDS, documents
from escape_engine.ground import Row
from escape_io.store import Collection

COLLECTION = "escape_linux_findings"
BATCH = 500


def save(collection: Collection, rows: Sequence[Row], saved: float) -> None:
    """Add this run's rows, then delete the documents no detection run will read again."""
    collection.save(documents(rows, saved), BATCH)
    collection.delete_below("saved", saved - KEEP_SECONDS)


def load(collection: Collection) -> List[Any]:
    return collection.load()
