"""The app's shipped lookup files, found relative to bin/: the same on a search head (etc/apps/<app>/bin) and on an
indexer running from the replicated bundle (var/run/searchpeers/<bundle>/apps/<app>/bin)."""
import csv
from pathlib import Path
from typing import Dict, List

FOLDER = Path(__file__).resolve().parent.parent.parent / "lookups"


def rows(name: str) -> List[Dict[str, str]]:
    """Every row of lookups/<name> as a dict of its columns."""
    with (FOLDER / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
