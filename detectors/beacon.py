"""Beacon and long-lived C2 session scoring over per-pair histories.

A **beacon** is malware calling home at a fixed period with some jitter: many
short connections from one host to one destination port, starting at regular
intervals, carrying similar small amounts of data. The timing test follows
RITA: the median absolute deviation (MAD) of the intervals relative to their
median, and Bowley's quartile skew, are unaffected by a few missed or delayed
callbacks, and a uniform jitter of ±50 % keeps MAD/median near 0.25–0.3 while
random (Poisson) traffic sits near 0.69. Timing alone cannot separate the two
on a day of hourly callbacks, so sizes (consistency, bytes/packet) and the
number of repeats add to the score.

Benign periodic traffic is everywhere on real workstations (update and
telemetry timers, push-channel keepalives, P2P retries), so the scorer keeps
out what is not a callback from this site to a controller, each rule with its
reason beside it: allow-listed destinations (cloud guest agents, metadata
services, NTP); response records (the server is never named as the source,
:func:`is_response`); pairs that stay inside the site, go to broadcast or
multicast, or come in from the Internet (:func:`silkwatch.detectors.site.is_outbound`);
callbacks that reuse one or two source ports (the keepalives of a persistent
connection); check-ins of unlike sizes. What is left is damped by prevalence
(a destination many hosts contact *with different timing*, or a large
population on one timer: an update or telemetry service) and by fan-out (a
host calling several destinations on the same timer runs one service on
several addresses, or a P2P retry loop). A few hosts calling one destination
on one timer are a campaign (an outbreak), not a popular service: they are
not damped, and each is alerted.

A **long-lived C2 session** is the other shape of the same thing (Sliver
session mode, reverse shells): one connection open for a long time carrying a
trickle of small packets, so flow-level periodicity is invisible.

Flows that follow each other without a pause (a session split by an
exporter's active timeout, or a burst of connections for one callback) are
merged into one *callback* first, and a beacon's callbacks must be short
compared with its period, so a long session cut into equal records is not
mistaken for a beacon.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from silkwatch.detectors.alerts import Alert, severity_for
from silkwatch.detectors.pairs import Callbacks, PairHistory, PairKey, merge_callbacks
from silkwatch.detectors.robust import Timing, interval_timing
from silkwatch.detectors.schema import HOUR_MS, address_text
from silkwatch.detectors.site import SiteConfig, is_outbound, is_response

_NETWORK = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class BeaconConfig:
    """Thresholds and weights of the beacon and long-session scorers.

    Every field is documented, with the reason for its default, in
    ``detectors/defaults.toml`` (section ``[beacon]``), which a test keeps
    equal to these defaults.
    """

    window_ms: int = 24 * HOUR_MS
    protocols: tuple[int, ...] = (6, 17)
    allow_networks: tuple[str, ...] = (
        "168.63.129.16/32",
        "169.254.169.254/32",
        "fd00:ec2::254/128",
    )
    allow_ports: tuple[tuple[int, int], ...] = ((17, 123),)
    callback_gap_ms: int = 1_000
    min_callbacks: int = 12
    min_period_ms: int = 1_000
    max_duty_cycle: float = 0.5
    max_interval_rel_mad: float = 0.6
    max_size_rel_mad: float = 0.25
    low_bytes_per_packet: float = 300.0
    high_bytes_per_packet: float = 1_000.0
    full_callbacks: int = 24
    weight_timing: float = 0.4
    weight_skew: float = 0.1
    weight_size: float = 0.2
    weight_bytes_per_packet: float = 0.1
    weight_count: float = 0.2
    alert_score: float = 0.65
    prevalence_min_hosts: int = 3
    prevalence_full_share: float = 0.2
    prevalence_weight: float = 0.8
    fanout_period_tolerance: float = 0.2
    fanout_min_raw: float = 0.65
    fanout_full_peers: int = 2
    fanout_weight: float = 0.5
    campaign_max_hosts: int = 10
    campaign_max_period_ms: int = 1_800_000
    skip_dports: tuple[int, ...] = (53,)
    session_gap_ms: int = 5_000
    session_min_duration_ms: int = 600_000
    session_full_duration_ms: int = 3_600_000
    session_max_bytes_per_s: float = 1_000.0
    session_max_bytes_per_packet: float = 200.0
    session_min_packets_per_s: float = 0.05
    session_alert_score: float = 0.7
    session_skip_dports: tuple[int, ...] = (22, 23, 3389, 5900)
    session_fanout_full: int = 2
    session_fanout_weight: float = 0.5


class Population(NamedTuple):
    """Who talks to whom over the window: the denominator of prevalence damping.

    :param sharing: destination (16 address bytes) → source hosts that contacted it
    :param total_hosts: source hosts that contacted anything
    """

    sharing: Mapping[bytes, int]
    total_hosts: int


def _ramp_down(value: float, zero_at: float, one_at: float = 0.0) -> float:
    """1 at or below ``one_at``, 0 at or above ``zero_at``, linear between."""
    return float(_ramps_down(value, zero_at, one_at))


def _ramps_down(value, zero_at: float, one_at: float = 0.0):
    """:func:`_ramp_down` of a number or, element-wise, of an array."""
    return np.clip((zero_at - value) / (zero_at - one_at), 0.0, 1.0)


def periodic_parts(rel_mad, skew, size_rel_mad, bytes_per_packet, count, config: BeaconConfig):
    """A periodic pair's undamped score: its parts, each in [0, 1], and their weighted mean.

    Numbers or arrays alike: the scorer phrases one pair, the engine bounds
    thousands of pairs at once with the same formula
    (``silkwatch.detectors.scoring``), so the two cannot drift apart.

    Examples
    --------
    >>> parts, raw = periodic_parts(0.1, 0.2, 0.05, 150.0, 40, BeaconConfig())
    >>> {name: round(float(v), 3) for name, v in parts.items()}, round(float(raw), 3)
    ({'timing': 0.833, 'skew': 0.8, 'size': 0.8, 'bytes_per_packet': 1.0, 'count': 1.0}, 0.873)
    """
    parts = {
        "timing": _ramps_down(rel_mad, config.max_interval_rel_mad),
        "skew": 1.0 - np.abs(skew),
        "size": _ramps_down(size_rel_mad, config.max_size_rel_mad),
        "bytes_per_packet": _ramps_down(
            bytes_per_packet, config.high_bytes_per_packet, config.low_bytes_per_packet
        ),
        "count": _ramps_down(-count, -config.min_callbacks, -config.full_callbacks),
    }
    weights = {
        "timing": config.weight_timing,
        "skew": config.weight_skew,
        "size": config.weight_size,
        "bytes_per_packet": config.weight_bytes_per_packet,
        "count": config.weight_count,
    }
    raw = sum(weights[name] * value for name, value in parts.items()) / sum(weights.values())
    return parts, raw


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[_NETWORK, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def is_allowed(dip_text: str, dport: int, proto: int, config: BeaconConfig) -> bool:
    """True when the destination is on the allow-list (network or protocol/port).

    Examples
    --------
    >>> c = BeaconConfig()
    >>> is_allowed("168.63.129.16", 32526, 6, c), is_allowed("1.2.3.4", 123, 17, c)
    (True, True)
    >>> is_allowed("1.2.3.4", 443, 6, c)
    False
    """
    if (proto, dport) in config.allow_ports:
        return True
    address = ipaddress.ip_address(dip_text)
    return any(address in network for network in _networks(config.allow_networks))


@dataclass(frozen=True)
class _Candidate:
    """A periodic pair and its undamped score parts."""

    key: PairKey
    callbacks: Callbacks
    timing: Timing
    flows: int
    packets: int
    bytes: int
    size_median: float
    size_rel_mad: float
    parts: dict[str, float]
    raw: float


def score_beacons(
    pairs: Mapping[PairKey, PairHistory],
    *,
    now_ms: int,
    config: BeaconConfig | None = None,
    site: SiteConfig | None = None,
    population: Population | None = None,
) -> list[Alert]:
    """Beacon and long-session alerts for every pair active in the window ending at ``now_ms``.

    :param pairs: the pair histories (a dict or a Faust table's items)
    :param now_ms: end of the scored window, event time (the newest flow seen)
    :param config: thresholds and weights. Default - ``BeaconConfig()``
    :param site: the site's internal networks. Default - ``SiteConfig()``
    :param population: how many hosts contacted each destination, and hosts in
        all, over the window, when ``pairs`` holds only the pairs worth scoring
        (the engine counts them over every pair). Default - counted from ``pairs``
    :returns: alerts sorted by descending score, then pair

    Examples
    --------
    >>> from silkwatch.detectors.pairs import pair_deltas
    >>> from silkwatch.detectors.schema import make_batch
    >>> t = [i * 60_000 + (i % 3) * 4_000 for i in range(20)]
    >>> b = make_batch(sip=["10.0.0.1"] * 20, dip=["203.0.113.9"] * 20, dport=[443] * 20,
    ...                sport=range(40_000, 40_020), proto=[6] * 20, stime_ms=t,
    ...                elapsed_ms=[200] * 20, bytes=[1_200] * 20, packets=[8] * 20)
    >>> [(a.kind, a.sip, a.dip, a.dport, a.evidence["period_s"], round(a.score, 3))
    ...  for a in score_beacons(pair_deltas(b), now_ms=t[-1])]
    [('beacon', '10.0.0.1', '203.0.113.9', 443, 64.0, 0.833)]
    """
    config = config or BeaconConfig()
    site = site or SiteConfig()
    since_ms = now_ms - config.window_ms
    candidates: list[_Candidate] = []
    sessions: list[Alert] = []
    contacted: dict[bytes, set[bytes]] = defaultdict(set)
    for key, history in pairs.items():
        events = history.window(since_ms, now_ms)
        if len(events) == 0:
            continue
        if is_response(key, history, pairs):
            continue
        contacted[key[1]].add(key[0])
        if key[3] not in config.protocols:
            continue
        maybe_beacon = len(events) >= config.min_callbacks
        # a session is back-to-back records: their durations plus the gaps must reach the minimum
        maybe_session = (
            int(events[:, 1].sum()) + (len(events) - 1) * config.session_gap_ms
            >= config.session_min_duration_ms
        )
        if not (maybe_beacon or maybe_session) or not is_outbound(key[0], key[1], site):
            continue
        session = _long_session(key, events, config) if maybe_session else None
        if session is not None:
            sessions.append(session)
        candidate = _periodic_candidate(key, history, events, config) if maybe_beacon else None
        if candidate is not None:
            candidates.append(candidate)
    alerts = _damp_sessions(sessions, config)
    if population is None:
        population = Population(
            {dip: len(sources) for dip, sources in contacted.items()},
            len(set().union(*contacted.values())) if contacted else 0,
        )
    total_hosts = population.total_hosts
    # peers: other beacon-like destinations of the same source with about the same period
    periods: dict[bytes, list[float]] = defaultdict(list)
    for candidate in candidates:
        if candidate.raw >= config.fanout_min_raw:
            periods[candidate.key[0]].append(candidate.timing.period_ms)
    for values in periods.values():
        values.sort()
    timers = _same_timer_hosts(candidates, config)
    for candidate, same_timer in zip(candidates, timers, strict=True):
        period = candidate.timing.period_ms
        peers = _on_timer(periods[candidate.key[0]], period, config) - (
            candidate.raw >= config.fanout_min_raw
        )
        alert = _beacon_alert(
            candidate,
            population.sharing.get(candidate.key[1], 0),
            total_hosts,
            peers,
            config,
            same_timer,
        )
        if alert is not None:
            alerts.append(alert)
    return sorted(alerts, key=lambda a: (-a.score, a.kind, a.sip, a.dip, a.dport or 0))


def _same_timer_hosts(candidates: list[_Candidate], config: BeaconConfig) -> list[int]:
    """Per candidate: how many sources call its destination on its timer (itself included).

    Periods within ``fanout_period_tolerance`` of each other are one timer.
    """
    periods: dict[tuple[bytes, int, int], list[float]] = defaultdict(list)
    for candidate in candidates:
        periods[(candidate.key[1], *candidate.key[2:])].append(candidate.timing.period_ms)
    ordered = {key: sorted(values) for key, values in periods.items()}
    return [
        _on_timer(ordered[(c.key[1], *c.key[2:])], c.timing.period_ms, config) for c in candidates
    ]


def _on_timer(ordered: list[float], period: float, config: BeaconConfig) -> int:
    """How many of the sorted ``ordered`` periods are within the tolerance of ``period``.

    A binary search narrows the sorted list to the neighbourhood (a busy
    destination has thousands of candidates; comparing all pairs was quadratic),
    and the tolerance test itself is the one written out, on that slice only.

    Examples
    --------
    >>> _on_timer([40.0, 59.0, 60.0, 72.0, 90.0], 60.0, BeaconConfig())  # within ±20 %
    3
    """
    tolerance = config.fanout_period_tolerance * period

    def exact(lo: float, hi: float) -> int:
        first, last = bisect.bisect_left(ordered, lo), bisect.bisect_right(ordered, hi)
        return sum(abs(other - period) <= tolerance for other in ordered[first:last])

    low, high = period - tolerance, period + tolerance
    if high - low <= 4.0:  # a sub-5 ms period: test every neighbour
        return exact(low - 1.0, high + 1.0)
    # well inside the bounds the test surely holds: count those, test only the edges
    inside = bisect.bisect_left(ordered, high - 1.0) - bisect.bisect_right(ordered, low + 1.0)
    return inside + exact(low - 1.0, low + 1.0) + exact(high - 1.0, high + 1.0)


def _periodic_candidate(
    key: PairKey, history: PairHistory, events: np.ndarray, config: BeaconConfig
) -> _Candidate | None:
    """The pair's callbacks and timing if it repeats regularly enough to be scored."""
    if key[2] in config.skip_dports or len(events) < config.min_callbacks:
        return None  # DNS has its own scorer
    callbacks = merge_callbacks(events, config.callback_gap_ms)
    if len(callbacks.start_ms) < config.min_callbacks:
        return None
    if 2 * (history.sport_hi - history.sport_lo + 1) < len(callbacks.start_ms):
        # Most callbacks reuse a source port: the keepalives of one or two
        # persistent connections, which the long-session rule judges instead.
        return None
    timing = interval_timing(callbacks.start_ms)
    if timing.period_ms < config.min_period_ms or timing.rel_mad >= config.max_interval_rel_mad:
        return None
    duration_ms = float(np.median(callbacks.end_ms - callbacks.start_ms))
    if duration_ms > config.max_duty_cycle * timing.period_ms:
        return None
    sizes = callbacks.bytes.astype(np.float64)
    size_median = float(np.median(sizes))
    size_rel_mad = (
        float(np.median(np.abs(sizes - size_median)) / size_median) if size_median else 0.0
    )
    if size_rel_mad >= config.max_size_rel_mad or is_allowed(
        address_text(key[1]), key[2], key[3], config
    ):
        return None
    totals = events[:, 1:].sum(axis=0)
    nbytes, packets = int(totals[1]), int(totals[2])
    count = len(callbacks.start_ms)
    parts, raw = periodic_parts(
        timing.rel_mad, timing.skew, size_rel_mad, nbytes / max(packets, 1), count, config
    )
    parts = {name: float(value) for name, value in parts.items()}
    raw = float(raw)
    return _Candidate(
        key, callbacks, timing, len(events), packets, nbytes, size_median, size_rel_mad, parts, raw
    )


def _beacon_alert(
    candidate: _Candidate,
    sharing_hosts: int,
    total_hosts: int,
    same_period_peers: int,
    config: BeaconConfig,
    same_timer_hosts: int = 1,
) -> Alert | None:
    """Score one periodic pair; None below the alert score or when allow-listed.

    Prevalence damping counts the hosts that contact the destination with
    other timing; a campaign (2 to ``campaign_max_hosts`` sources on this one
    timer, of at most ``campaign_max_period_ms``) counts as one host, so an
    outbreak is scored like one infected host each, while a large population
    on one timer, or software polling hourly or slower (update checks,
    telemetry), is damped as before.

    :param sharing_hosts: hosts that contacted this destination in the window
    :param total_hosts: hosts seen in the window
    :param same_period_peers: other destinations this source calls with the same period
    :param same_timer_hosts: sources calling this destination and port on this
        timer, itself included
    """
    sip, dip, dport, proto = candidate.key
    callbacks, timing, parts, raw = (
        candidate.callbacks,
        candidate.timing,
        candidate.parts,
        candidate.raw,
    )
    size_median, size_rel_mad = candidate.size_median, candidate.size_rel_mad
    bytes_per_packet = candidate.bytes / max(candidate.packets, 1)
    count = len(callbacks.start_ms)
    campaign = (
        2 <= same_timer_hosts <= config.campaign_max_hosts
        and timing.period_ms <= config.campaign_max_period_ms
    )
    if campaign:
        sharing_hosts = max(sharing_hosts - same_timer_hosts + 1, 1)
    share = sharing_hosts / max(total_hosts, 1)
    prevalence = 0.0
    if sharing_hosts >= config.prevalence_min_hosts:
        prevalence = config.prevalence_weight * min(share / config.prevalence_full_share, 1.0)
    fanout = config.fanout_weight * min(same_period_peers / config.fanout_full_peers, 1.0)
    score = round(raw * (1.0 - prevalence) * (1.0 - fanout), 4)
    if score < config.alert_score:
        return None
    sip_text, dip_text = address_text(sip), address_text(dip)
    period_s = round(timing.period_ms / 1000, 3)
    return Alert(
        kind="beacon",
        severity=severity_for(score),
        score=score,
        sip=sip_text,
        dip=dip_text,
        dport=dport,
        proto=proto,
        first_seen_ms=int(callbacks.start_ms[0]),
        last_seen_ms=int(callbacks.end_ms[-1]),
        evidence={
            "flows": candidate.flows,
            "callbacks": count,
            "bytes": candidate.bytes,
            "packets": candidate.packets,
            "bytes_per_packet": round(bytes_per_packet, 1),
            "median_callback_bytes": size_median,
            "size_rel_mad": round(size_rel_mad, 4),
            "period_s": period_s,
            "jitter_rel_mad": timing.rel_mad,
            "bowley_skew": timing.skew,
            "hosts_to_dip": sharing_hosts + (same_timer_hosts - 1 if campaign else 0),
            "same_timer_hosts": same_timer_hosts,
            "hosts_total": total_hosts,
            "prevalence_damping": round(prevalence, 4),
            "same_period_peers": same_period_peers,
            "fanout_damping": round(fanout, 4),
            **{f"part_{name}": round(value, 4) for name, value in parts.items()},
        },
        reason=(
            f"{sip_text} called {dip_text}:{dport}/{proto} {count} times every {period_s:g} s "
            f"(jitter {timing.rel_mad:.0%} MAD) with {size_median:.0f} bytes per callback "
            f"and {bytes_per_packet:.0f} bytes/packet"
            + (
                f"; one of {same_timer_hosts} hosts calling it on this timer (a campaign)."
                if campaign
                else "."
            )
        ),
    )


def _long_session(key: PairKey, events: np.ndarray, config: BeaconConfig) -> Alert | None:
    """The pair's longest quiet session as an undamped ``c2_long_session`` alert, if any."""
    if key[2] in config.session_skip_dports:
        return None
    sessions = merge_callbacks(events, config.session_gap_ms)
    duration_ms = sessions.end_ms - sessions.start_ms
    seconds = np.maximum(duration_ms, 1) / 1000
    bytes_per_s = sessions.bytes / seconds
    packets_per_s = sessions.packets / seconds
    bytes_per_packet = sessions.bytes / np.maximum(sessions.packets, 1)
    quiet = (
        (duration_ms >= config.session_min_duration_ms)
        & (bytes_per_s <= config.session_max_bytes_per_s)
        & (bytes_per_packet <= config.session_max_bytes_per_packet)
        & (packets_per_s >= config.session_min_packets_per_s)
    )
    if not quiet.any():
        return None
    i = int(np.flatnonzero(quiet)[np.argmax(duration_ms[quiet])])
    dip_text = address_text(key[1])
    if is_allowed(dip_text, key[2], key[3], config):
        return None
    parts = {
        "length": min(duration_ms[i] / config.session_full_duration_ms, 1.0),
        "bytes_per_packet": _ramp_down(bytes_per_packet[i], config.session_max_bytes_per_packet),
        "bytes_per_s": _ramp_down(bytes_per_s[i], config.session_max_bytes_per_s),
    }
    score = (
        0.5
        + 0.25 * parts["length"]
        + 0.125 * parts["bytes_per_packet"]
        + 0.125 * parts["bytes_per_s"]
    )
    return Alert(
        kind="c2_long_session",
        severity=severity_for(score),
        score=round(float(score), 4),
        sip=address_text(key[0]),
        dip=dip_text,
        dport=key[2],
        proto=key[3],
        first_seen_ms=int(sessions.start_ms[i]),
        last_seen_ms=int(sessions.end_ms[i]),
        evidence={
            "duration_s": round(float(seconds[i]), 3),
            "bytes": int(sessions.bytes[i]),
            "packets": int(sessions.packets[i]),
            "bytes_per_packet": round(float(bytes_per_packet[i]), 1),
            "bytes_per_s": round(float(bytes_per_s[i]), 2),
            "packets_per_s": round(float(packets_per_s[i]), 3),
            **{f"part_{name}": round(float(value), 4) for name, value in parts.items()},
        },
    )


def _damp_sessions(found: list[Alert], config: BeaconConfig) -> list[Alert]:
    """Damp hosts that keep several quiet sessions and keep those still above the alert score.

    Browsers, chat and mail clients hold several long quiet sessions at once
    (push channels, IDLE), so for such a host one more is ordinary; a host
    whose only quiet session is this one stands out.
    """
    per_host: dict[str | None, int] = defaultdict(int)
    for alert in found:
        per_host[alert.sip] += 1
    kept = []
    for alert in found:
        others = per_host[alert.sip] - 1
        damping = config.session_fanout_weight * min(others / config.session_fanout_full, 1.0)
        score = round(alert.score * (1.0 - damping), 4)
        if score < config.session_alert_score:
            continue
        ev = alert.evidence
        kept.append(
            replace(
                alert,
                score=score,
                severity=severity_for(score),
                evidence={**ev, "other_quiet_sessions": others, "fanout_damping": damping},
                reason=(
                    f"{alert.sip} held one session to {alert.dip}:{alert.dport}/{alert.proto} "
                    f"for {ev['duration_s'] / 60:.1f} min carrying only {ev['bytes_per_s']:.0f} "
                    f"bytes/s in {ev['bytes_per_packet']:.0f}-byte packets."
                ),
            )
        )
    return kept
