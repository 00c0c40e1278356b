"""The contract every keyed aggregate and scorer meets (style.md, river's check suite).

Split-equals-whole is what makes the Faust path (one combine per batch and
partition) and the embedded runner (one dict) report the same numbers; the
other checks keep state safe to store (pickle), reproducible (one seed, one
result) and free of hidden order or mutation effects.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest

from detectors.beacon import score_beacons
from detectors.dns import score_dns_tunnels
from detectors.exfil import score_exfil
from detectors.hosts import combine_hosts, host_deltas
from detectors.pairs import PairConfig, combine_pairs, pair_deltas
from detectors.schema import make_batch
from detectors.strobe import score_strobes
from detectors.synthetic import synthetic_day
from detectors.upload import score_uploads

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Aggregate:
    """A keyed aggregate: per-batch deltas and the combine the tables apply."""

    name: str
    deltas: Callable[[np.ndarray], dict]
    combine: Callable[[object, object], object]


_TIGHT = PairConfig(window_ms=2 * HOUR_MS, max_events=16)

AGGREGATES = [
    Aggregate("pairs", pair_deltas, combine_pairs),
    Aggregate(
        "pairs-trimmed",
        lambda b: pair_deltas(b, _TIGHT),
        lambda old, new: combine_pairs(old, new, _TIGHT),
    ),
    Aggregate("hosts-sent", lambda b: host_deltas(b)[0], combine_hosts),
    Aggregate("hosts-received", lambda b: host_deltas(b)[1], combine_hosts),
]


def _draw(seed: int) -> np.ndarray:
    """Half a synthetic day of a small network: web, DNS, NTP, beacons, a tunnel, plus
    a retry storm and a scheduled upload (the cases of ``bench/cases.py``)."""
    from bench.cases import CASES

    day = synthetic_day(seed, hosts=24)
    rng = np.random.default_rng(seed)
    extra = [b for c in CASES if c.name in ("strobe", "periodic upload")
             for b in c.flows(day.start_ms - 6 * HOUR_MS, rng)]  # fmt: skip
    flows = np.concatenate([*day.batches, *extra])
    flows = flows[np.argsort(flows["stime_ms"], kind="stable")]
    return flows[flows["stime_ms"] < day.start_ms + 12 * HOUR_MS]


@cache
def _flows(seed: int = 11) -> np.ndarray:
    return _draw(seed)


def _fold(aggregate: Aggregate, batches) -> dict:
    state: dict = {}
    for batch in batches:
        for key, value in aggregate.deltas(batch).items():
            state[key] = aggregate.combine(state.get(key), value)
    return state


@pytest.fixture(params=AGGREGATES, ids=lambda a: a.name)
def aggregate(request) -> Aggregate:
    return request.param


def test_input_unchanged(aggregate):
    batch = _flows().copy()
    aggregate.deltas(batch)
    assert np.array_equal(batch, _flows())


def test_empty_batch_accepted(aggregate):
    assert aggregate.deltas(make_batch()) == {}


def test_row_order_irrelevant(aggregate):
    shuffled = _flows()[np.random.default_rng(0).permutation(len(_flows()))]
    assert aggregate.deltas(shuffled) == aggregate.deltas(_flows())


@pytest.mark.parametrize("parts", [2, 7])
def test_split_equals_whole(aggregate, parts):
    whole = aggregate.deltas(_flows())
    assert _fold(aggregate, np.array_split(_flows(), parts)) == whole
    # the same parts combined in the reverse order (another partition's view)
    assert _fold(aggregate, reversed(np.array_split(_flows(), parts))) == whole


def test_combine_is_associative(aggregate):
    a, b, c = (aggregate.deltas(part) for part in np.array_split(_flows(), 3))
    for key in set(a) & set(b) & set(c):
        left = aggregate.combine(aggregate.combine(a[key], b[key]), c[key])
        right = aggregate.combine(a[key], aggregate.combine(b[key], c[key]))
        assert left == right


def test_state_survives_pickle(aggregate):
    state = aggregate.deltas(_flows())
    assert pickle.loads(pickle.dumps(state)) == state


def test_one_seed_one_result(aggregate):
    assert aggregate.deltas(_draw(11)) == aggregate.deltas(_flows(11))
    assert aggregate.deltas(_draw(12)) != aggregate.deltas(_flows(11))


# --- scorers: read whole mappings, keep no hidden state ----------------------------------


def _now_ms() -> int:
    return int(_flows()["stime_ms"].max())


def _beacons(states):
    return score_beacons(states["pairs"], now_ms=_now_ms())


def _dns(states):
    return score_dns_tunnels(states["pairs"], now_ms=_now_ms())


def _exfil(states):
    hour = _now_ms() - _now_ms() % HOUR_MS
    return score_exfil(states["sent"], states["received"], hour_start_ms=hour - HOUR_MS)


def _strobes(states):
    return score_strobes(states["pairs"], now_ms=_now_ms())


def _uploads(states):
    return score_uploads(states["pairs"], now_ms=_now_ms())


SCORERS = {
    "beacons": _beacons,
    "dns": _dns,
    "exfil": _exfil,
    "strobes": _strobes,
    "uploads": _uploads,
}


def _states(batches) -> dict[str, dict]:
    return {
        "pairs": _fold(AGGREGATES[0], batches),
        "sent": _fold(AGGREGATES[2], batches),
        "received": _fold(AGGREGATES[3], batches),
    }


@pytest.fixture(params=sorted(SCORERS))
def scorer(request):
    return SCORERS[request.param]


def test_scorer_leaves_mappings_unchanged_and_repeats_itself(scorer):
    states = _states([_flows()])
    before = pickle.dumps(states)
    first = scorer(states)
    assert pickle.dumps(states) == before
    assert scorer(states) == first


def test_scorer_accepts_empty_mappings(scorer):
    assert scorer({"pairs": {}, "sent": {}, "received": {}}) == []


def test_scorer_ignores_mapping_order(scorer):
    states = _states([_flows()])
    reordered = {name: dict(reversed(list(state.items()))) for name, state in states.items()}
    assert scorer(reordered) == scorer(states)


def test_scorer_split_equals_whole(scorer):
    assert scorer(_states(np.array_split(_flows(), 5))) == scorer(_states([_flows()]))


def test_alerts_survive_pickle(scorer):
    alerts = scorer(_states([_flows()]))
    assert pickle.loads(pickle.dumps(alerts)) == alerts


def test_the_contract_day_has_alerts_to_compare():
    """Guard: a suite comparing empty lists would prove nothing."""
    states = _states([_flows()])
    counts = {name: len(scorer(states)) for name, scorer in SCORERS.items()}
    # beacons: the day's three and the scheduled upload, periodic enough for both scorers
    assert counts == {"beacons": 4, "dns": 1, "exfil": 0, "strobes": 1, "uploads": 1}
