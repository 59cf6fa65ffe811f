"""The Linux correlation's saved findings: one document per row in the collection escape_linux_findings.

escapecorrelate findings=save writes them, escapefindings reads them, a page of documents at a time
(escape_engine.findings owns the document and the window rule). Each save deletes the documents older than
escape_engine.findings.KEEP_SECONDS, so the collection holds about two days of findings and never grows with time.
"""
from typing import Any, List, Optional, Sequence

from escape_engine.findings import KEEP_SECONDS, documents
from escape_engine.ground import Row
from escape_io.store import Collection

COLLECTION = "escape_linux_findings"
BATCH = 500
PAGE = 5000  # documents per query; max_rows_per_query (50,000) would cut a larger collection silently


def save(collection: Collection, rows: Sequence[Row], saved: float) -> None:
    """Add this run's rows, then delete the documents no detection run will read again."""
    collection.save(documents(rows, saved), BATCH)
    collection.delete_below("saved", saved - KEEP_SECONDS)


def load(collection: Collection, page: Optional[int] = None) -> List[Any]:
    """Every document, `page` at a time (sorted by _key, skip and limit), so that no query meets max_rows_per_query
    or, page halved on a failure, max_size_per_result_mb."""
    size = page or PAGE
    documents: List[Any] = []
    while True:
        try:
            part = collection.query(skip=len(documents), limit=size)
        except Exception:  # a result over a byte limit, most likely: smaller pages; a page of one failing is final
            if size == 1:
                raise
            size = max(1, size // 2)
            continue
        documents.extend(part)
        if len(part) < size:
            return documents
