"""Where escapeesxi keeps its first-seen module baseline: the KV store in Splunk, JSON files offline.

In Splunk the collection escape_esxi_module_baseline (collections.conf) holds one document per module, keyed by the
module name. When the environment variable ESCAPE_STATE_DIR is set (the replay, tests), the same documents live in
ESCAPE_STATE_DIR/escape_esxi_module_baseline.json instead. Nothing else about Splunk is emulated.
"""
import csv
import json
import os
from pathlib import Path

from escape_engine.scalars import finite_float

COLLECTION = "escape_esxi_module_baseline"
APP = "TA_escape_to_host"
STOCK_LOOKUP = Path(__file__).resolve().parent.parent / "lookups" / "escape_esxi_stock_modules.csv"


def stock_modules(path=STOCK_LOOKUP):
    with open(path, newline="", encoding="utf-8") as handle:
        return [row["module"] for row in csv.DictReader(handle) if row.get("module")]


def _state_file():
    folder = os.environ.get("ESCAPE_STATE_DIR")
    return Path(folder) / (COLLECTION + ".json") if folder else None


def _collection(command):
    from splunklib.client import Service  # only in Splunk; offline runs never reach here
    info = command.metadata.searchinfo
    scheme, _, rest = info.splunkd_uri.partition("://")
    host, _, port = rest.rpartition(":")
    service = Service(scheme=scheme, host=host.strip("[]"), port=int(port), token=info.session_key,
                      owner="nobody", app=APP)
    return service.kvstore[COLLECTION].data


def load(command):
    """{module: first_seen} from the baseline; documents without a module name are skipped."""
    path = _state_file()
    if path is not None:
        if not path.is_file():
            return {}
        documents = json.loads(path.read_text(encoding="utf-8")).get("modules", [])
    else:
        documents = _collection(command).query()
    if not isinstance(documents, list):
        raise ValueError("the baseline holds no list of module documents")
    baseline = {}
    for document in documents:
        module = document.get("module") if isinstance(document, dict) else None
        if isinstance(module, str) and module:
            # an unreadable first_seen ("abc", NaN, a list) keeps the module known: only the date is lost
            baseline[module.lower()] = finite_float(document.get("first_seen")) or 0.0
    return baseline


def save(command, learned):
    """Merge {module: first_seen} into the baseline, keeping the earliest first_seen."""
    if not learned:
        return
    current = load(command)
    merged = {m: min(t, current.get(m, t)) for m, t in learned.items()}
    documents = [{"_key": m, "module": m, "first_seen": t} for m, t in sorted(merged.items())]
    path = _state_file()
    if path is None:
        data = _collection(command)
        for start in range(0, len(documents), 500):  # the KV store takes at most 1,000 documents per batch
            data.batch_save(*documents[start:start + 500])
        return
    current.update(merged)
    everything = [{"module": m, "first_seen": t} for m, t in sorted(current.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"modules": everything}, indent=1), encoding="utf-8")
    temporary.replace(path)
