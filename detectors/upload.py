"""Periodic upload scoring: a regular timer whose callbacks are large outbound transfers.

A RAT that sends a screenshot, a keystroke log or a file chunk every N
seconds makes callbacks as regular as a beacon's, but each one is a bulk
transfer: big packets, hundreds of kilobytes. The beacon score refuses them
(it wants small check-ins) and the exfiltration score needs a day of the
host's history before it trusts a volume jump. This scorer needs neither: the
timer (robust MAD/median of the gaps, as for beacons) and the size of each
callback are enough, and it fires on the first hours of such a channel.

Scheduled backups and sync clients are the benign twin; a site lists their
destinations in a suppression file or in ``[beacon] allow_networks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from silkwatch.detectors.alerts import Alert, severity_for
from silkwatch.detectors.pairs import PairHistory, PairKey, merge_callbacks
from silkwatch.detectors.robust import interval_timing
from silkwatch.detectors.schema import HOUR_MS, address_text
from silkwatch.detectors.site import SiteConfig, score_outbound_pairs


@dataclass(frozen=True)
class UploadConfig:
    """Thresholds of the periodic-upload scorer.

    Every field is documented, with the reason for its default, in
    ``detectors/defaults.toml`` (section ``[upload]``).
    """

    window_ms: int = 24 * HOUR_MS
    protocols: tuple[int, ...] = (6, 17)
    callback_gap_ms: int = 2_000
    min_uploads: int = 6
    full_uploads: int = 24
    min_period_ms: int = 5_000
    max_duty_cycle: float = 0.5
    max_interval_rel_mad: float = 0.3
    min_upload_bytes: int = 100_000
    full_upload_bytes: int = 10_000_000
    min_bytes_per_packet: float = 700.0
    alert_score: float = 0.65


def score_uploads(
    pairs: Mapping[PairKey, PairHistory],
    *,
    now_ms: int,
    config: UploadConfig | None = None,
    site: SiteConfig | None = None,
) -> list[Alert]:
    """One ``periodic_upload`` alert per pair sending bulk data on a timer.

    Score: 0.5, plus up to 0.2 for timing regularity, 0.15 for the callback
    size (log scale from ``min_upload_bytes`` to ``full_upload_bytes``) and
    0.15 for the number of uploads (``min_uploads`` to ``full_uploads``).

    :param pairs: the pair histories
    :param now_ms: end of the scored window, event time
    :param config: thresholds. Default - ``UploadConfig()``
    :param site: the site's internal networks. Default - ``SiteConfig()``

    Examples
    --------
    >>> from silkwatch.detectors.pairs import pair_deltas
    >>> from silkwatch.detectors.schema import make_batch
    >>> n = 12  # a 600 kB screenshot every 5 minutes, for an hour
    >>> b = make_batch(sip=["10.0.0.8"] * n, dip=["203.0.113.50"] * n, dport=[443] * n,
    ...                sport=[41_000 + i for i in range(n)], proto=[6] * n,
    ...                stime_ms=[i * 300_000 for i in range(n)], elapsed_ms=[4_000] * n,
    ...                packets=[450] * n, bytes=[600_000] * n)
    >>> [(a.kind, a.severity, a.score, a.evidence["period_s"], a.evidence["uploads"])
    ...  for a in score_uploads(pair_deltas(b), now_ms=n * 300_000)]
    [('periodic_upload', 'high', 0.8084, 300.0, 12)]
    """
    config = config or UploadConfig()
    since_ms = now_ms - config.window_ms

    def judge(key: PairKey, history: PairHistory) -> Alert | None:
        events = history.window(since_ms, now_ms)
        return _upload_alert(key, events, config) if len(events) >= config.min_uploads else None

    return score_outbound_pairs(pairs, judge, protocols=config.protocols, site=site or SiteConfig())


def _ramp_up(value: float, low: float, high: float) -> float:
    return float(np.clip((value - low) / (high - low), 0.0, 1.0)) if high > low else 1.0


def _upload_alert(key: PairKey, events: np.ndarray, config: UploadConfig) -> Alert | None:
    """The pair's callbacks as a periodic-upload alert, or None when they are not one."""
    callbacks = merge_callbacks(events, config.callback_gap_ms)
    count = len(callbacks.start_ms)
    if count < config.min_uploads:
        return None
    sizes = callbacks.bytes.astype(np.float64)
    size_median = float(np.median(sizes))
    bytes_per_packet = float(callbacks.bytes.sum() / max(int(callbacks.packets.sum()), 1))
    if size_median < config.min_upload_bytes or bytes_per_packet < config.min_bytes_per_packet:
        return None
    timing = interval_timing(callbacks.start_ms)
    if timing.period_ms < config.min_period_ms or timing.rel_mad >= config.max_interval_rel_mad:
        return None
    if np.median(callbacks.end_ms - callbacks.start_ms) > config.max_duty_cycle * timing.period_ms:
        return None  # one long transfer cut into records, not a timer
    parts = {
        "timing": 1.0 - timing.rel_mad / config.max_interval_rel_mad,
        "size": _ramp_up(
            np.log(size_median), np.log(config.min_upload_bytes), np.log(config.full_upload_bytes)
        ),
        "count": _ramp_up(count, config.min_uploads, config.full_uploads),
    }
    score = round(0.5 + 0.2 * parts["timing"] + 0.15 * parts["size"] + 0.15 * parts["count"], 4)
    if score < config.alert_score:
        return None
    sip, dip = address_text(key[0]), address_text(key[1])
    period_s = round(timing.period_ms / 1000, 3)
    return Alert(
        kind="periodic_upload",
        severity=severity_for(score),
        score=score,
        sip=sip,
        dip=dip,
        dport=key[2],
        proto=key[3],
        first_seen_ms=int(callbacks.start_ms[0]),
        last_seen_ms=int(callbacks.end_ms[-1]),
        evidence={
            "uploads": count,
            "flows": len(events),
            "bytes": int(sizes.sum()),
            "median_upload_bytes": size_median,
            "bytes_per_packet": round(bytes_per_packet, 1),
            "period_s": period_s,
            "jitter_rel_mad": timing.rel_mad,
            **{f"part_{name}": round(value, 4) for name, value in parts.items()},
        },
        reason=(
            f"{sip} uploaded {size_median:,.0f} bytes to {dip}:{key[2]}/{key[3]} every "
            f"{period_s:g} s ({count} times, jitter {timing.rel_mad:.0%} MAD) in "
            f"{bytes_per_packet:.0f}-byte packets: a scheduled upload."
        ),
    )
