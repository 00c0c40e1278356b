"""DNS tunnel scoring: each sign fires on its own shape, normal clients and resolvers do not."""

from __future__ import annotations

import numpy as np

from silkwatch.detectors.dns import DnsConfig, score_dns_tunnels
from silkwatch.detectors.pairs import pair_deltas
from silkwatch.detectors.schema import make_batch

T0 = 1_434_499_200_000
RESOLVER = "10.0.0.53"


def _queries(sip, stime_ms, sizes, *, dip=RESOLVER, packets=1, sports=None):
    n = len(stime_ms)
    return make_batch(
        sip=[sip] * n,
        dip=[dip] * n,
        sport=list(sports) if sports is not None else (30_000 + np.arange(n) % 30_000).tolist(),
        dport=[53] * n,
        proto=[17] * n,
        stime_ms=np.asarray(stime_ms, dtype=np.int64).tolist(),
        elapsed_ms=[20] * n,
        bytes=list(sizes),
        packets=[packets] * n if np.isscalar(packets) else list(packets),
    )


def _normal_client(sip, seed, n=400):
    """Lookups in bursts (A and AAAA together) at random times, ordinary name lengths."""
    rng = np.random.default_rng(seed)
    bursts = T0 + np.sort(rng.integers(0, 8 * 3_600_000, n // 2))
    starts = np.repeat(bursts, 2) + np.tile([0, 3], n // 2)
    return _queries(sip, starts, rng.integers(60, 100, n))


def _score(batch, config=None):
    return score_dns_tunnels(pair_deltas(batch), now_ms=int(batch["stime_ms"].max()), config=config)


def _summary(alerts):
    return [(a.kind, a.sip, a.dip, a.dport, a.score, a.evidence["signs"]) for a in alerts]


def test_normal_resolver_client_does_not_fire():
    assert _score(_normal_client("10.0.0.7", seed=1)) == []


def test_tunnel_host_fires_and_normal_client_beside_it_does_not():
    rng = np.random.default_rng(2)
    starts = T0 + np.cumsum(rng.exponential(2_000, 300)).astype(np.int64)
    tunnel = _queries("10.0.0.66", starts, rng.normal(200, 15, 300).astype(int))
    batch = np.concatenate([tunnel, _normal_client("10.0.0.7", seed=3)])
    [alert] = _score(batch)
    assert _summary([alert]) == [("dns_tunnel", "10.0.0.66", RESOLVER, 53, 1.0, ["long_queries"])]
    assert {k: alert.evidence[k] for k in ("flows", "long_queries", "single_packet_queries")} == {
        "flows": 300,
        "long_queries": 275,
        "single_packet_queries": 300,
    }


def test_one_udp_conversation_of_many_packets_fires():
    batch = _queries("192.168.1.17", [T0], [1_139], packets=12, sports=[60_607])
    assert _summary(_score(batch)) == [
        ("dns_tunnel", "192.168.1.17", RESOLVER, 53, 0.6727, ["udp_session"])
    ]


def test_clock_timed_queries_fire():
    starts = T0 + np.arange(12) * 1_012
    assert _summary(_score(_queries("192.168.1.17", starts, [92] * 12))) == [
        ("dns_tunnel", "192.168.1.17", RESOLVER, 53, 1.0, ["regular_timing"])
    ]


def test_a_burst_is_not_a_clock():
    starts = T0 + np.arange(14) * 6
    assert _score(_queries("192.168.1.102", starts, [90] * 14)) == []


def test_volume_far_above_peers_fires():
    batch = np.concatenate(
        [_normal_client(f"10.0.1.{i}", seed=i, n=40) for i in range(1, 26)]
        + [_normal_client("10.0.0.99", seed=99, n=24_000)]
    )
    [alert] = _score(batch)
    assert (alert.sip, alert.score, alert.evidence["signs"]) == ("10.0.0.99", 1.0, ["volume"])
    assert {k: alert.evidence[k] for k in ("flows", "bytes", "peer_z")} == {
        "flows": 24_000,
        "bytes": 1_910_434,
        "peer_z": 25.51,
    }
    # the same host among too few peers: no baseline, no alert
    assert _score(batch, DnsConfig(min_peer_hosts=30)) == []


def test_resolver_recursion_is_not_a_tunnel():
    clients = np.concatenate([_normal_client(f"10.0.1.{i}", seed=i, n=20) for i in range(1, 6)])
    recursion = _queries(RESOLVER, T0 + np.arange(40) * 997, [220] * 40, dip="198.51.100.1")
    assert _score(np.concatenate([clients, recursion])) == []
    assert [a.sip for a in _score(recursion)] == [RESOLVER]


def test_realistic_day_alerts_exactly_the_planted_tunnel(realistic_day_pairs):
    day, pairs, now_ms = realistic_day_pairs
    [truth] = day.truth("dns_tunnel")
    assert [(a.sip, a.dip, a.dport) for a in score_dns_tunnels(pairs, now_ms=now_ms)] == [
        (truth.sip, truth.dip, truth.dport)
    ]
