"""Hourly volume anomalies: sudden peaks in a sensor's or the network's bytes.

A peak is judged against the same group's previous hours (event time): an
hour's bytes far above the median of the last day, in robust units (MAD of
ln bytes), so a diurnal ramp is not a peak but a flood, a mirror gone wrong or
a mass upload is.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VolumeConfig:
    """Thresholds of the hourly volume-peak detector.

    :param baseline_hours: earlier hourly bins of the same group that form its
        baseline; a day spans the diurnal cycle, so the morning ramp stays
        inside the baseline's range. Default - 24
    :param min_history_hours: warm-up: a group needs at least this many
        earlier bins with traffic before it can be scored. Default - 6
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
    min_history_hours: int = 6
    min_bytes: int = 10_000_000
    min_ratio: float = 3.0
    min_robust_z: float = 5.0
    mad_floor_ln: float = 0.2
    full_ratio: float = 30.0
