"""The Linux correlation's findings, shared between one correlation pass and the detections that alert on them.

One scheduled correlation (escapecorrelate report=all findings=save) saves its rows; each Linux detection
(escapefindings report=escapes|attempts) reads the rows saved within its own dispatch window. The window is over
the time a row was saved, not the time of its events: consecutive runs of a detection read every saved row once,
whenever the correlation finished, and a row a late correlation saves after a detection's run is read by its next run.

A document is {"_key", "saved": <epoch seconds>, "category": escape|suspicious|attempt, "row": <the row as JSON>}.
Pure: the wrapper loads and saves the documents through escape_io.
"""
import json
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from .chains import REPORTS, reported
from .ground import Row
from .scalars import finite_float

KEEP_SECONDS = 2 * 86400  # saved rows older than this are deleted on each save: every detection run has read them
CATEGORY_FIELD = "escape_category"


def documents(rows: Sequence[Row], saved: float) -> List[Dict[str, Any]]:
    """One document per row, keyed by the save time and the row's position (a rerun never replaces older rows)."""
    return [{"_key": "{:.6f}:{}".format(saved, position), "saved": saved,
             "category": str(row.get(CATEGORY_FIELD, "")), "row": json.dumps(row, sort_keys=True)}
            for position, row in enumerate(rows)]


def _time(row: Row) -> float:
    return finite_float(row.get("_time")) or 0.0


def select(saved: Iterable[Any], report: str, earliest: Optional[float],
           latest: Optional[float]) -> Tuple[List[Row], int]:
    """The rows of `report` saved in [earliest, latest) (None: unbounded), newest event first, and the number of
    documents that are not findings (a hand edit, a cut document), which are skipped."""
    if report not in REPORTS:
        raise ValueError("report must be one of {}, got {!r}".format(", ".join(REPORTS), report))
    rows: List[Row] = []
    malformed = 0
    for document in saved:
        row = _row(document)
        if row is None:
            malformed += 1
            continue
        when = float(document["saved"])
        if (earliest is not None and when < earliest) or (latest is not None and when >= latest):
            continue
        if reported(report, str(row.get(CATEGORY_FIELD, ""))):
            rows.append(row)
    rows.sort(key=_time, reverse=True)
    return rows, malformed


def _row(document: Any) -> Optional[Row]:
    if not isinstance(document, dict) or finite_float(document.get("saved")) is None:
        return None
    text = document.get("row")
    try:
        row = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if not isinstance(row, dict) or not all(
            isinstance(v, str) or (isinstance(v, list) and all(isinstance(i, str) for i in v)) for v in row.values()):
        return None
    return row
