"""Fixtures shared by the detector tests."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from detectors.pairs import combine_pairs, pair_deltas
from detectors.synthetic import SyntheticDay, synthetic_day


class DayPairs(NamedTuple):
    """A synthetic day, its pair state folded batch by batch, and its newest flow start."""

    day: SyntheticDay
    pairs: dict
    now_ms: int


@pytest.fixture(scope="session")
def realistic_day_pairs() -> DayPairs:
    """Seed 4, 150 hosts: planted beacons and a DNS tunnel among benign traffic."""
    day = synthetic_day(4, hosts=150)
    pairs: dict = {}
    for batch in day.batches:
        for key, value in pair_deltas(batch).items():
            pairs[key] = combine_pairs(pairs.get(key), value)
    now_ms = max(int(batch["stime_ms"].max()) for batch in day.batches)
    return DayPairs(day, pairs, now_ms)
