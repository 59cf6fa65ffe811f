"""The Linux correlation's findings, shared between one correlation pass and the detections that alert on them.

One scheduled correlation (escapecorrelate report=all findings=save) saves its rows; each Linux detection
(escapefindings report=escapes|attempts) reads the rows saved within its own dispatch window. The window is over
the time a row was saved, not the time of its events: consecutive runs of a detection read every saved row once,
whenever the correlation finished, and a row a late correlation saves after a detection's run is read by its next run.

A document is {"_key", "saved": <epoch seconds>, "category": escape|suspicious|attempt, "row": <the row as JSON>}.
Pure: the wrapper loads and saves the documents through escape_io.
"""
import json
from typing import Any, Dict, Iterable, List, Optional, Sequence

from .chains import REPORTS, reported
from .ground import Row
from .scalars import finite_float

KEEP_SECONDS = 2 * 86400  # saved rows older than this are deleted on each save: every detection run has read them
CATEGORY_FIELD = "escape_category"


RUN = "run"  # the category of the one document each save adds whatever it found: the correlation ran


def documents(rows: Sequence[Row], saved: float) -> List[Dict[str, Any]]:
    """One document per row, keyed by the save time and the row's position (a rerun never replaces older rows), and
    one run marker, so a reader can tell "nothing found" from "the correlation did not run"."""
    return [{"_key": "{:.6f}:run".format(saved), "saved": saved, "category": RUN}] + [
        {"_key": "{:.6f}:{}".format(saved, position), "saved": saved,
         "category": str(row.get(CATEGORY_FIELD, "")), "row": json.dumps(row, sort_keys=True)}
        for position, row in enumerate(rows)]


def _time(row: Row) -> float:
    return finite_float(row.get("_time")) or 0.0


class Selection:
    """What a reader gets: the rows, the correlation runs saved in its window, the documents skipped as malformed."""

    def __init__(self) -> None:
        self.rows: List[Row] = []
        self.runs = 0
        self.malformed = 0


def select(saved: Iterable[Any], report: str, earliest: Optional[float], latest: Optional[float]) -> Selection:
    """The rows of `report` saved in [earliest, latest) (None: unbounded), newest event first; the runs saved in
    that window; and the number of documents that are not findings (a hand edit, a cut document), skipped."""
    if report not in REPORTS:
        raise ValueError("report must be one of {}, got {!r}".format(", ".join(REPORTS), report))
    result = Selection()
    for document in saved:
        when = finite_float(document.get("saved")) if isinstance(document, dict) else None
        run = when is not None and isinstance(document, dict) and document.get("category") == RUN
        row = _row(document) if when is not None and not run else None
        if when is None or (row is None and not run):
            result.malformed += 1
            continue
        if (earliest is not None and when < earliest) or (latest is not None and when >= latest):
            continue
        if run:
            result.runs += 1
        elif row is not None and reported(report, str(row.get(CATEGORY_FIELD, ""))):
            result.rows.append(row)
    result.rows.sort(key=_time, reverse=True)
    return result


def _row(document: Dict[str, Any]) -> Optional[Row]:
    text = document.get("row")
    try:
        row = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if not isinstance(row, dict) or not all(
            isinstance(v, str) or (isinstance(v, list) and all(isinstance(i, str) for i in v)) for v in row.values()):
        return None
    return row
