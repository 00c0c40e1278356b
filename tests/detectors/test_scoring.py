"""Prefilters are necessary conditions: each scorer alerts alike with and without its prefilter."""

from __future__ import annotations

import numpy as np
import pytest

from silkwatch.connectors.silk import read_batches
from silkwatch.detectors.config import DetectorsConfig, from_mapping
from silkwatch.detectors.pairs import HOUR_MS
from silkwatch.detectors.pairstate import PairState
from silkwatch.detectors.scoring import score_pairs
from silkwatch.detectors.synthetic import synthetic_day
from tests.streams.test_worker_kafka import FCCX


def alerts(state: PairState, now_ms: int, detectors: DetectorsConfig, *, prefilter: bool):
    slots = np.flatnonzero(state.counts > 0)
    found = score_pairs(state, slots, now_ms=now_ms, detectors=detectors, prefilter=prefilter)
    return sorted((a.kind, a.sip, a.dip, a.dport, a.score, a.severity) for a in found)


def state_of(batches) -> tuple[PairState, int]:
    state = PairState(seed=1)
    for batch in batches:
        state.update(batch)
    state.compact()
    return state, int(max(b["stime_ms"].max() for b in batches))


@pytest.fixture(scope="module")
def synthetic_state():
    return state_of(synthetic_day(5, hosts=400).batches)


@pytest.mark.parametrize(
    ("hours_before_end", "kinds"),
    [
        (0, ["beacon", "beacon", "beacon", "dns_tunnel"]),
        (6, ["beacon", "beacon", "beacon", "dns_tunnel"]),
        (12, ["beacon", "beacon"]),
    ],
)
def test_the_synthetic_day_alerts_alike(synthetic_state, hours_before_end, kinds):
    state, end_ms = synthetic_state
    now_ms = end_ms - hours_before_end * HOUR_MS
    fast = alerts(state, now_ms, DetectorsConfig(), prefilter=True)
    assert fast == alerts(state, now_ms, DetectorsConfig(), prefilter=False)
    assert [kind for kind, *_ in fast] == kinds


def test_the_fccx_hour_alerts_alike_with_internal_pairs_scored(shared_dir):
    state, end_ms = state_of(list(read_batches(shared_dir / FCCX)))
    detectors = from_mapping({"site": {"score_internal": True}})
    fast = alerts(state, end_ms, detectors, prefilter=True)
    assert fast == alerts(state, end_ms, detectors, prefilter=False)
    assert [kind for kind, *_ in fast] == ["beacon", "c2_long_session", "c2_long_session"]
