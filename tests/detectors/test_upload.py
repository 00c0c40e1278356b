"""Periodic uploads: a timer whose callbacks are bulk outbound transfers."""

from __future__ import annotations

import numpy as np
import pytest

from silkwatch.detectors.pairs import pair_deltas
from silkwatch.detectors.schema import make_batch
from silkwatch.detectors.upload import UploadConfig, score_uploads

START = 1_434_499_200_000


def _uploads(n, period_s, *, nbytes=600_000, packets=450, jitter=0.0, seed=0, dip="203.0.113.50",
             elapsed_ms=4_000):  # fmt: skip
    rng = np.random.default_rng(seed)
    starts = (
        START + np.arange(n) * period_s * 1000 + rng.uniform(-jitter, jitter, n) * period_s * 1000
    )
    return make_batch(
        sip=["10.0.0.8"] * n, dip=[dip] * n, dport=[443] * n, proto=[6] * n,
        sport=[41_000 + i for i in range(n)], stime_ms=starts.astype(np.int64).tolist(),
        elapsed_ms=[elapsed_ms] * n, packets=[packets] * n, bytes=[nbytes] * n,
    )  # fmt: skip


def _score(batch, config=None):
    return score_uploads(pair_deltas(batch), now_ms=int(batch["stime_ms"].max()), config=config)


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        (_uploads(12, 300), [("high", 0.8084, 300.0, 12)]),  # screenshots every 5 min
        (_uploads(48, 60, jitter=0.2, seed=1), [("high", 0.8241, 59.542, 48)]),
        (_uploads(6, 600, nbytes=5_000_000, packets=3_600), [("high", 0.8274, 600.0, 6)]),
    ],
)
def test_scheduled_uploads_fire_without_history(batch, expected):
    got = [
        (a.severity, a.score, a.evidence["period_s"], a.evidence["uploads"]) for a in _score(batch)
    ]
    assert got == expected
    assert all(a.kind == "periodic_upload" for a in _score(batch))


@pytest.mark.parametrize(
    ("batch", "why"),
    [
        (_uploads(12, 300, nbytes=2_000, packets=8), "small check-ins are the beacon scorer's"),
        (_uploads(12, 300, packets=3_000), "200 B/packet: not bulk"),
        (_uploads(5, 300), "too few uploads"),
        (_uploads(40, 300, jitter=0.5, seed=3), "irregular"),
        (_uploads(12, 300, elapsed_ms=200_000), "one long transfer cut into records"),
        (_uploads(12, 300, dip="10.9.9.9"), "internal backup server"),
    ],
)
def test_what_is_not_a_periodic_upload(batch, why):
    assert _score(batch) == [], why


def test_thresholds_are_settings():
    assert _score(_uploads(12, 300), UploadConfig(min_upload_bytes=1_000_000)) == []
