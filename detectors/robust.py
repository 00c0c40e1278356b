"""Robust statistics the scorers share: medians and MADs that a few outliers do not move.

Beacon, upload and DNS timing read the intervals between callbacks
(:func:`interval_timing`); volume and exfiltration compare an hour with a
host's busy hours (:func:`busy_half`, :func:`robust_sd`). Each lives here
once, so no scorer borrows from another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Robust statistics of the intervals between callback starts."""

    period_ms: float  # median interval
    rel_mad: float  # MAD / median: 0 for a perfect clock, ~0.69 for Poisson
    skew: float  # Bowley quartile skew in [-1, 1]


def interval_timing(start_ms: np.ndarray) -> Timing:
    """Median, relative MAD and Bowley skew of the gaps between sorted start times.

    Examples
    --------
    >>> interval_timing(np.array([0, 10_000, 20_000, 30_000, 40_000]))
    Timing(period_ms=10000.0, rel_mad=0.0, skew=0.0)
    >>> interval_timing(np.array([0, 8_000, 20_000, 29_000, 40_000]))
    Timing(period_ms=10000.0, rel_mad=0.15, skew=0.0)
    """
    intervals = np.sort(np.diff(start_ms).astype(np.float64))
    q1, median, q3 = (_sorted_quantile(intervals, q) for q in (0.25, 0.5, 0.75))
    if median <= 0:
        return Timing(0.0, float("inf"), 0.0)
    spread = np.sort(np.abs(intervals - median))
    rel_mad = _sorted_quantile(spread, 0.5) / median
    skew = 0.0 if q3 == q1 else float((q1 + q3 - 2 * median) / (q3 - q1))
    return Timing(float(median), round(rel_mad, 6), round(skew, 6))


def _sorted_quantile(ordered: np.ndarray, q: float) -> float:
    """``np.percentile(x, 100 * q)`` (linear) of an already sorted array, without its overhead.

    Examples
    --------
    >>> x = np.array([1.0, 2.0, 4.0, 8.0])
    >>> [bool(_sorted_quantile(x, q) == np.percentile(x, 100 * q)) for q in (0.25, 0.5, 0.75)]
    [True, True, True]
    """
    at = (len(ordered) - 1) * q
    lo = int(at)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (at - lo))


def busy_half(values: np.ndarray) -> np.ndarray:
    """The upper half of a host's hourly values: its working regime, not its nights.

    A workstation's history mixes busy days with idle nights; median and MAD
    over both make every morning a jump and stretch the MAD so much that a
    real jump looks ordinary. Median and MAD of the busier half keep both
    robust and diurnal-proof (for a host without a daily rhythm they change little).

    Examples
    --------
    >>> busy_half(np.array([5.0, 1.0, 4.0, 2.0, 3.0])).tolist()
    [3.0, 4.0, 5.0]
    """
    ordered = np.sort(values)
    return ordered[len(ordered) // 2 :]


def robust_sd(values: np.ndarray) -> float:
    """1.4826 x the median absolute deviation: a standard deviation that ignores outliers.

    Examples
    --------
    >>> robust_sd(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    1.4826
    """
    return float(1.4826 * np.median(np.abs(values - np.median(values)))) if len(values) else 0.0
