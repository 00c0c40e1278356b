"""Strobe scoring: a retry storm, hundreds of empty connection attempts an hour to one place.

Malware whose controller is down or refuses it retries many times a minute:
each attempt is a new connection (a SYN, perhaps a reset) carrying no
payload. The beacon scorer cannot see it: the attempts are often less than a
second apart, merge into one "callback", and have no size to compare. RITA
reports such pairs as *strobes* from their connection count alone; here a
strobe also needs the attempts to be empty (headers only: small packets, few
per attempt), so a busy legitimate client of one server, whose connections
carry data, is not one.

Every rule that keeps a pair out of the beacon scorer applies (response
records, internal and broadcast destinations, :mod:`silkwatch.detectors.site`). A strobe
is rated medium: it says "something on this host keeps knocking", which an
analyst should look at, not that a channel is established.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from silkwatch.detectors.alerts import Alert, severity_for
from silkwatch.detectors.pairs import PairHistory, PairKey
from silkwatch.detectors.schema import HOUR_MS, address_text
from silkwatch.detectors.site import SiteConfig, score_outbound_pairs


@dataclass(frozen=True)
class StrobeConfig:
    """Thresholds of the strobe (retry storm) scorer.

    Every field is documented, with the reason for its default, in
    ``detectors/defaults.toml`` (section ``[strobe]``).
    """

    window_ms: int = 24 * HOUR_MS
    protocols: tuple[int, ...] = (6, 17)
    skip_dports: tuple[int, ...] = (53, 123)
    min_attempts: int = 300
    full_attempts: int = 3_600
    max_bytes_per_packet: float = 100.0
    max_packets_per_attempt: float = 4.0
    alert_score: float = 0.5


def score_strobes(
    pairs: Mapping[PairKey, PairHistory],
    *,
    now_ms: int,
    config: StrobeConfig | None = None,
    site: SiteConfig | None = None,
) -> list[Alert]:
    """One ``strobe`` alert per pair with a retry storm in some hour of the window.

    The pair's busiest hour (event time) is judged: at least ``min_attempts``
    flows, averaging at most ``max_packets_per_attempt`` packets of at most
    ``max_bytes_per_packet`` bytes. The score grows from 0.5 at
    ``min_attempts`` to 0.7 at ``full_attempts`` (medium with the default
    ``[alerts]`` cuts).

    :param pairs: the pair histories
    :param now_ms: end of the scored window, event time
    :param config: thresholds. Default - ``StrobeConfig()``
    :param site: the site's internal networks. Default - ``SiteConfig()``

    Examples
    --------
    >>> from silkwatch.detectors.pairs import pair_deltas
    >>> from silkwatch.detectors.schema import make_batch
    >>> n = 600  # a SYN every 2.5 s for 25 min, never answered
    >>> b = make_batch(sip=["10.0.0.9"] * n, dip=["198.51.100.4"] * n, dport=[8080] * n,
    ...                sport=[30_000 + i for i in range(n)], proto=[6] * n,
    ...                stime_ms=[i * 2_500 for i in range(n)], packets=[2] * n, bytes=[104] * n)
    >>> [(a.kind, a.severity, a.score, a.evidence["attempts"], a.evidence["median_gap_s"])
    ...  for a in score_strobes(pair_deltas(b), now_ms=n * 2_500)]
    [('strobe', 'medium', 0.5182, 600, 2.5)]
    """
    config = config or StrobeConfig()
    since_ms = now_ms - config.window_ms

    def judge(key: PairKey, history: PairHistory) -> Alert | None:
        if key[2] in config.skip_dports:
            return None
        return _strobe_alert(key, history, since_ms, now_ms, config)

    return score_outbound_pairs(pairs, judge, protocols=config.protocols, site=site or SiteConfig())


def _strobe_alert(
    key: PairKey, history: PairHistory, since_ms: int, now_ms: int, config: StrobeConfig
) -> Alert | None:
    """The pair's busiest hour as a strobe alert, or None when it is no storm."""
    in_window = (history.hour_ms > since_ms - HOUR_MS) & (history.hour_ms <= now_ms)
    if not in_window.any():
        return None
    totals = history.hour_totals[in_window]
    busiest = int(np.argmax(totals[:, 0]))
    flows, nbytes, packets, _ = (int(v) for v in totals[busiest])
    if flows < config.min_attempts:
        return None
    bytes_per_packet = nbytes / max(packets, 1)
    packets_per_attempt = packets / flows
    if (
        bytes_per_packet > config.max_bytes_per_packet
        or packets_per_attempt > config.max_packets_per_attempt
    ):
        return None
    hour_ms = int(history.hour_ms[in_window][busiest])
    starts = history.events[:, 0]
    starts = starts[(starts >= hour_ms) & (starts < hour_ms + HOUR_MS)]
    gap_s = float(np.median(np.diff(starts))) / 1000 if len(starts) > 1 else 0.0
    ramp = np.clip(
        (flows - config.min_attempts) / max(config.full_attempts - config.min_attempts, 1), 0, 1
    )
    score = round(0.5 + 0.2 * float(ramp), 4)
    if score < config.alert_score:
        return None
    sip, dip = address_text(key[0]), address_text(key[1])
    return Alert(
        kind="strobe",
        severity=severity_for(score),
        score=score,
        sip=sip,
        dip=dip,
        dport=key[2],
        proto=key[3],
        first_seen_ms=int(starts[0]) if len(starts) else hour_ms,
        last_seen_ms=int(starts[-1]) if len(starts) else hour_ms + HOUR_MS - 1,
        evidence={
            "attempts": flows,
            "hour_start_ms": hour_ms,
            "bytes": nbytes,
            "packets": packets,
            "bytes_per_packet": round(bytes_per_packet, 1),
            "packets_per_attempt": round(packets_per_attempt, 2),
            "median_gap_s": round(gap_s, 3),
            "part_attempts": round(float(ramp), 4),
        },
        reason=(
            f"{sip} made {flows:,} connection attempts to {dip}:{key[2]}/{key[3]} in one hour "
            f"(every {gap_s:g} s), carrying no payload ({bytes_per_packet:.0f} bytes/packet, "
            f"{packets_per_attempt:.1f} packets each): a retry storm."
        ),
    )
