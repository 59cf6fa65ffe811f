"""Search peers as forwarders fill them: the one rule for sharding replayed events over N indexers.

A universal forwarder with several indexers in outputs.conf switches to another indexer at `autoLBFrequency`
seconds (default 30, outputs.conf.spec), so one host's events spread over every peer in 30-second runs. The
simulation (issue 16) and the indexer-side reduction's checks (issue 17) shard with this one function, so both model
the same spread. Which indexer a forwarder picks next is random in Splunk; here it is a fixed rotation offset by a
hash of the host, so that a test run is repeatable. Each event gets `splunk_server` = `peer<k>` and keeps its
`_cd`; an event's `_cd` is unique only together with its `index` and `splunk_server`, as on a real indexer cluster.
"""
import hashlib
from typing import Dict, List, Mapping, Sequence

from escape_engine.ground import Value

AUTO_LB_SECONDS = 30.0  # outputs.conf autoLBFrequency default
Event = Dict[str, Value]


def server_name(peer: int) -> str:
    return "peer{}".format(peer)


def peer_of(host: str, time: float, peers: int) -> int:
    """The peer that receives `host`'s event at `time` (seconds): a new peer every AUTO_LB_SECONDS."""
    if peers < 1:
        raise ValueError("peers must be 1 or more, not {}".format(peers))
    offset = int.from_bytes(hashlib.sha256(host.encode("utf-8")).digest()[:4], "big")
    return (offset + int(time // AUTO_LB_SECONDS)) % peers


def shard(events: Sequence[Mapping[str, Value]], peers: int) -> List[List[Event]]:
    """Each event (a copy, with splunk_server set) on the peer its host's forwarder sent it to; order is kept."""
    shards: List[List[Event]] = [[] for _ in range(peers)]
    for event in events:
        peer = peer_of(str(event.get("host", "")), float(str(event.get("_time", "0"))), peers)
        copy = dict(event)
        copy["splunk_server"] = server_name(peer)
        shards[peer].append(copy)
    return shards
