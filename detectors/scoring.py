"""The registry of pair scorers the detection engine runs, each with its prefilter.

A :class:`PairScorer` is a scorer over pair histories plus a *prefilter*: a
vectorised test over :class:`silkwatch.detectors.pairfeatures.PairFeatures` that keeps
the pairs the scorer's own first gates would not reject. The engine computes
the features of every changed pair in one pass, and each scorer sees only the
pairs its prefilter keeps (through a :class:`silkwatch.detectors.pairstate.PairView`, in
which every other pair is still reachable by key). A prefilter must be a
necessary condition of the scorer's alerts: ``tests/detectors/test_scoring.py``
runs every scorer with and without it and asks for the same alerts.

A new kind of pair detector is one module with one ``score_*`` function, and
one :class:`PairScorer` line here with its prefilter (``_anything`` keeps
every pair with a flow in the window: correct, but slow on a busy network).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from silkwatch.detectors.alerts import Alert
from silkwatch.detectors.beacon import BeaconConfig, Population, periodic_parts, score_beacons
from silkwatch.detectors.dns import DNS_PORT, UDP, DnsConfig, DnsPopulation, score_dns_tunnels
from silkwatch.detectors.keyindex import KeyIndex
from silkwatch.detectors.pairfeatures import (
    CallbackGate,
    PairFeatures,
    among,
    interval_stats,
    pair_features,
)
from silkwatch.detectors.pairstate import PairState
from silkwatch.detectors.site import is_broadcast
from silkwatch.detectors.strobe import StrobeConfig, score_strobes
from silkwatch.detectors.upload import UploadConfig, score_uploads

#: statistics rounded by the scorers (``interval_timing`` keeps 6 places) pass a prefilter
#: this close to its threshold
_SLACK = 1e-6
#: a gate's ``min_count`` when no interval statistics are wanted, only the merged callbacks
_NO_TIMING = 2**62


@dataclass(frozen=True)
class PairScorer:
    """One kind of pair detector as the engine runs it.

    :param attribute: its section of :class:`silkwatch.detectors.config.DetectorsConfig`
    :param score: ``score(pairs, *, now_ms, config, site, **extra) -> list[Alert]``
    :param prefilter: ``prefilter(features, config) -> bool array``, a necessary
        condition of an alert, per pair
    :param gates: the callback gaps its statistics use, and the timing its
        prefilter accepts at the loosest (from its config), if it reads callbacks
    :param population: ``population(pairs, features, now_ms, config)``: what the
        scorer must know of the pairs its prefilter left out (passed to it as
        ``population=``), if anything
    :param by_host: the scorer judges source hosts over all their pairs (it must
        see every pair of a host whenever one of them changed)
    :param narrow: ``narrow(pairs, features, keep, population, config)``: of the
        kept pairs, those that can still alert (or change another's alert) once
        the population is known; a necessary condition like the prefilter
    """

    attribute: str
    score: Callable[..., list[Alert]]
    prefilter: Callable[[PairFeatures, Any], np.ndarray]
    gates: Callable[[Any], tuple[CallbackGate, ...]] | None = None
    population: Callable[[PairState, PairFeatures, int, Any], Any] | None = None
    by_host: bool = False
    narrow: Callable[[PairState, PairFeatures, np.ndarray, Any, Any], np.ndarray] | None = None


def _beacon(f: PairFeatures, c: BeaconConfig) -> np.ndarray:
    """``_periodic_candidate``'s gates, or a possible long session."""
    return among(f.proto, c.protocols) & (_maybe_periodic(f, c) | _maybe_session(f, c))


def _maybe_periodic(f: PairFeatures, c: BeaconConfig) -> np.ndarray:
    """``_periodic_candidate``'s gates on the callbacks' count, timing, duration and sizes."""
    cb = f.callbacks[c.callback_gap_ms]
    with np.errstate(invalid="ignore"):
        return (
            ~among(f.dport, c.skip_dports)
            & (cb.count >= c.min_callbacks)
            & (2 * f.sport_span >= cb.count)
            & (cb.period_ms >= c.min_period_ms)
            & (cb.rel_mad < c.max_interval_rel_mad + _SLACK)
            & (cb.duration_ms <= c.max_duty_cycle * cb.period_ms + _SLACK)
            & (cb.size_rel_mad < c.max_size_rel_mad + _SLACK)
        )


def _maybe_session(f: PairFeatures, c: BeaconConfig) -> np.ndarray:
    """The window's flows merged as ``_long_session`` merges them hold a session long enough.

    Its gate leaves out the protocols and ports ``_long_session`` skips. On the demo
    day, 1,962 of the 2,032 pairs the beacon scorer read were there only as possible
    sessions by the looser bound (durations plus gaps), and none was one.
    """
    return f.callbacks[c.session_gap_ms].longest_ms >= c.session_min_duration_ms


def _beacon_narrow(
    pairs: PairState, f: PairFeatures, keep: np.ndarray, population: Population, c: BeaconConfig
) -> np.ndarray:
    """The kept pairs that can still matter once prevalence is known.

    A periodic pair whose raw score (bounded from the features,
    :func:`_raw_bound`) stays under the alert score after prevalence damping
    (fan-out only lowers it further, and a campaign counts at most
    ``campaign_max_hosts`` sources as one) cannot alert as a beacon. It still
    matters as a possible long session, and as a fan-out peer of its source's
    other beacons (when its raw score can reach ``fanout_min_raw``), so it is kept
    when it may be a session, or when its source has a periodic pair that can alert.
    On a workstation network this removes the thousands of hosts polling one
    telemetry service every hour, the bulk of the periodic pairs.
    """
    sharing = np.zeros(len(f.slots), dtype=np.float64)
    kept = np.flatnonzero(keep)
    raw = pairs.index.keys[f.slots[kept], 2:4].astype(">u8").tobytes()
    sharing[kept] = [population.sharing.get(raw[16 * i : 16 * i + 16], 0) for i in range(len(kept))]
    fewest = np.maximum(sharing - c.campaign_max_hosts + 1, 1)  # after a campaign's discount
    share = fewest / max(population.total_hosts, 1)
    prevalence = np.where(
        fewest >= c.prevalence_min_hosts,
        c.prevalence_weight * np.minimum(share / c.prevalence_full_share, 1.0),
        0.0,
    )
    periodic = keep & _maybe_periodic(f, c)
    raw = _raw_bound(f, c)
    can_alert = periodic & (raw * (1.0 - prevalence) >= c.alert_score - 1e-4)  # rounded scores
    peer = np.isin(f.source_host, f.source_host[can_alert]) & (raw >= c.fanout_min_raw - 1e-9)
    return (keep & _maybe_session(f, c)) | can_alert | (periodic & peer)


def _raw_bound(f: PairFeatures, c: BeaconConfig) -> np.ndarray:
    """Per pair, at least ``_periodic_candidate``'s raw score (NaN where not periodic).

    The same parts from the features' statistics, with the timing and size
    spreads loosened by the rounding slack and the quartile skew taken at its
    best (0), so the bound never falls below the score the scorer computes.
    """
    cb = f.callbacks[c.callback_gap_ms]
    with np.errstate(invalid="ignore", divide="ignore"):
        _, raw = periodic_parts(
            cb.rel_mad - _SLACK,
            0.0,
            cb.size_rel_mad - _SLACK,
            f.bytes / np.maximum(f.packets, 1),
            cb.count,
            c,
        )
    return raw


def _dns(f: PairFeatures, c: DnsConfig) -> np.ndarray:
    """The DNS pairs of hosts that could hold one of ``_host_alert``'s four signs.

    A host's signs add up over all of its DNS pairs, so a host passes or fails
    whole: enough long single-packet queries, one UDP flow of many packets, one
    pair of single-packet queries on a clock, or the bytes the volume sign needs.
    """
    dns = f.dport == DNS_PORT
    e = f.events
    single = (e.packets == 1) & dns[e.owner]
    n = len(f.slots)
    long_queries = np.bincount(e.owner[single & (e.bytes >= c.long_query_bytes)], minlength=n)
    most_packets = np.zeros(n, dtype=np.int64)
    udp = (f.proto == UDP)[e.owner] & dns[e.owner]
    np.maximum.at(most_packets, e.owner[udp], e.packets[udp])
    owner = e.owner[single]
    period, rel_mad = interval_stats(owner, e.start_ms[single], n)
    with np.errstate(invalid="ignore"):
        regular = (
            (np.bincount(owner, minlength=n) >= c.min_regular_queries)
            & (rel_mad <= c.max_regular_rel_mad + _SLACK)
            & (period >= c.min_regular_period_ms)
            & (period <= c.max_regular_period_ms)
        )
    host = f.source_host
    hosts = int(host.max()) + 1 if n else 0
    per_host = np.zeros(hosts, dtype=bool)
    per_host[host[(regular | (most_packets >= c.min_session_packets)) & dns]] = True
    long_sum = np.bincount(host[dns], weights=long_queries[dns], minlength=hosts)
    total = f.bytes + f.overflow_bytes
    bytes_sum = np.bincount(host[dns], weights=total[dns], minlength=hosts)
    per_host |= (long_sum >= c.min_long_queries) | (bytes_sum >= c.min_volume_bytes)
    return dns & per_host[host]


def _strobe(f: PairFeatures, c: StrobeConfig) -> np.ndarray:
    """An hour of ``min_attempts`` flows in the window leaves that many kept (or the cap)."""
    busy = f.flows >= min(c.min_attempts, f.cap)
    return among(f.proto, c.protocols) & ~among(f.dport, c.skip_dports) & busy


def _upload(f: PairFeatures, c: UploadConfig) -> np.ndarray:
    """``_upload_alert``'s gates."""
    cb = f.callbacks[c.callback_gap_ms]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (
            among(f.proto, c.protocols)
            & (cb.count >= c.min_uploads)
            & (cb.size_median >= c.min_upload_bytes)
            & (f.bytes >= c.min_bytes_per_packet * f.packets - _SLACK)
            & (cb.period_ms >= c.min_period_ms)
            & (cb.rel_mad < c.max_interval_rel_mad + _SLACK)
            & (cb.duration_ms <= c.max_duty_cycle * cb.period_ms + _SLACK)
        )


def _anything(f: PairFeatures, _: Any) -> np.ndarray:
    """No prefilter: every pair with a flow in the window."""
    return f.flows > 0


#: the pair detectors, in the order their alerts are listed
PAIR_SCORERS: tuple[PairScorer, ...] = (
    PairScorer(
        "beacon",
        score_beacons,
        _beacon,
        lambda c: (
            CallbackGate(
                c.callback_gap_ms,
                c.min_callbacks,
                c.min_period_ms,
                c.max_interval_rel_mad + _SLACK,
                c.protocols,
                c.skip_dports,
            ),
            # sessions: merged and measured only, no interval statistics
            CallbackGate(
                c.session_gap_ms,
                _NO_TIMING,
                protocols=c.protocols,
                skip_dports=c.session_skip_dports,
            ),
        ),
        lambda pairs, _, now_ms, c: population(pairs, since_ms=now_ms - c.window_ms, now_ms=now_ms),
        by_host=True,  # fan-out damping weighs a source's other beacons and sessions
        narrow=_beacon_narrow,
    ),
    PairScorer(
        "dns",
        score_dns_tunnels,
        _dns,
        population=lambda pairs, f, _, __: dns_population(pairs, f),
        by_host=True,
    ),
    PairScorer("strobe", score_strobes, _strobe),
    PairScorer(
        "upload",
        score_uploads,
        _upload,
        lambda c: (
            CallbackGate(
                c.callback_gap_ms,
                c.min_uploads,
                c.min_period_ms,
                c.max_interval_rel_mad + _SLACK,
                c.protocols,
                min_bytes_per_packet=c.min_bytes_per_packet - _SLACK,  # looser than _upload's
            ),
        ),
    ),
)


def score_pairs(
    pairs: PairState,
    slots: np.ndarray,
    *,
    now_ms: int,
    detectors: Any,
    prefilter: bool = True,
    changed_after_ms: int | None = None,
    populations: Mapping[str, Any] | None = None,
) -> list[Alert]:
    """Every registered pair scorer's alerts for the pairs ``slots`` at event time ``now_ms``.

    :param pairs: the partition's pair state
    :param slots: the pairs to consider (those that changed)
    :param detectors: a :class:`silkwatch.detectors.config.DetectorsConfig`
    :param prefilter: give each scorer only the pairs its prefilter keeps.
        Default - True (False: every pair in ``slots``, for the tests)
    :param changed_after_ms: score only pairs with a flow in ``(changed_after_ms,
        now_ms]`` (for a scorer that judges hosts, every pair of such a host): the
        others were scored at ``changed_after_ms`` on the same flows. Default - None
    :param populations: scorer attribute → its population of the whole site, when
        ``pairs`` holds one partition's sources
        (:class:`silkwatch.detectors.population.PopulationPart`). Default - None (the
        pairs are the site: each population is counted from them)
    """
    found: list[Alert] = []
    features: dict[int, PairFeatures] = {}
    verdicts: dict[int, tuple[PairFeatures, np.ndarray]] = {}
    for scorer in PAIR_SCORERS:
        config = getattr(detectors, scorer.attribute)
        window_ms = config.window_ms
        if window_ms not in features:
            gates = tuple(
                gate
                for s in PAIR_SCORERS
                if s.gates
                for gate in s.gates(getattr(detectors, s.attribute))
            )
            features[window_ms] = pair_features(
                pairs, slots, since_ms=now_ms - window_ms, now_ms=now_ms, gates=gates
            )
        f = features[window_ms]
        keep = scorer.prefilter(f, config) if prefilter else f.flows > 0
        verdicts.setdefault(window_ms, (f, np.zeros(len(f.slots), dtype=bool)))[1][keep] = True
        keep &= pairs.own[f.slots]  # received copies are scored in their sources' partitions
        if changed_after_ms is not None:
            keep &= _changed(f, changed_after_ms, by_host=scorer.by_host)
        chosen = f.slots[keep]
        if len(chosen) == 0:
            continue
        extra = {}
        if populations is not None and scorer.attribute in populations:
            extra["population"] = populations[scorer.attribute]
        elif scorer.population is not None and prefilter:
            extra["population"] = scorer.population(pairs, f, now_ms, config)
        if "population" in extra and prefilter and scorer.narrow is not None:
            chosen = f.slots[scorer.narrow(pairs, f, keep, extra["population"], config)]
        found += scorer.score(
            pairs.view(chosen), now_ms=now_ms, config=config, site=detectors.site, **extra
        )
    for f, kept in verdicts.values():  # remembered: the context of a source's next scoring
        pairs.candidate[f.slots] = kept
    return found


def _changed(f: PairFeatures, after_ms: int, *, by_host: bool) -> np.ndarray:
    """Pairs with a flow in the window after ``after_ms`` (or of a host with one)."""
    changed = f.newest_ms > after_ms
    if by_host and len(changed):
        host_changed = np.zeros(int(f.source_host.max()) + 1, dtype=bool)
        host_changed[f.source_host[changed]] = True
        changed = host_changed[f.source_host]
    return changed


def population(pairs: PairState, *, since_ms: int, now_ms: int) -> Population:
    """Source hosts per destination, and in all, over pairs active in ``(since_ms, now_ms]``.

    Reply-side pairs (one source port below the destination port) do not count,
    as in :meth:`silkwatch.detectors.pairs.PairHistory.is_reply`; nor do received copies
    (:attr:`PairState.own`): every source is counted in the one partition that owns it,
    so the partitions' counts add up to the site's (:mod:`silkwatch.detectors.population`).
    """
    return as_population(*source_counts(pairs, since_ms=since_ms, now_ms=now_ms))


def source_counts(
    pairs: PairState, *, since_ms: int, now_ms: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`population` as columns: destination key words (n, 2), sources of each, sources."""
    reply = (pairs.sport_lo == pairs.sport_hi) & (pairs.sport_lo < pairs.dports)
    active = pairs.own & (pairs.last_ms > since_ms) & (pairs.first_ms <= now_ms) & ~reply
    return pairs.links.counts(pairs.index.keys, active)


def as_population(destinations: np.ndarray, counts: np.ndarray, sources: int) -> Population:
    """:func:`source_counts`' columns as the beacon scorer's :class:`Population`."""
    raw = np.ascontiguousarray(destinations, dtype=np.uint64).astype(">u8").tobytes()
    sharing = {raw[16 * i : 16 * i + 16]: int(n) for i, n in enumerate(counts.tolist())}
    return Population(sharing, int(sources))


def dns_population(pairs: PairState, f: PairFeatures) -> DnsPopulation:
    """Resolvers' client counts and every host's DNS bytes, over the DNS pairs of ``f``.

    Like the scorer, it leaves out reply-side pairs and queries to broadcast or
    multicast addresses, and pairs without a flow in the window.
    """
    return as_dns_population(*dns_counts(pairs, f))


def dns_pairs(pairs: PairState) -> np.ndarray:
    """This partition's own port-53 pairs holding flows: what a resolver's client count and
    the DNS peer comparison are taken over, whichever of them changed."""
    return pairs.own & (pairs.counts > 0) & (pairs.dports == DNS_PORT)


def dns_counts(pairs: PairState, f: PairFeatures) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`dns_population` as columns: resolver key words (n, 2), clients of each, and
    each source host's bytes to port 53 (float64, one per host, in no particular order)."""
    dns = (f.dport == DNS_PORT) & (f.flows > 0)
    keys = pairs.index.keys[f.slots[dns]]
    # one source port, below 53: a server's answers (PairHistory.is_reply)
    reply = (f.sport_span[dns] == 1) & (pairs.sport_lo[f.slots[dns]] < DNS_PORT)
    raw = keys[:, :4].astype(">u8").tobytes()
    broadcast = np.array(
        [is_broadcast(raw[32 * i + 16 : 32 * i + 32]) for i in range(len(keys))], dtype=bool
    ).reshape(-1)
    keep = ~reply & ~broadcast
    keys, total = keys[keep], (f.bytes + f.overflow_bytes)[dns][keep]
    querying = np.zeros(len(pairs), dtype=bool)
    querying[f.slots[dns][keep]] = True
    resolvers, clients, _ = pairs.links.counts(pairs.index.keys, querying)
    hosts = KeyIndex(2)
    per_host = np.bincount(hosts.slots(keys[:, :2]), weights=total, minlength=len(hosts))
    return resolvers, clients, per_host.astype(np.float64)


def as_dns_population(
    resolvers: np.ndarray, clients: np.ndarray, host_bytes: np.ndarray
) -> DnsPopulation:
    """:func:`dns_counts`' columns as the DNS scorer's :class:`DnsPopulation`."""
    named = np.ascontiguousarray(resolvers, dtype=np.uint64).astype(">u8").tobytes()
    return DnsPopulation(
        {named[16 * i : 16 * i + 16]: int(c) for i, c in enumerate(clients.tolist())}, host_bytes
    )
