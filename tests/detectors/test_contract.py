"""The contract every keyed aggregate and scorer meets (style.md, river's check suite).

The aggregates are the stream's columnar state (:mod:`silkwatch.detectors.pairstate`,
:mod:`silkwatch.detectors.hoststate`): split-equals-whole, in any order, is what makes
the embedded runner and the Kafka workers (batches of other sizes, a partition
each) hold the same numbers. Scorers are discovered from the engine's registry
(:data:`silkwatch.detectors.scoring.PAIR_SCORERS`) plus the exfiltration scorer, and must
read their mappings without changing them, repeat themselves, and not depend
on the order a mapping was filled in.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest

from silkwatch.detectors.exfil import score_exfil
from silkwatch.detectors.hosts import host_deltas
from silkwatch.detectors.hoststate import HostHours
from silkwatch.detectors.pairs import PairConfig
from silkwatch.detectors.pairstate import PairState
from silkwatch.detectors.schema import make_batch
from silkwatch.detectors.scoring import PAIR_SCORERS
from silkwatch.detectors.synthetic import synthetic_day
from tests.detectors.folding import fold_pairs

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Aggregate:
    """A columnar aggregate: a fresh state, its update, and a comparable view of it."""

    name: str
    empty: Callable[[], object]
    update: Callable[[object, np.ndarray], object]
    view: Callable[[object], dict]


_TIGHT = PairConfig(window_ms=2 * HOUR_MS, max_events=16)


def _pair_view(state: PairState) -> dict:
    state.compact()
    return {
        key: (h.events.tobytes(), h.sport_lo, h.sport_hi)
        for key, h in state.histories(np.flatnonzero(state.counts > 0)).items()
    }


def _host_view(hosts: HostHours) -> dict:
    return {
        (bytes(hosts.index.keys[s].tobytes()), int(hosts.hours[s])): hosts.at(s)
        for s in range(len(hosts))
    }


AGGREGATES = [
    Aggregate("pairs", lambda: PairState(seed=1), lambda s, b: s.update(b), _pair_view),
    Aggregate("pairs-trimmed", lambda: PairState(_TIGHT, seed=1), lambda s, b: s.update(b),
              _pair_view),
    Aggregate("hosts-sent", lambda: HostHours(seed=1), lambda s, b: s.update(b, b["sip"]),
              _host_view),
    Aggregate("hosts-received", lambda: HostHours(seed=1), lambda s, b: s.update(b, b["dip"]),
              _host_view),
]  # fmt: skip


def _draw(seed: int) -> np.ndarray:
    """Half a synthetic day of a small network: web, DNS, NTP, beacons, a tunnel, plus
    a retry storm and a scheduled upload (the cases of ``silkwatch/evaluation/cases.py``)."""
    from silkwatch.evaluation.cases import CASES

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
    state = aggregate.empty()
    for batch in batches:
        aggregate.update(state, batch)
    return aggregate.view(state)


@pytest.fixture(params=AGGREGATES, ids=lambda a: a.name)
def aggregate(request) -> Aggregate:
    return request.param


def test_input_unchanged(aggregate):
    batch = _flows().copy()
    _fold(aggregate, [batch])
    assert np.array_equal(batch, _flows())


def test_empty_batch_accepted(aggregate):
    assert _fold(aggregate, [make_batch()]) == {}


def test_row_order_irrelevant(aggregate):
    shuffled = _flows()[np.random.default_rng(0).permutation(len(_flows()))]
    assert _fold(aggregate, [shuffled]) == _fold(aggregate, [_flows()])


@pytest.mark.parametrize("parts", [2, 7])
def test_split_equals_whole(aggregate, parts):
    whole = _fold(aggregate, [_flows()])
    assert _fold(aggregate, np.array_split(_flows(), parts)) == whole
    if aggregate.name == "pairs-trimmed":
        return  # in reverse, most flows arrive older than a 2 h window: dropped as stale
    # the same parts in the reverse order (late batches, another partition's view)
    assert _fold(aggregate, reversed(np.array_split(_flows(), parts))) == whole


def test_one_seed_one_result(aggregate):
    assert _fold(aggregate, [_draw(11)]) == _fold(aggregate, [_flows(11)])
    assert _fold(aggregate, [_draw(12)]) != _fold(aggregate, [_flows(11)])


# --- scorers: read whole mappings, keep no hidden state ----------------------------------


def _now_ms() -> int:
    return int(_flows()["stime_ms"].max())


def _exfil(states):
    hour = _now_ms() - _now_ms() % HOUR_MS
    return score_exfil(states["sent"], states["received"], hour_start_ms=hour - HOUR_MS)


def _pair_scorer(score):
    return lambda states: score(states["pairs"], now_ms=_now_ms())


SCORERS = {s.attribute: _pair_scorer(s.score) for s in PAIR_SCORERS} | {"exfil": _exfil}


def _states(batches) -> dict[str, dict]:
    """The scorers' inputs as the stream builds them (pairs) and as one batch gives them
    (hosts: the exfiltration scorer's sketches come with :func:`host_deltas`)."""
    batches = list(batches)
    sent, received = host_deltas(np.concatenate(batches))
    return {"pairs": fold_pairs(batches), "sent": sent, "received": received}


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


def test_alerts_are_plain_json(scorer):
    alerts = [a.to_dict() for a in scorer(_states([_flows()]))]
    assert json.loads(json.dumps(alerts)) == alerts


def test_the_contract_day_has_alerts_to_compare():
    """Guard: a suite comparing empty lists would prove nothing."""
    states = _states([_flows()])
    counts = {name: len(scorer(states)) for name, scorer in SCORERS.items()}
    # beacons: the day's three and the scheduled upload, periodic enough for both scorers
    assert counts == {"beacon": 4, "dns": 1, "exfil": 0, "strobe": 1, "upload": 1}
