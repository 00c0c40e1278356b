"""Per (host, hour) statistics: exact totals, bounded sketches, split equals whole."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from silkwatch.detectors.hosts import HOUR_MS, host_deltas
from silkwatch.detectors.hoststate import HostHours
from silkwatch.detectors.schema import empty_batch, ip_strings, make_batch, parse_ip

A, B = parse_ip("10.0.0.1")[0], parse_ip("2001:db8::2")[0]


def _flows() -> np.ndarray:
    """Two hosts over two hours: uploads, downloads (replies), DNS, an IPv6 host."""
    return make_batch(
        sip=["10.0.0.1", "10.0.0.1", "192.0.2.9", "10.0.0.1", "2001:db8::2", "10.0.0.1"],
        dip=["192.0.2.9", "192.0.2.9", "10.0.0.1", "10.0.0.53", "2001:db8::1", "198.51.100.7"],
        sport=[50000, 50001, 443, 40000, 51000, 50002],
        dport=[443, 443, 50000, 53, 22, 8443],
        proto=[6, 6, 6, 17, 6, 6],
        packets=[10, 20, 40, 1, 7, 100],
        bytes=[1000, 30000, 56000, 70, 900, 140000],
        stime_ms=[0, 10_000, 0, 20_000, 30_000, HOUR_MS + 5],
        elapsed_ms=[500, 1000, 500, 10, 100, 2000],
    )


@pytest.mark.parametrize(
    ("side", "key", "expected"),
    [
        # sent by 10.0.0.1 in hour 0: two uploads and a DNS query
        ("sent", (A, 0), (3, 31, 31070, 0, 0, 0, 20_010, 2, 2)),
        ("sent", (A, HOUR_MS), (1, 100, 140000, 0, 0, HOUR_MS + 5, HOUR_MS + 2005, 1, 1)),
        ("sent", (B, 0), (1, 7, 900, 0, 0, 30_000, 30_100, 1, 1)),
        # received by 10.0.0.1: the server's reply is "served" (443 → 50000)
        ("received", (A, 0), (1, 40, 56000, 40, 56000, 0, 500, 1, 1)),
    ],
)
def test_host_deltas_exact(side: str, key: tuple, expected: tuple) -> None:
    sent, received = host_deltas(_flows())
    h = (sent if side == "sent" else received)[key]
    got = (
        h.flows,
        h.packets,
        h.bytes,
        h.served_packets,
        h.served_bytes,
        h.first_ms,
        h.last_ms,
        h.distinct_peers,
        h.distinct_ports,
    )
    assert got == expected


def test_sketch_keeps_largest_flow_per_peer_and_port() -> None:
    h = host_deltas(_flows())[0][(A, 0)]
    assert ip_strings(h.peer_addresses(), np.array([False, False])) == ["192.0.2.9", "10.0.0.53"]
    assert [peer[2] for peer in h.peers] == [30000, 70]
    assert h.ports == ((6 << 16 | 443, 30000), (17 << 16 | 53, 70))
    assert h.client_bytes == 31070 and h.client_packets == 31


def test_keys_cover_every_source_and_destination() -> None:
    sent, received = host_deltas(_flows())
    assert sorted(sent) == sorted([(A, 0), (A, HOUR_MS), (B, 0), (parse_ip("192.0.2.9")[0], 0)])
    assert len(received) == 5  # 192.0.2.9, 10.0.0.1, 10.0.0.53, 2001:db8::1, 198.51.100.7


def test_empty_batch() -> None:
    assert host_deltas(empty_batch()) == ({}, {})


def _many_peers(rows: int, seed: int) -> np.ndarray:
    """One host, 200 destinations and 50 ports over three hours, with equal sizes (ties)."""
    rng = np.random.default_rng(seed)
    batch = empty_batch(rows)
    batch["sip"] = parse_ip("10.9.9.9")[0]
    batch["dip"] = np.array([parse_ip(f"203.0.113.{i}")[0] for i in range(200)], "V16")[
        rng.integers(0, 200, rows)
    ]
    batch["sport"] = 50000
    batch["dport"] = rng.integers(1000, 1050, rows)
    batch["proto"] = 6
    batch["packets"] = rng.integers(1, 50, rows)
    batch["bytes"] = rng.integers(1, 20, rows) * 100
    batch["stime_ms"] = rng.integers(0, 3 * HOUR_MS, rows)
    return batch


@pytest.mark.parametrize("cuts", [[1], [17, 500], [3, 4, 5, 900]])
def test_the_columns_in_split_batches_hold_the_whole_totals(cuts: list[int]) -> None:
    batch = _many_peers(1000, seed=len(cuts))
    whole = host_deltas(batch)
    for side, direction in enumerate(("sent", "received")):
        hosts = HostHours(direction, seed=1)
        for part in np.split(batch, cuts):
            hosts.update(part)
        for (host, hour), value in whole[side].items():
            held = hosts.hour_of(host, hour)
            assert held == dataclasses.replace(value, peers=(), ports=())


def test_row_order_and_input_unchanged() -> None:
    batch = _many_peers(300, seed=9)
    before = batch.copy()
    assert host_deltas(batch[::-1]) == host_deltas(batch)
    assert np.array_equal(batch, before)
