"""The compiled callback statistics (``_pairstats.callbacks``) against the numpy code they
replaced, bit for bit, on random windows of grouped flows; and the compiled window cut
(``_pairstats.window``) on exact values and bad calls."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from silkwatch.detectors import _pairstats
from silkwatch.detectors.pairfeatures import (
    CallbackGate,
    Callbacks,
    _callbacks,
    _median,
    interval_stats,
)
from silkwatch.detectors.pairstate import EVENT_DTYPE


def reference(
    segment: np.ndarray,
    start: np.ndarray,
    elapsed: np.ndarray,
    octets: np.ndarray,
    n: int,
    gate: CallbackGate,
) -> Callbacks:
    """The numpy version: valid while each flow's start - the window's first start +
    elapsed is below 2**36 (a running maximum offset per segment), or with one segment."""
    gap = gate.gap_ms
    if len(start) == 0:
        nan = np.full(n, np.nan)
        return Callbacks(np.zeros(n, np.int64), np.zeros(n, np.int64), nan, nan, nan, nan, nan)
    offset = segment.astype(np.int64) << np.int64(36)
    running_end = np.maximum.accumulate(start - start.min() + elapsed + offset) - offset
    running_end += start.min()
    first = np.ones(len(start), dtype=bool)
    first[1:] = (segment[1:] != segment[:-1]) | (start[1:] > running_end[:-1] + gap)
    heads = np.flatnonzero(first)
    tails = np.append(heads[1:], len(start)) - 1
    owner = segment[heads]
    count = np.bincount(owner, minlength=n)
    longest = np.zeros(n, dtype=np.int64)
    np.maximum.at(longest, owner, running_end[tails] - start[heads])
    timed = count[owner] >= max(gate.min_count, 1)
    heads, tails, owner = heads[timed], tails[timed], owner[timed]
    cb_start = start[heads]
    period, rel_mad = interval_stats(owner, cb_start, n)
    with np.errstate(invalid="ignore"):
        inside = (period >= gate.min_period_ms) & (rel_mad <= gate.max_rel_mad)
    kept = inside[owner]
    heads, tails, owner, cb_start = heads[kept], tails[kept], owner[kept], cb_start[kept]
    cb_end = running_end[tails]
    cumulative = np.concatenate([[0], np.cumsum(octets)])
    cb_bytes = (cumulative[tails + 1] - cumulative[heads]).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        size = _median(cb_bytes, owner, n)
        size_spread = _median(np.abs(cb_bytes - size[owner]), owner, n)
        size_rel_mad = np.where(size > 0, size_spread / size, np.where(inside, 0.0, np.nan))
    duration = _median((cb_end - cb_start).astype(np.float64), owner, n)
    return Callbacks(count, longest, period, rel_mad, duration, size, size_rel_mad)


def assert_identical(got: Callbacks, want: Callbacks) -> None:
    assert got.count.dtype == want.count.dtype == np.int64
    for name in Callbacks.__dataclass_fields__:
        a, b = getattr(got, name), getattr(want, name)
        np.testing.assert_array_equal(a, b, err_msg=name, strict=True)
        assert (np.signbit(a) == np.signbit(b)).all(), name


def window(owners: list[list[tuple[int, int, int]]]) -> tuple[np.ndarray, ...]:
    """segment, start, elapsed, octets of per-owner lists of (start, elapsed, octets)."""
    rows = [(o, *flow) for o, flows in enumerate(owners) for flow in flows]
    columns = np.array(rows, dtype=np.int64).reshape(-1, 4).T
    return tuple(np.ascontiguousarray(c) for c in columns)


def check(owners: list[list[tuple[int, int, int]]], gate: CallbackGate) -> Callbacks:
    columns, n = window(owners), len(owners)
    got = _callbacks(columns, n, gate, np.ones(n, dtype=bool))
    assert_identical(got, reference(*columns, n, gate))
    # owners the gate does not ask for are not read: the others' statistics are the same
    even = np.arange(n) % 2 == 0
    some = _callbacks(columns, n, gate, even)
    assert (some.count[~even] == 0).all() and (some.longest_ms[~even] == 0).all()
    flowing = even & (got.count > 0)  # without flows, rel_mad is NaN or inf (no interval)
    for name in Callbacks.__dataclass_fields__:
        asked = flowing if name == "rel_mad" else even
        np.testing.assert_array_equal(getattr(some, name)[asked], getattr(got, name)[asked])
        if name not in ("count", "longest_ms", "rel_mad"):
            assert np.isnan(getattr(some, name)[~even]).all(), name
    return got


gates = st.builds(
    CallbackGate,
    st.sampled_from([0, 1, 1_000, 60_000]),
    st.integers(0, 5),
    st.sampled_from([0.0, 500.0, 64_000.0]),
    st.sampled_from([np.inf, 0.0, 0.2, 1.0]),
)


@st.composite
def owners(draw, *, steps, elapsed, octets, only_one: bool = False):
    """Owners (some without flows) with flows in time order; ``only_one``: flows in one."""
    n = draw(st.integers(1 if only_one else 0, 6))
    busy = draw(st.integers(0, n - 1)) if only_one else None
    base, out = draw(st.integers(0, 2**41)), []
    for o in range(n):
        flows = []
        if busy is None or o == busy:
            t = base + draw(st.integers(0, 2**32))
            for _ in range(draw(st.one_of(st.integers(0, 6), st.integers(17, 70)))):
                t += draw(steps)
                flows.append((t, draw(elapsed), draw(octets)))
        out.append(flows)
    return out


OCTETS = st.one_of(
    st.sampled_from([0, 1, 2**39 - 1, 2**39, 2**39 + 1]),
    st.integers(0, 10_000),
    st.integers(0, 2**45),
)


@settings(max_examples=400, deadline=None)
@given(
    owners(
        steps=st.one_of(st.sampled_from([0, 1, 999, 1_000, 1_001]), st.integers(0, 2**26)),
        elapsed=st.one_of(st.sampled_from([0, 1, 1_000]), st.integers(0, 2**29)),
        octets=OCTETS,
    ),
    gates,
)
def test_many_owners_as_numpy(flows, gate):
    check(flows, gate)


@settings(max_examples=200, deadline=None)
@given(
    owners(
        steps=st.one_of(st.sampled_from([0, 2**39, 2**40 + 3]), st.integers(0, 2**41)),
        elapsed=st.one_of(st.sampled_from([0, 2**39]), st.integers(0, 2**42)),
        octets=OCTETS,
        only_one=True,
    ),
    gates,
)
def test_huge_intervals_and_durations_as_numpy(flows, gate):
    """Intervals and durations over 2**39 ms: medians of the capped values, spreads from
    the uncapped ones (one busy owner: the numpy version is valid for any span there)."""
    check(flows, gate)


@pytest.mark.parametrize("order", ["random", "sorted", "reversed", "equal", "organ pipe"])
def test_long_owners_as_numpy(order):
    """Owners of hundreds of flows, values in orders that a quickselect finds hardest."""
    rng = np.random.default_rng(5)
    gaps = {
        "random": rng.integers(1, 10**6, 500),
        "sorted": np.arange(1, 501) * 7,
        "reversed": np.arange(500, 0, -1) * 7,
        "equal": np.full(500, 60_000),
        "organ pipe": np.concatenate([np.arange(250), np.arange(250, 0, -1)]) * 5 + 1,
    }[order]
    starts, sizes = np.cumsum(gaps) * 100, gaps % 5_000
    owners = [
        [(int(t), 10, int(b)) for t, b in zip(starts[:k], sizes[:k], strict=True)]
        for k in (0, 1, 2, 16, 17, 33, 299, 300, 500)
    ]
    got = check(owners, CallbackGate(0))
    assert got.count.tolist() == [0, 1, 2, 16, 17, 33, 299, 300, 500]


def test_exact_values():
    """A beacon every minute (one burst of four flows, two inside a longer one), one flow
    alone, one pair silent."""
    burst = [(60_000, 500, 100), (60_400, 2_000, 50), (60_500, 10, 0), (62_000, 10, 0)]
    beacon = [(0, 500, 100), *burst, (120_000, 500, 100)]
    got = check([beacon, [(5, 0, 7)], []], CallbackGate(1_000, min_count=2))
    assert got.count.tolist() == [3, 1, 0]
    assert got.longest_ms.tolist() == [2_400, 0, 0]  # the burst, 60_000 to 62_400
    assert got.period_ms.tolist()[0] == 60_000.0
    assert got.rel_mad.tolist() == [0.0, np.inf, np.inf]
    assert got.duration_ms.tolist()[0] == 500.0  # callbacks of 500, 2_400 and 500 ms
    assert got.size_median.tolist()[0] == 100.0  # 100, 150 and 100 bytes
    assert got.size_rel_mad.tolist()[0] == 0.0
    assert np.isnan(got.period_ms[1:]).all() and np.isnan(got.size_median[1:]).all()


def test_no_flows():
    got = check([[], []], CallbackGate(1_000))
    assert got.count.tolist() == [0, 0]
    assert np.isnan(got.rel_mad).all()


def test_capped_sizes():
    """Bytes over 2**39 count as 2**39 in a median, and spreads are capped the same way."""
    owners = [[(i * 60_000, 0, b) for i, b in enumerate([2**39 + 5, 2**41, 10])]]
    got = check(owners, CallbackGate(0))
    assert got.size_median.tolist() == [2.0**39]
    assert got.size_rel_mad.tolist() == [(2**39 - 10) / 2**39]


@pytest.mark.parametrize(
    ("segment", "start", "message"),
    [
        ([1, 0], [0, 0], "flow 1: owner 0 is not in [0, 2) and in order"),
        ([0, 2], [0, 0], "flow 1: owner 2 is not in [0, 2) and in order"),
        ([0, 0], [5, 4], "flow 1 starts before the one ahead of it in owner 0"),
    ],
)
def test_bad_windows(segment, start, message):
    zeros = np.zeros(2, dtype=np.int64)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(")", r"\)")):
        columns = (np.array(segment), np.array(start), zeros, zeros)
        _callbacks(columns, 2, CallbackGate(0), np.ones(2, dtype=bool))


def window_call(events: np.ndarray, first: list[int], count: list[int], room: int, sums: int):
    rows = [np.zeros(room, dtype=np.int64) for _ in range(5)]
    totals = [np.zeros(sums, dtype=np.int64) for _ in range(5)]
    first_, count_ = np.array(first, dtype=np.int64), np.array(count, dtype=np.int64)
    return _pairstats.window(events, first_, count_, -1, 10**9, *rows, *totals), rows, totals


def test_window_cuts_and_sums_each_run():
    """Pair 0's run holds starts 5, 50, 500 and pair 1's 700; the window (5, 500] keeps 50
    and 500 of pair 0 and nothing of pair 1."""
    events = np.zeros(4, dtype=EVENT_DTYPE)
    events["t"], events["elapsed"] = [5, 50, 500, 700], [1, 2, 3, 4]
    events["bytes"], events["packets"] = [10, 20, 30, 40], [1, 2, 3, 4]
    rows = [np.zeros(4, dtype=np.int64) for _ in range(5)]
    sums = [np.zeros(2, dtype=np.int64) for _ in range(5)]
    first, count = np.array([0, 3], dtype=np.int64), np.array([3, 1], dtype=np.int64)
    used = _pairstats.window(events, first, count, 5, 500, *rows, *sums)
    assert used == 2
    assert [r[:used].tolist() for r in rows] == [[0, 0], [50, 500], [2, 3], [20, 30], [2, 3]]
    assert [s.tolist() for s in sums] == [[2, 0], [50, 0], [5, 0], [5, 0], [500, -1]]


@pytest.mark.parametrize(
    ("first", "count", "room", "sums", "message"),
    [
        ([0], [5], 5, 1, r"pair 0's run \[0, \+5\) is outside the 4 records"),
        ([-1], [1], 1, 1, r"pair 0's run \[-1, \+1\) is outside the 4 records"),
        ([0, 2], [2, 2], 3, 2, "4 records need room, the columns have 3"),
        ([0], [1], 1, 2, "the five sums one an owner"),
    ],
)
def test_bad_window_calls_are_refused(first, count, room, sums, message):
    events = np.zeros(4, dtype=EVENT_DTYPE)
    with pytest.raises(ValueError, match=message):
        window_call(events, first, count, room, sums)
