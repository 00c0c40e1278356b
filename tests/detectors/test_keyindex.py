"""The key index: slots against a dict, growth, eviction, rebuild, and the kernel's checks."""

from __future__ import annotations

import numpy as np
import pytest

from silkwatch.detectors import _keyindex
from silkwatch.detectors.keyindex import KeyIndex


def dict_slots(seen: dict[tuple[int, ...], int], rows: np.ndarray) -> list[int]:
    """What the index must answer: first appearance order, like a dict."""
    return [seen.setdefault(tuple(row), len(seen)) for row in rows.tolist()]


def test_slots_equal_a_dict_over_many_batches_with_growth() -> None:
    rng = np.random.default_rng(1)
    index, seen = KeyIndex(5, seed=3), {}
    for size in (10, 1_000, 50_000, 7, 120_000):
        rows = rng.integers(0, 3_000, size=(size, 5)).astype(np.uint64)
        rows[:, 1:] = 0  # a few thousand distinct keys, repeated
        rows[: size // 2, 2] = rng.integers(0, 2**64 - 1, size // 2, dtype=np.uint64)
        assert index.slots(rows).tolist() == dict_slots(seen, rows)
    assert len(index) == len(seen) == 88_508
    assert index.keys.tolist()[:3] == [list(k) for k in list(seen)[:3]]


def test_what_a_lookup_reserved_for_known_keys_is_given_back() -> None:
    """A million rows of 15 hosts: the index ends holding room for 15 keys, not a million."""
    index = KeyIndex(2, seed=0)
    rows = np.repeat(np.arange(15, dtype=np.uint64), 66_667)[:1_000_000]
    slots = index.slots(np.stack([rows, rows], axis=1))
    assert len(index) == 15 and slots[-1] == 14
    assert index.nbytes == (15 + 3 + 1_024) * 16 + 4_096 * 4  # rows and the smallest table
    assert index.slots(np.array([[99, 99]], dtype=np.uint64)).tolist() == [15]
    assert index.find(np.array([[7, 7], [99, 99], [5, 6]], dtype=np.uint64)).tolist() == [7, 15, -1]


def test_seed_changes_the_table_not_the_slots() -> None:
    rows = np.arange(3_000, dtype=np.uint64).reshape(-1, 3) % 97
    assert KeyIndex(3, seed=1).slots(rows).tolist() == KeyIndex(3, seed=2).slots(rows).tolist()


def test_keep_renumbers_and_new_keys_follow() -> None:
    index = KeyIndex(1, seed=0)
    index.slots(np.arange(10, dtype=np.uint64))
    remap = index.keep(np.arange(10) % 3 == 0)
    assert remap.tolist() == [0, -1, -1, 1, -1, -1, 2, -1, -1, 3]
    assert index.slots(np.array([9, 4, 0], dtype=np.uint64)).tolist() == [3, 4, 0]
    assert index.keys.ravel().tolist() == [0, 3, 6, 9, 4]


def test_from_keys_rebuilds_and_refuses_repeats() -> None:
    keys = np.array([[5, 1], [6, 2], [7, 3]], dtype=np.uint64)
    index = KeyIndex.from_keys(keys)
    assert index.slots(np.array([[7, 3], [8, 8], [5, 1]], dtype=np.uint64)).tolist() == [2, 3, 0]
    with pytest.raises(ValueError, match="not distinct"):
        KeyIndex.from_keys(np.array([[1, 1], [1, 1]], dtype=np.uint64))
    with pytest.raises(ValueError, match="2-D"):
        KeyIndex.from_keys(np.zeros(3, dtype=np.uint64))


def test_kernel_checks_every_size_it_is_given() -> None:
    table, stored = np.zeros(8, np.int32), np.zeros((4, 2), np.uint64)
    queries, out = np.ones((3, 2), np.uint64), np.zeros(3, np.int32)
    with pytest.raises(ValueError, match="power-of-two"):
        _keyindex.lookup(np.zeros(6, np.int32), stored, 0, 2, 0, queries, out, True)
    with pytest.raises(ValueError, match="twice"):  # 2 * (used + n) > table
        _keyindex.lookup(table, stored, 2, 2, 0, queries, out, True)
    with pytest.raises(ValueError, match="int32"):
        _keyindex.lookup(table, stored, 0, 2, 0, queries, np.zeros(2, np.int32), True)
    with pytest.raises(ValueError, match="rows of width"):
        _keyindex.lookup(table, stored, 0, 3, 0, queries, out, True)
    corrupt = np.full(8, 99, np.int32)  # points past the stored keys
    with pytest.raises(ValueError, match="past the stored keys"):
        _keyindex.lookup(corrupt, stored, 1, 2, 0, queries[:1], out[:1], True)


def test_merge_events_checks_every_size_it_is_given() -> None:
    old, counts = np.zeros(3, "V16"), np.array([2, 1])
    slots, new = np.array([1], np.int32), np.zeros(1, "V16")
    out = (np.empty(2, np.int64), np.empty(2, np.int64))
    events = (np.empty(4, "V16"), np.empty(4, np.int32), np.empty(4, "V16"))
    args = (old, counts, slots, new, 10, 5)
    assert _keyindex.merge_events(*args, *out, *events) == (4, 0)
    with pytest.raises(ValueError, match="add up to the old events"):
        _keyindex.merge_events(old, np.array([1, 1]), *args[2:], *out, *events)
    with pytest.raises(ValueError, match="old \\+ new items"):
        _keyindex.merge_events(*args, *out, np.empty(3, "V16"), *events[1:])
    with pytest.raises(ValueError, match="slot 2 outside the 2 slots"):
        _keyindex.merge_events(old, counts, np.array([2], np.int32), *args[3:], *out, *events)
