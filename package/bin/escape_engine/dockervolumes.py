"""Docker named volumes joined to the creates that mount them.

`docker volume create --opt type=none --opt o=bind --opt device=/ hostroot` and a later `docker run -v hostroot:/host`
are two API calls: the create body names only the volume, the volume body only the host directory. dockerd resolves
a named volume on the host it runs on, by name, at the time of the create: the definition that counts is the newest
volume create of that name on that host logged at or before the container create.

Events reach a search newest first, so a create is usually seen before the volume it mounts: creates that mount a
named volume are held until the end of the search (at most MAX_HELD; past that the first held goes out, rated with
what is known then). A volume defined before the search's time range is not joined here; its own volume-create alert rated it
when it was made. At most MAX_DEFINITIONS volume definitions are kept (the first seen: the newest).
"""
from typing import Dict, List, NamedTuple, Tuple

from .specrules import Workload

MAX_HELD = 512
MAX_DEFINITIONS = 4096


class VolumeDefinition(NamedTuple):
    time: float
    host_paths: List[Tuple[str, str, bool]]     # what volume_workload found: (device, "volume <name>", False)
    evidence: str                               # where the volume create's form data line is (escape_engine.evidence)


class VolumeDefinitions:
    """The volume creates seen by one search, per (host, volume name)."""

    def __init__(self) -> None:
        self._by_name: Dict[Tuple[str, str], List[VolumeDefinition]] = {}
        self._count = 0
        self.dropped = 0

    def add(self, host: str, name: str, definition: VolumeDefinition) -> None:
        if not name:
            return
        if self._count >= MAX_DEFINITIONS:      # newest first: what is dropped is the oldest (and counted)
            self.dropped += 1
            return
        self._by_name.setdefault((host, name), []).append(definition)
        self._count += 1

    def resolve(self, host: str, workload: Workload, when: float) -> List[str]:
        """Add to `workload` the host directories its named volumes bind (the definition in force at `when`);
        returns the evidence of the definitions used."""
        evidence = []
        for name, target, read_only in workload.volumes:
            earlier = [d for d in self._by_name.get((host, name), []) if d.time <= when]
            if not earlier:
                continue
            definition = max(earlier, key=lambda d: d.time)
            for device, _, _ in definition.host_paths:
                workload.host_paths.append((device, "volume {} bound to {}".format(name, target), read_only))
            if definition.host_paths:
                evidence.append(definition.evidence)
        return evidence
