"""Strobes: retry storms of empty connection attempts, sub-second gaps included."""

from __future__ import annotations

import numpy as np
import pytest

from silkwatch.detectors.pairs import pair_deltas
from silkwatch.detectors.schema import make_batch
from silkwatch.detectors.strobe import StrobeConfig, score_strobes
from tests.detectors.folding import fold_pairs

START = 1_434_499_200_000


def _attempts(n, gap_ms, *, sip="10.0.0.9", dip="198.51.100.4", dport=8080, packets=2, nbytes=104):
    return make_batch(
        sip=[sip] * n, dip=[dip] * n, dport=[dport] * n, proto=[6] * n,
        sport=[(20_000 + i) % 65_536 for i in range(n)],
        stime_ms=[START + i * gap_ms for i in range(n)], packets=[packets] * n, bytes=[nbytes] * n,
    )  # fmt: skip


def _score(batch, config=None):
    return score_strobes(pair_deltas(batch), now_ms=int(batch["stime_ms"].max()), config=config)


@pytest.mark.parametrize(
    ("n", "gap_ms", "expected"),
    [
        (3_000, 400, [("strobe", "medium", 0.6636, 3_000, 0.4)]),  # 2.5 a second, 20 min
        (3_600, 1_000, [("strobe", "medium", 0.7, 3_600, 1.0)]),  # one a second for an hour
        (600, 5_000, [("strobe", "medium", 0.5182, 600, 5.0)]),  # not in one hour: 300 fit
        (299, 1_000, []),  # below min_attempts
    ],
)
def test_retry_storms(n, gap_ms, expected):
    got = [
        (a.kind, a.severity, a.score, a.evidence["attempts"], a.evidence["median_gap_s"])
        for a in _score(_attempts(n, gap_ms))
    ]
    assert got == expected


def test_the_storm_reads_as_an_alert_an_analyst_can_check():
    [alert] = _score(_attempts(3_000, 400))
    assert (alert.sip, alert.dip, alert.dport, alert.proto) == ("10.0.0.9", "198.51.100.4", 8080, 6)
    assert alert.reason == (
        "10.0.0.9 made 3,000 connection attempts to 198.51.100.4:8080/6 in one hour "
        "(every 0.4 s), carrying no payload (52 bytes/packet, 2.0 packets each): a retry storm."
    )


@pytest.mark.parametrize(
    ("batch", "why"),
    [
        (_attempts(3_000, 400, nbytes=2_000), "connections that carry data"),
        (_attempts(3_000, 400, packets=12, nbytes=624), "connections that talk"),
        (_attempts(3_000, 400, dport=53), "DNS is the DNS scorer's"),
        (_attempts(3_000, 400, dip="10.0.0.10"), "internal to internal"),
        (_attempts(3_000, 400, dip="255.255.255.255"), "broadcast"),
        (_attempts(3_000, 400, sip="203.0.113.5", dip="10.0.0.9"), "inbound"),
    ],
)
def test_what_is_not_a_strobe(batch, why):
    assert _score(batch) == [], why


def test_split_batches_give_the_same_alert():
    batch = _attempts(3_000, 400)
    pairs = fold_pairs(np.array_split(batch, 6))
    assert score_strobes(pairs, now_ms=int(batch["stime_ms"].max())) == _score(batch)


def test_thresholds_are_settings():
    assert _score(_attempts(200, 1_000), StrobeConfig(min_attempts=150))[0].score == 0.5029
