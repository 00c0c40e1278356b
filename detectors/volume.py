"""Hourly volume anomalies: sudden peaks in a sensor's or the network's bytes.

A peak is judged against the same group's previous hours (event time): an
hour's bytes far above the busy hours of the last day, in robust units (median
and MAD of ln bytes over the busier half), so a diurnal ramp is not a peak but
a flood, a mirror gone wrong or a mass upload is. The robust statistics live
here and the exfiltration scorer reuses them for each host's own history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from silkwatch.detectors.alerts import Alert, severity_for
from silkwatch.detectors.robust import busy_half, robust_sd
from silkwatch.detectors.schema import HOUR_MS
from silkwatch.detectors.timebins import BinVolumes


@dataclass(frozen=True)
class VolumeConfig:
    """Thresholds of the hourly volume-peak detector.

    :param baseline_hours: earlier hourly bins of the same group that form its
        baseline: the busier half of them (its working hours), whose median and
        MAD of ln bytes the hour is compared with, so the morning ramp is not a
        peak and the night does not stretch the MAD. Default - 24
    :param min_history_hours: warm-up: a group needs at least this many
        earlier bins with traffic (of ``baseline_hours``) before it can be
        scored: most of a day, because a history of nights alone makes the
        first morning after start-up look like a flood (seen on every 24 h
        Stratosphere capture). Default - 20
    :param min_bytes: an hour below this many bytes is never a peak (a quiet
        sensor doubling from 10 kB is not news). Default - 10 MB
    :param min_ratio: the hour's bytes must be at least this multiple of the
        baseline median. Default - 3.0
    :param min_robust_z: and at least this many robust standard deviations
        (1.4826 x MAD of ln bytes) above it. Default - 5.0
    :param mad_floor_ln: lower bound of that MAD, so a flat history does not
        turn a small rise into a huge z. Default - 0.2
    :param full_ratio: baseline multiple at which the score reaches 1; the
        score grows with ln(ratio) from 0.5 at ``min_ratio``. Default - 30.0
    """

    baseline_hours: int = 24
    min_history_hours: int = 20
    min_bytes: int = 10_000_000
    min_ratio: float = 3.0
    min_robust_z: float = 5.0
    mad_floor_ln: float = 0.2
    full_ratio: float = 30.0


def score_volume(
    history: BinVolumes,
    *,
    hour_start_ms: int,
    config: VolumeConfig | None = None,
    names: Mapping[int, str] | None = None,
) -> list[Alert]:
    """Peak alerts for the hour starting at ``hour_start_ms``, one per group.

    ``history`` holds hourly bins (``bin_ms`` = 1 h) of one or more groups,
    whatever the caller binned by: a sensor id, or one constant group for the
    whole network. Each group's bin at ``hour_start_ms`` is compared with its
    own bins of the previous ``baseline_hours``; hours without a bin are not
    part of the baseline (a sensor that sleeps at night is judged on its
    active hours).

    :param history: hourly :class:`~silkwatch.detectors.timebins.BinVolumes`
    :param hour_start_ms: the hour to score (event time)
    :param config: thresholds. Default - ``VolumeConfig()``
    :param names: group id → text for the alert sentence. Default - ``"group <id>"``

    Examples
    --------
    >>> h = 3_600_000
    >>> hours = np.arange(30)
    >>> octets = np.tile([20e6, 25e6], 15)
    >>> octets[26] = 400e6
    >>> bins = BinVolumes(np.zeros(30, np.int64), hours * h, np.ones(30), octets, octets / 1000)
    >>> [a.first_seen_ms // h for t in hours * h for a in score_volume(bins, hour_start_ms=t)]
    [26]
    >>> [alert] = score_volume(bins, hour_start_ms=26 * h, names={0: "the network"})
    >>> alert.kind, alert.severity, alert.evidence["ratio"]
    ('volume', 'high', 16.0)
    >>> alert.reason
    'the network carried 400,000,000 bytes in the hour, 16.0x its busy-hour median of
     25,000,000.'
    """
    config = config or VolumeConfig()
    since_ms = hour_start_ms - config.baseline_hours * HOUR_MS
    alerts = []
    for group in np.unique(history.group[history.bin_start_ms == hour_start_ms]).tolist():
        mine = history.group == group
        now = float(history.bytes[mine & (history.bin_start_ms == hour_start_ms)][0])
        past = history.bytes[
            mine & (history.bin_start_ms >= since_ms) & (history.bin_start_ms < hour_start_ms)
        ]
        past = past[past > 0]
        if len(past) < config.min_history_hours or now < config.min_bytes:
            continue
        past_ln = busy_half(np.log(past))
        median_ln = float(np.median(past_ln))
        robust_z = (np.log(now) - median_ln) / max(robust_sd(past_ln), config.mad_floor_ln)
        ratio = now / np.exp(median_ln)
        if ratio < config.min_ratio or robust_z < config.min_robust_z:
            continue
        growth = np.log(ratio / config.min_ratio) / np.log(config.full_ratio / config.min_ratio)
        score = 0.5 + 0.5 * float(np.clip(growth, 0.0, 1.0))
        name = (names or {}).get(group, f"group {group}")
        alerts.append(
            Alert(
                kind="volume",
                severity=severity_for(score),
                score=score,
                sip=None,
                dip=None,
                dport=None,
                proto=None,
                first_seen_ms=int(hour_start_ms),
                last_seen_ms=int(hour_start_ms) + HOUR_MS - 1,
                evidence={
                    "group": group,
                    "bytes": now,
                    "baseline_median_bytes": float(np.exp(median_ln)),
                    "ratio": round(float(ratio), 3),
                    "robust_z": float(robust_z),
                    "history_hours": len(past),
                },
                reason=(
                    f"{name} carried {now:,.0f} bytes in the hour, {ratio:.1f}x its "
                    f"busy-hour median of {np.exp(median_ln):,.0f}."
                ),
            )
        )
    return alerts
