"""Issue 16: the Linux lineage of 1,000 busy hosts stays under every KV store limit (escape_io.kvlimits), checked by
the offline stand-in's own checks (tools/kvstandin.py check_batch, check_result).

The busy host: four copies of the lab's raw audit log (tests/data/lab-run1) on one host within the same minutes, pids
offset (tools/workload.generate_audit): about 220,000 records and 19,000 processes, correlated by the engine as one
search. Its state is what escapecorrelate would persist; the fleet is 1,000 hosts each holding such a state (one
object under 1,000 names, so the test needs the memory of one). It is saved and read back as escapecorrelate does
(escape_io.linux_lineage). Before the state was bounded, the same host persisted 7.7 MB of every process's image
and arguments, and the first batch_save of 100 such documents was refused (over max_size_per_batch_save_mb).
"""
import json
from typing import Any, Dict, List, Mapping, Optional

import pytest

from escape_engine.correlate import Correlator
from escape_io import kvlimits, linux_lineage
from escape_io.store import Collection, matches
from tools.kvstandin import check_batch, check_result
from tools.workload import audit_lines, generate_audit

HOSTS = 1000


class CheckedKV(Collection):
    """An in-memory collection with the stand-in's limits; equal state texts are kept once."""

    def __init__(self) -> None:
        super().__init__(linux_lineage.COLLECTION)
        self.documents: Dict[str, Dict[str, Any]] = {}
        self.texts: Dict[str, str] = {}
        self.batch_sizes: List[int] = []
        self.result_sizes: List[int] = []

    def load(self) -> List[Any]:
        return self.query()

    def query(self, query: Optional[Mapping[str, Any]] = None, skip: int = 0, limit: int = 0) -> List[Any]:
        selected = [d for k, d in sorted(self.documents.items()) if matches(d, query)]
        selected = selected[skip:skip + limit] if limit else selected[skip:]
        selected = selected[:kvlimits.MAX_ROWS_PER_QUERY]
        check_result(self.name, selected)
        self.result_sizes.append(sum(len(d["state"]) for d in selected))  # about the result's size (its texts)
        return selected

    def save_batch(self, documents: List[Dict[str, Any]]) -> None:
        check_batch(self.name, documents)  # refuses a batch over a limit
        self.batch_sizes.append(len(documents))
        for document in documents:
            text = self.texts.setdefault(document["state"], document["state"])
            self.documents[document["_key"]] = {"_key": document["_key"], "state": text}

    def delete_below(self, name: str, value: float) -> None:
        raise NotImplementedError

    def location(self) -> str:
        return "memory"


@pytest.fixture(scope="module")
def busy_state() -> Dict[str, Any]:
    lines = audit_lines()
    events = generate_audit(len(lines) * 4, density=4, hosts=1, lines=lines)
    correlator = Correlator(window=300.0, report="all")
    correlator.feed(events)
    correlator.finish()
    assert len(correlator.hosts) == 1
    (host, table), = correlator.hosts.items()
    assert len(table.procs) > 15000  # busy: four times the lab's processes at once
    state = correlator.state(linux_lineage.STATE_CHARS)
    assert correlator.capped, "a busy host reaches the cap: the test exercises it"
    assert any("over its cap" in text for level, text in correlator.messages() if level == "WARN")
    return state[host]


class _OnceJSON:
    """json for escape_io.linux_lineage, with the text of one state object made once (the fleet shares one)."""

    def __init__(self) -> None:
        self.texts: Dict[int, str] = {}

    def dumps(self, value: Any, **options: Any) -> str:
        if id(value) not in self.texts:
            self.texts[id(value)] = json.dumps(value, **options)
        return self.texts[id(value)]

    loads = staticmethod(json.loads)


def test_the_lineage_of_1000_busy_hosts_stays_under_every_kv_store_limit(
        busy_state: Dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = {"fleet-node-%04d" % i: busy_state for i in range(HOSTS)}
    collection = CheckedKV()
    monkeypatch.setattr(linux_lineage, "json", _OnceJSON())
    linux_lineage.save(collection, fleet)  # the stand-in's checks refuse any batch over a limit
    assert len(collection.documents) == HOSTS
    assert max(len(json.dumps(d)) for d in collection.documents.values()) <= linux_lineage.DOCUMENT_CAP
    assert len(collection.batch_sizes) > HOSTS // linux_lineage.BATCH  # split by bytes, not only by 100 documents
    unreadable: List[str] = []
    wanted = sorted(fleet)[:100]  # one search's hosts: read per host group, never the whole collection
    loaded = linux_lineage.load(collection, wanted, unreadable)
    assert sorted(loaded) == wanted and unreadable == []
    assert max(collection.result_sizes) <= kvlimits.MAX_SIZE_PER_RESULT
    assert loaded[wanted[0]]["procs"] == json.loads(json.dumps(busy_state))["procs"]
