"""The container registry's rows: what one search learnt about containers from the runtimes' APIs, one row per
container (host + full id), for the registry kept by the scheduled search `Escape to Host - Container Registry`
(`escaperegistry`, which runs escape_engine.inspect in mode=registry; docs/linux-analytic.md "Names").

The runtime events (docker, podman) and docker inspect give id, name, image and create time; the create calls the
spec inspection read (dockerd's create body, a Kubernetes pod create) give what the container was given on the host
(`host_access`), by whom and when. A docker create call names only the container: it joins its create event by host,
name and time (containers.CreateJoin); a pod create joins the containers whose runtime labels name that pod.

Kept rows (`upsert`): a search's rows replace the stored row of the same container, filling what they lack from it
(a create event of one run and the create call of the next describe one container). Each kept document carries
`seen`, the time of the search that last described the container; the store bounds the collection by age
(KEEP_SECONDS) and by count (MAX_DOCUMENTS, the least recently seen go first), and every text value is cut at
MAX_TEXT characters, so neither time nor long attacker-chosen names or labels grow it past the KV store's limits
(a query returns at most 50,000 documents and 50 MB: a document holds seven cut texts, the 64-digit id, the host and
three numbers, about 2 KB at most, and 15,000 of them stay near 33 MB).
"""
from typing import Any, Dict, Iterable, Iterator, List, Tuple

from .containers import ContainerFacts, CreateJoin
from .ground import Row
from .incident import incident_key, pod_identity
from .scalars import finite_float

MAX_CREATES = 10000         # create calls held per search for the join
KEEP_SECONDS = 30 * 86400   # a container no search has described for this long is deleted
MAX_DOCUMENTS = 15000       # documents kept; past it the least recently seen are deleted
MAX_TEXT = 256              # characters kept of a text value (a name, an image, a label)


class Registry:
    """Collects facts across chunks; `rows()` after the last one."""

    def __init__(self) -> None:
        self.facts: Dict[Tuple[str, str], ContainerFacts] = {}
        self.join = CreateJoin()
        self._creates: List[Tuple[str, str, float, str, str]] = []      # host, name, time, actor, access
        self._pods: Dict[str, Tuple[float, str, str]] = {}               # pod identity -> time, actor, access
        self.dropped = 0        # create calls or events past the bounds (counted, reported)

    def add(self, facts: ContainerFacts) -> None:
        """A runtime event or an inspect record of one container."""
        known = self.facts.get(facts.key())
        if known is None:
            self.facts[facts.key()] = facts
        else:
            known.merge(facts)
        self.join.add(facts)

    def add_create(self, host: str, name: str, when: float, actor: str, access: str) -> None:
        """A docker create call (its container named, not identified)."""
        if len(self._creates) >= MAX_CREATES:
            self.dropped += 1
            return
        self._creates.append((host, name, when, actor, access))

    def add_pod_create(self, namespace: str, name: str, when: float, actor: str, access: str) -> None:
        pod = pod_identity(namespace, name)
        if pod and (pod in self._pods or len(self._pods) < MAX_CREATES):
            self._pods[pod] = (when, actor, access)
        elif pod:
            self.dropped += 1

    def rows(self) -> Iterator[Row]:
        for host, name, when, actor, access in self._creates:
            event = self.join.find(host, name, when)
            if event is not None:
                self.facts[event.key()].merge(ContainerFacts(host, event.container_id, create_actor=actor,
                                                             create_time=when, host_access=access))
        for key in sorted(self.facts):
            facts = self.facts[key]
            pod = self._pods.get(facts.pod_id())
            if pod is not None:
                facts.merge(ContainerFacts(facts.host, facts.container_id, create_time=pod[0], create_actor=pod[1],
                                           host_access=pod[2]))
            document = facts.document()
            row: Row = {field: _text(value) for field, value in document.items() if field != "_key"}
            row["_key"] = str(document["_key"])
            row["_time"] = _text(facts.created or facts.create_time)
            row["escape_incident"] = incident_key(facts.host, facts.container_id, pod=facts.pod_id())
            yield row


class Upsert:
    """What one registry search writes: the documents to save, and `cutoff`, the `seen` below which stored documents
    are deleted (aged out, or past MAX_DOCUMENTS)."""

    def __init__(self, documents: List[Dict[str, Any]], cutoff: float) -> None:
        self.documents = documents
        self.cutoff = cutoff


def upsert(stored: Iterable[Any], rows: Iterable[Row], now: float) -> Upsert:
    """Merge a search's registry rows into the stored documents (see the module docstring)."""
    known: Dict[Tuple[str, str], ContainerFacts] = {}
    seen: Dict[Tuple[str, str], float] = {}
    for document in stored:
        facts = ContainerFacts.from_document(document) if isinstance(document, dict) else None
        if facts is not None:
            known[facts.key()] = facts
            seen[facts.key()] = _seen(document)
    fresh: Dict[Tuple[str, str], ContainerFacts] = {}
    for row in rows:
        facts = ContainerFacts.from_document(row)
        if facts is not None:
            fresh[facts.key()] = facts
    newest = sorted(fresh.values(), key=lambda f: f.created or f.create_time, reverse=True)[:MAX_DOCUMENTS]
    documents = []
    for facts in newest:
        old = known.get(facts.key())
        if old is not None:
            facts.merge(old)
        document = {field: value[:MAX_TEXT] if isinstance(value, str) else value
                    for field, value in facts.document().items() if field != "_key"}
        document["_key"] = facts.document()["_key"]
        document["seen"] = now
        documents.append(document)
    cutoff = now - KEEP_SECONDS
    saved = {facts.key() for facts in newest}
    older = sorted((when for key, when in seen.items() if key not in saved), reverse=True)
    room = MAX_DOCUMENTS - len(documents)
    if len(older) > room:   # the least recently seen beyond the bound go (ties at the cut stay)
        cutoff = max(cutoff, older[room - 1] if room > 0 else now)
    return Upsert(documents, cutoff)


def _seen(document: Dict[str, Any]) -> float:
    """When a stored document was last seen; 0 (the first to go) when a hand edit left no finite number."""
    return finite_float(document.get("seen")) or 0.0


def lookup(documents: Iterable[Any]) -> Tuple[List[ContainerFacts], int]:
    """The stored documents the correlation names containers from, and how many were unreadable (skipped)."""
    found: List[ContainerFacts] = []
    bad = 0
    for document in documents:
        facts = ContainerFacts.from_document(document) if isinstance(document, dict) else None
        if facts is None:
            bad += 1
        else:
            found.append(facts)
    return found, bad


def _text(value: object) -> str:
    if isinstance(value, float):
        return "%.3f" % value if value else ""
    return str(value)
