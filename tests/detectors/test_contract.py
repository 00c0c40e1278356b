"""The contract every aggregate and scorer meets (style.md, river's check suite).

The aggregates are the stream's columnar states: every class of
:mod:`silkwatch.detectors` with the :class:`~silkwatch.detectors.aggregate.Aggregate`
methods (``empty / update / merge / result``), found by walking the package, so a new
one cannot escape this suite. Split-equals-whole, in any order and through ``merge``, is
what makes the embedded runner and the Kafka workers (batches of other sizes, a
partition each) hold the same numbers. Scorers are discovered from the engine's registry
(:data:`silkwatch.detectors.scoring.PAIR_SCORERS`) plus the exfiltration scorer, and must
read their mappings without changing them, repeat themselves, and not depend
on the order a mapping was filled in.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pickle
import pkgutil
from collections.abc import Callable, Iterable
from functools import cache

import numpy as np
import pytest

import silkwatch.detectors
from silkwatch.detectors.aggregate import Aggregate
from silkwatch.detectors.exfil import score_exfil
from silkwatch.detectors.hosts import host_deltas
from silkwatch.detectors.hoststate import HostHours
from silkwatch.detectors.pairs import PairConfig
from silkwatch.detectors.pairstate import PairState
from silkwatch.detectors.schema import make_batch
from silkwatch.detectors.scoring import PAIR_SCORERS
from silkwatch.detectors.synthetic import synthetic_day
from silkwatch.detectors.timebins import VolumeCounter
from tests.detectors.folding import fold_pairs

HOUR_MS = 3_600_000


def discover_aggregates() -> dict[str, type]:
    """Every class defined in :mod:`silkwatch.detectors` that is an :class:`Aggregate`."""
    package = silkwatch.detectors
    found = {}
    for module_info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        module = importlib.import_module(module_info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            mine = cls.__module__ == module.__name__ and cls is not Aggregate
            if mine and issubclass(cls, Aggregate):
                found[name] = cls
    return found


_TIGHT = PairConfig(window_ms=2 * HOUR_MS, max_events=16)

#: how the contract builds each aggregate class: case name → a fresh state (river's
#: ``_unit_test_params``). Bins use a load scheme that puts a flow's whole volume in one
#: bin: whole numbers add up exactly in any order, where shares of a flow would move
#: the last bit of a double with the order of the additions.
SETTINGS: dict[str, dict[str, Callable[[], Aggregate]]] = {
    "PairState": {
        "pairs": lambda: PairState(seed=1),
        "pairs-trimmed": lambda: PairState(_TIGHT, seed=1),
    },
    "HostHours": {
        "hosts-sent": lambda: HostHours("sent", seed=1),
        "hosts-received": lambda: HostHours("received", seed=1),
    },
    "VolumeCounter": {
        "bins": lambda: VolumeCounter(bin_ms=300_000, scheme="start-spike", origin_ms=0),
    },
}
AGGREGATES = {
    case: make for name in discover_aggregates() for case, make in SETTINGS.get(name, {}).items()
}
#: with a 2 h window, most flows of parts fed in reverse arrive too old to keep (stale)
IN_ORDER_ONLY = {"pairs-trimmed"}


def test_every_aggregate_is_discovered_and_has_settings():
    assert sorted(discover_aggregates()) == sorted(SETTINGS)


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


def _fed(make: Callable[[], Aggregate], batches: Iterable[np.ndarray]) -> Aggregate:
    state = make()
    for batch in batches:
        state.update(batch)
    return state


def _fold(make: Callable[[], Aggregate], batches: Iterable[np.ndarray]) -> object:
    return _fed(make, batches).result()


def _orders(case: str, parts: list[np.ndarray]) -> list[list[np.ndarray]]:
    """The parts in time order and, where the aggregate keeps old flows, reversed
    (late batches, another partition's view)."""
    return [parts] if case in IN_ORDER_ONLY else [parts, parts[::-1]]


@pytest.fixture(params=sorted(AGGREGATES))
def case(request) -> str:
    return request.param


def test_the_contract_day_fills_every_aggregate(case):
    """Guard: a suite comparing empty results would prove nothing."""
    sizes = {"pairs": 11561, "pairs-trimmed": 11561, "hosts-sent": 944,
             "hosts-received": 944, "bins": 144}  # fmt: skip
    assert len(_fold(AGGREGATES[case], [_flows()])) == sizes[case]


def test_input_unchanged(case):
    batch = _flows().copy()
    _fold(AGGREGATES[case], [batch])
    assert np.array_equal(batch, _flows())


def test_empty_result_is_stable(case):
    make = AGGREGATES[case]
    fresh = make()
    assert fresh.result() == fresh.result() == make().result()
    assert _fold(make, [make_batch()]) == fresh.result()
    assert _fed(make, [_flows()]).empty().result() == fresh.result()


def test_row_order_irrelevant(case):
    shuffled = _flows()[np.random.default_rng(0).permutation(len(_flows()))]
    assert _fold(AGGREGATES[case], [shuffled]) == _fold(AGGREGATES[case], [_flows()])


@pytest.mark.parametrize("parts", [2, 7])
def test_split_equals_whole(case, parts):
    make = AGGREGATES[case]
    whole = _fold(make, [_flows()])
    for batches in _orders(case, np.array_split(_flows(), parts)):
        assert _fold(make, batches) == whole


@pytest.mark.parametrize("parts", [2, 7])
def test_merge_equals_whole(case, parts):
    """Each part fed to a state of its own, the states merged one after the other."""
    make = AGGREGATES[case]
    whole = _fold(make, [_flows()])
    for batches in _orders(case, np.array_split(_flows(), parts)):
        merged = _fed(make, batches[:1])
        for batch in batches[1:]:
            merged.merge(_fed(merged.empty, [batch]))
        assert merged.result() == whole


def test_reading_the_result_changes_nothing(case):
    make = AGGREGATES[case]
    state = make()
    for batch in np.array_split(_flows(), 5):
        state.update(batch)
        first = state.result()
        assert state.result() == first
    assert state.result() == _fold(make, [_flows()])


def test_one_seed_one_result(case):
    make = AGGREGATES[case]
    assert _fold(make, [_draw(11)]) == _fold(make, [_flows(11)])
    assert _fold(make, [_draw(12)]) != _fold(make, [_flows(11)])


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
