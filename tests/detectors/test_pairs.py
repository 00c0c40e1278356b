"""Per-pair history: grouping, hourly totals, window trimming, combining, shedding."""

from __future__ import annotations

import pytest

from silkwatch.detectors.pairs import (
    PairConfig,
    pair_deltas,
    pair_label,
)
from silkwatch.detectors.schema import make_batch

H = 3_600_000


def _batch():
    return make_batch(
        sip=["10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.1", "2001:db8::1"],
        dip=["1.2.3.4", "1.2.3.4", "1.2.3.4", "1.2.3.4", "2001:db8::53"],
        sport=[40001, 40002, 40003, 40004, 5353],
        dport=[443, 443, 443, 80, 53],
        proto=[6, 6, 6, 6, 17],
        stime_ms=[H + 5, 10, 20, 30, 40],
        elapsed_ms=[100, 200, 300, 400, 500],
        bytes=[1_000, 2_000, 3_000, 4_000, 5_000],
        packets=[10, 20, 30, 40, 50],
    )


def test_groups_by_pair_with_exact_totals_events_and_ports():
    deltas = pair_deltas(_batch())
    rows = {
        pair_label(key): (
            value.hour_ms.tolist(),
            value.hour_totals.tolist(),
            value.events.tolist(),
            (value.sport_lo, value.sport_hi),
        )
        for key, value in deltas.items()
    }
    assert rows == {
        "10.0.0.1 -> 1.2.3.4:443/6": (
            [0, H],
            [[1, 2_000, 20, 200], [1, 1_000, 10, 100]],
            [[10, 200, 2_000, 20], [H + 5, 100, 1_000, 10]],
            (40001, 40002),
        ),
        "10.0.0.1 -> 1.2.3.4:80/6": (
            [0],
            [[1, 4_000, 40, 400]],
            [[30, 400, 4_000, 40]],
            (40004, 40004),
        ),
        "10.0.0.2 -> 1.2.3.4:443/6": (
            [0],
            [[1, 3_000, 30, 300]],
            [[20, 300, 3_000, 30]],
            (40003, 40003),
        ),
        "2001:db8::1 -> 2001:db8::53:53/17": (
            [0],
            [[1, 5_000, 50, 500]],
            [[40, 500, 5_000, 50]],
            (5353, 5353),
        ),
    }


def test_empty_batch_gives_no_pairs():
    assert pair_deltas(make_batch()) == {}


@pytest.mark.parametrize(
    ("config", "expected_starts", "expected_hours"),
    [
        # window 2 h from the newest start (3 h): starts after 1 h are kept, and the
        # hours overlapping (1 h, 3 h]; hour 0 ends exactly at the horizon
        (PairConfig(window_ms=2 * H), [H + 1, 2 * H, 3 * H], [H, 2 * H, 3 * H]),
        # cap of 2 events keeps the newest two; hours stay exact
        (PairConfig(max_events=2), [2 * H, 3 * H], [0, H, 2 * H, 3 * H]),
        (PairConfig(window_ms=H // 2), [3 * H], [2 * H, 3 * H]),
    ],
)
def test_trimming_is_relative_to_the_newest_event(config, expected_starts, expected_hours):
    b = make_batch(sip=["10.0.0.1"] * 4, dip=["1.1.1.1"] * 4, stime_ms=[0, H + 1, 2 * H, 3 * H])
    [history] = pair_deltas(b, config).values()
    assert history.events[:, 0].tolist() == expected_starts
    assert history.hour_ms.tolist() == expected_hours


def test_totals_since_counts_whole_hours():
    b = make_batch(sip=["10.0.0.1"] * 3, dip=["1.1.1.1"] * 3, stime_ms=[0, H + 10, 2 * H + 10],
                   bytes=[1, 10, 100], packets=[1, 1, 1])  # fmt: skip
    [history] = pair_deltas(b).values()
    assert history.totals(H + 500).tolist() == [2, 110, 2, 0]


@pytest.mark.parametrize(
    ("sports", "dport", "reply"),
    [([443], 51234, True), ([443, 443], 51234, True), ([51234], 443, False),
     ([40000, 40001], 443, False), ([40000, 40001], 50000, False)],
)  # fmt: skip
def test_is_reply(sports, dport, reply):
    n = len(sports)
    b = make_batch(sip=["1.1.1.1"] * n, dip=["10.0.0.1"] * n, sport=sports, dport=[dport] * n)
    [history] = pair_deltas(b).values()
    assert history.is_reply(dport) is reply
