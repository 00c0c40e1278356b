"""Fixtures shared by the detector tests."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from silkwatch.detectors.synthetic import SyntheticDay, synthetic_day
from tests.detectors.folding import fold_pairs


class DayPairs(NamedTuple):
    """A synthetic day, its pair state folded batch by batch, and its newest flow start."""

    day: SyntheticDay
    pairs: dict
    now_ms: int


@pytest.fixture(scope="session")
def realistic_day_pairs() -> DayPairs:
    """Seed 4, 150 hosts: planted beacons and a DNS tunnel among benign traffic."""
    day = synthetic_day(4, hosts=150)
    pairs = fold_pairs(day.batches)
    now_ms = max(int(batch["stime_ms"].max()) for batch in day.batches)
    return DayPairs(day, pairs, now_ms)
