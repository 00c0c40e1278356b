"""The columnar pair state equals the per-key reference (pair_deltas over the whole input)."""

from __future__ import annotations

import numpy as np
import pytest

from silkwatch.detectors.pairs import PairConfig, pair_deltas
from silkwatch.detectors.pairstate import PairState
from silkwatch.detectors.schema import make_batch


def random_flows(seed: int, n: int, *, span_ms: int, pairs: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    which = rng.integers(0, pairs, n)
    return make_batch(
        sip=[f"10.0.{p % 7}.{p % 250}" for p in which.tolist()],
        dip=[f"192.0.2.{p % 13}" for p in which.tolist()],
        dport=(which % 3 + 440).tolist(),
        proto=[6] * n,
        sport=rng.integers(1024, 1100, n).tolist(),
        stime_ms=np.sort(rng.integers(0, span_ms, n)).tolist(),
        elapsed_ms=rng.integers(0, 5_000, n).tolist(),
        bytes=rng.integers(40, 5_000, n).tolist(),
        packets=rng.integers(1, 9, n).tolist(),
        init_flags=rng.choice([0, 0x02, 0x12, 0x18], n).tolist(),
    )


@pytest.mark.parametrize(
    ("config", "batch_rows", "shuffle"),
    [
        (PairConfig(), 1_000, False),
        (PairConfig(max_events=16), 333, False),
        (PairConfig(window_ms=5 * 3_600_000, max_events=40), 2_500, True),
    ],
)
def test_histories_equal_the_reference_whatever_the_batches(
    config: PairConfig, batch_rows: int, shuffle: bool
) -> None:
    flows = random_flows(3, 20_000, span_ms=30 * 3_600_000, pairs=400)
    if shuffle:  # late and out-of-order flows inside and across batches
        flows = flows[np.random.default_rng(5).permutation(len(flows))]
    state = PairState(config, seed=11)
    for start in range(0, len(flows), batch_rows):
        state.update(flows[start : start + batch_rows])
        if start % (3 * batch_rows) == 0:
            state.compact()  # reads in between batches must not change the result
    expected = pair_deltas(flows, config)
    got = state.histories(np.arange(len(state)))
    assert len(got) == len(expected) == 400
    for key, history in expected.items():
        ours = got[key]
        assert np.array_equal(ours.events, history.events), key
        assert (ours.sport_lo, ours.sport_hi) == (history.sport_lo, history.sport_hi)
        assert (ours.opened, ours.answered) == (history.opened, history.answered)
        # hours wholly inside the window hold the same totals, flows over the cap included
        # (the reference also keeps the hour the window starts in, whole)
        inside = history.hour_ms > history.events[-1, 0] - config.window_ms
        mine = ours.hour_ms > history.events[-1, 0] - config.window_ms
        assert np.array_equal(ours.hour_ms[mine], history.hour_ms[inside])
        assert np.array_equal(ours.hour_totals[mine], history.hour_totals[inside])
    assert sum(len(h.events) for h in got.values()) == len(state.events)


def test_caps_pairs_on_every_batch_stalest_first_and_counts_them() -> None:
    state = PairState(PairConfig(max_pairs=100), seed=1)
    held, created = [], 0
    for hour in range(3):
        flows = random_flows(hour, 3_000, span_ms=3_600_000, pairs=1_000)
        flows["stime_ms"] += hour * 3_600_000
        before = len(state)
        state.update(flows)
        created += len(state) - before
        state.shed()
        held.append(len(state))
    assert held == [95, 95, 95]  # evicted down to 95 % of the cap, every batch
    assert created == 2_673
    assert state.counters.shed_pairs == created - 95 == 2_578
    newest = state.last_ms
    assert newest.min() >= 2 * 3_600_000  # only the last hour's pairs survive


def test_destination_ports_follow_the_slots_through_evictions() -> None:
    """``dports`` is worked out once per slot: it must still match every key after the
    table was renumbered by shedding, and a view handed out before must not change."""
    state = PairState(PairConfig(max_pairs=100), seed=1)
    before, kept_before = None, []
    for hour in range(3):
        flows = random_flows(hour, 3_000, span_ms=3_600_000, pairs=1_000)
        flows["dport"] = np.arange(3_000) % 50 + 100 * hour
        flows["stime_ms"] += hour * 3_600_000
        state.update(flows)
        grown = state.dports.copy()
        assert grown.tolist() == (state.index.keys[:, 4] >> np.uint64(8)).tolist()
        state.shed()
        if before is not None:
            assert before.tolist() == kept_before
        before = state.dports
        kept_before = before.tolist()
        assert kept_before == (state.index.keys[:, 4] >> np.uint64(8)).tolist()
        assert set(kept_before) <= set(range(100 * hour, 100 * hour + 50)), hour


def test_too_old_flows_are_counted_not_kept() -> None:
    state = PairState(PairConfig(window_ms=3_600_000), seed=1)
    state.update(make_batch(sip=["10.0.0.1"], dip=["1.1.1.1"], stime_ms=[10 * 3_600_000]))
    slots = state.update(make_batch(sip=["10.0.0.1"], dip=["1.1.1.1"], stime_ms=[0]))
    assert slots.tolist() == [-1]
    assert state.counters.stale_flows == 1


def test_shed_evicts_the_stalest_ties_by_fewest_flows_then_slot() -> None:
    # few distinct newest times and flow counts: the cut falls inside a run of ties
    rng = np.random.default_rng(4)
    flows = random_flows(4, 4_000, span_ms=1, pairs=900)
    flows["stime_ms"] = rng.choice([0, 60_000, 120_000], len(flows))
    state = PairState(PairConfig(max_pairs=300), seed=2)
    state.update(flows)
    state.compact()
    order = np.lexsort((np.arange(len(state)), state.counts, state.last_ms))
    keys = state.index.keys.copy()
    assert state.shed() == len(keys) - 285
    assert state.index.keys.tolist() == keys[np.sort(order[len(keys) - 285 :])].tolist()
