"""The container registry's rows: what one search learnt about containers from the runtimes' APIs, one row per
container (host + full id), for the registry kept by the scheduled search `Escape to Host - Container Registry`
(`escapeinspect mode=registry`, docs/linux-analytic.md "Names").

The runtime events (docker, podman) and docker inspect give id, name, image and create time; the create calls the
spec inspection read (dockerd's create body, a Kubernetes pod create) give what the container was given on the host
(`host_access`), by whom and when. A docker create call names only the container: it joins its create event by host,
name and time (containers.CreateJoin); a pod create joins the containers whose runtime labels name that pod.
"""
from typing import Dict, Iterator, List, Tuple

from .containers import ContainerFacts, CreateJoin
from .ground import Row
from .incident import incident_key, pod_identity

MAX_CREATES = 10000         # create calls held per search for the join


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


def _text(value: object) -> str:
    if isinstance(value, float):
        return "%.3f" % value if value else ""
    return str(value)
