"""The embedded runner: the stream's processors in one process, no Kafka."""

from __future__ import annotations

import pytest

from silkwatch.connectors.silk import read_batches
from silkwatch.detectors.synthetic import synthetic_day
from silkwatch.streams.embedded import run
from silkwatch.streams.network import network_totals
from tests.streams.test_worker_kafka import FCCX, GOLDEN_3600, golden_hours, rounded

PROTO_TOTALS = {  # rwuniq --fields=protocol --values=records,bytes,packets on the FCCX hour
    1: (1588.0, 2_560_556.0, 26_016.0),
    6: (36_923.0, 383_497_742.0, 1_933_572.0),
    17: (206_825.0, 36_333_346.0, 236_259.0),
    89: (4.0, 72_192.0, 852.0),
}


def rounded_rows(rows: list[dict]) -> list[tuple]:
    """Bins rows with their volumes at rwcount's two decimals."""
    return [
        (r["bin_start_ms"], r["dimension"], r["value"],
         round(r["records"], 2), round(r["bytes"], 2), round(r["packets"], 2))
        for r in rows
    ]  # fmt: skip


@pytest.fixture(scope="module")
def fccx_run(shared_dir):
    return run(read_batches(shared_dir / FCCX))


def test_hourly_bins_equal_rwcount(fccx_run, shared_dir):
    assert fccx_run.flows == 245_340
    assert fccx_run.bytes == 422_463_836
    assert rounded(network_totals(fccx_run.bins)) == golden_hours(shared_dir / GOLDEN_3600)


def test_protocol_bins_sum_to_rwuniq(fccx_run):
    per_proto: dict[int, list[float]] = {}
    for row in fccx_run.bins:
        if row["dimension"] == "proto":
            sums = per_proto.setdefault(row["value"], [0.0, 0.0, 0.0])
            for i, name in enumerate(("records", "bytes", "packets")):
                sums[i] += row[name]
    assert {p: tuple(round(v, 2) for v in s) for p, s in per_proto.items()} == PROTO_TOTALS


def test_batch_size_does_not_change_bins(fccx_run, shared_dir):
    """Split equals whole: 1,000-row batches give the bins of 65,536-row batches."""
    small = run(read_batches(shared_dir / FCCX, rows=1_000))
    assert rounded_rows(small.bins) == rounded_rows(fccx_run.bins)


def test_synthetic_day_finds_every_planted_attack_and_nothing_else():
    day = synthetic_day(1, hosts=300)
    result = run(day.batches)
    found = {(a.kind, a.sip, a.dip, a.dport) for a in result.alerts}
    assert found == {
        ("beacon", "10.1.0.106", "198.51.100.23", 443),
        ("beacon", "10.1.1.4", "198.51.100.45", 8080),
        ("beacon", "10.1.0.201", "198.51.100.67", 443),
        ("exfil", "10.1.0.202", None, None),
        ("dns_tunnel", "10.1.0.183", "10.0.0.53", 53),
    }
    planted = {(p.kind, p.sip) for p in day.planted if p.sip != "*"}
    assert {(kind, sip) for kind, sip, _, _ in found} == planted
