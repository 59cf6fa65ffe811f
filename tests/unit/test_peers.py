"""tools/peers.py: one host's events spread over every peer in AUTO_LB_SECONDS runs, nothing lost or duplicated."""
import pytest

from tools.peers import AUTO_LB_SECONDS, peer_of, server_name, shard


def _events(hosts, seconds):
    return [{"host": h, "_time": repr(float(t)), "_cd": "0:{}".format(i), "_raw": "x"}
            for i, (h, t) in enumerate((h, t) for t in range(seconds) for h in hosts)]


def test_one_host_switches_peer_every_auto_lb_period_and_reaches_every_peer():
    events = _events(["node-a"], 600)
    shards = shard(events, 3)
    assert sorted(e["_cd"] for s in shards for e in s) == sorted(e["_cd"] for e in events)
    assert all(shards), "a host's events over ten minutes reach all three peers"
    for peer, events_on_peer in enumerate(shards):
        assert {e["splunk_server"] for e in events_on_peer} == {server_name(peer)}
    # within one 30 s run the peer stays, at the next run it changes
    assert peer_of("node-a", 0.0, 3) == peer_of("node-a", AUTO_LB_SECONDS - 0.5, 3)
    assert peer_of("node-a", 0.0, 3) != peer_of("node-a", AUTO_LB_SECONDS, 3)


def test_one_peer_holds_everything_in_order_and_events_are_copies():
    events = _events(["a", "b"], 100)
    (only,) = shard(events, 1)
    assert [e["_cd"] for e in only] == [e["_cd"] for e in events]
    assert "splunk_server" not in events[0]


def test_zero_peers_is_refused():
    with pytest.raises(ValueError, match="peers must be 1 or more"):
        peer_of("a", 0.0, 0)
