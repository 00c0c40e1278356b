"""The hash grouping kernel against numpy's own grouping."""

from __future__ import annotations

import numpy as np
import pytest

from silkwatch.detectors._hashgroup import hash_group


@pytest.mark.parametrize("rows", [1, 1000, 100_000])
def test_group_ids_follow_first_appearance_and_match_np_unique(rows):
    rng = np.random.default_rng(rows)
    keys = rng.choice(rng.integers(0, 2**64, 5_000, dtype=np.uint64), rows)
    group_of, first_row = np.empty(rows, np.int64), np.empty(rows, np.int64)
    count = hash_group(keys, group_of, first_row)
    uniques, first_index = np.unique(keys, return_index=True)
    assert count == len(uniques)
    assert sorted(first_row[:count].tolist()) == sorted(first_index.tolist())
    assert first_row[:count].tolist() == sorted(first_row[:count].tolist())  # appearance order
    assert (keys[first_row[:count]][group_of] == keys).all()


def test_calls_after_a_bigger_one_start_from_an_empty_table():
    hash_group(
        np.arange(50_000, dtype=np.uint64), np.empty(50_000, np.int64), np.empty(50_000, np.int64)
    )
    group_of, first_row = np.empty(4, np.int64), np.empty(4, np.int64)
    assert hash_group(np.array([7, 3, 7, 7], np.uint64), group_of, first_row) == 2
    assert group_of.tolist() == [0, 1, 0, 0] and first_row[:2].tolist() == [0, 1]


def test_buffers_of_the_wrong_size_are_refused():
    with pytest.raises(ValueError, match="n 8-byte items"):
        hash_group(np.zeros(3, np.uint64), np.empty(2, np.int64), np.empty(3, np.int64))


def test_the_table_grows_mid_call_without_losing_a_group():
    hash_group(np.zeros(1, np.uint64), np.empty(1, np.int64), np.empty(1, np.int64))  # small hint
    keys = np.random.default_rng(9).permutation(300_000).astype(np.uint64) * np.uint64(7919)
    group_of, first_row = np.empty(300_000, np.int64), np.empty(300_000, np.int64)
    assert hash_group(keys, group_of, first_row) == 300_000  # grew 1,024 → 1,048,576 slots
    assert group_of.tolist() == list(range(300_000))
    assert first_row.tolist() == list(range(300_000))
