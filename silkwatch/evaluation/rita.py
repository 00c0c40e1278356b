"""RITA v5's published beacon test series, fed to our beacon scorer.

RITA (``activecm/rita``, ``analysis/beacons_test.go``) tests its timestamp and
data-size scores on small published series with expected values. Its
timestamp score is the mean of a Bowley-skew score (1 - |skew|) and a MAD score
(1 - MAD/median) of the intervals; its data-size score is the same over the
bytes of each connection. The series and RITA's expected scores are copied
here as data (facts and numbers carry over; no code does).

Our scorer differs on purpose: it *gates* (a series whose intervals vary by
0.6 MAD/median or more, or whose sizes vary by 0.25 or more, is not a
beacon at all) and ramps the MAD part linearly to 0 at the gate, so that ±50 %
jitter (MAD/median ~0.3) still scores and Poisson traffic (~0.69) does not.
Each series is scored two ways: our timing (or size) part on the same
numbers, and the whole scorer on one flow per timestamp (``min_callbacks``
lowered from 12 to RITA's 4, everything else default).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau

from silkwatch.detectors.beacon import BeaconConfig, score_beacons
from silkwatch.detectors.pairs import pair_deltas
from silkwatch.detectors.robust import interval_timing
from silkwatch.detectors.schema import make_batch

T0 = 1_517_338_924  # RITA's base timestamp (s)


@dataclass(frozen=True)
class Series:
    """One of RITA's test series and the score RITA's tests expect for it."""

    name: str
    rita: float
    timestamps_s: tuple[int, ...]
    sizes: tuple[float, ...] | None = None  # None: a fixed 420 B per connection


def _cumulative(*gaps: int) -> tuple[int, ...]:
    return tuple(int(v) for v in T0 + np.concatenate([[0], np.cumsum(gaps)]))


TIMESTAMPS = (
    Series("1 s apart (1..10)", 1.0, tuple(range(1, 11))),
    Series("perfect 60 s", 1.0, tuple(T0 + 60 * i for i in range(10))),
    Series("close: 98-102 s", 0.995, _cumulative(98, 99, 99, 100, 100, 100, 101, 101, 102)),
    Series("bimodal: 98 / 300 s", 0.746, _cumulative(*[98, 300] * 5)),
    Series("random", 0.083, _cumulative(1, 299, 25, 4975, 90, 2, 42, 500, 1500)),
)
_PERFECT = tuple(T0 + 60 * i for i in range(10))
SIZES = (
    Series("identical: 60 B", 1.0, _PERFECT[:9], (60,) * 9),
    Series("close: 98-102 B", 0.995, _PERFECT[:9], (98, 99, 99, 100, 100, 100, 101, 101, 102)),
    Series("1..10 B", 0.773, _PERFECT, tuple(range(1, 11))),
    Series("all 0 B", 0.5, _PERFECT, (0,) * 10),
    Series("random", 0.008, _PERFECT[:8], (524885, 1, 5000, 98654, 50, 41, 965842, 3)),
)

#: the scorer as run on RITA's series: RITA scores from 4 connections on
CONFIG = dataclasses.replace(BeaconConfig(), min_callbacks=4, alert_score=0.0)


def _whole(series: Series) -> str:
    """The whole beacon scorer on one flow per timestamp: its score, or why it refused."""
    n = len(series.timestamps_s)
    sizes = series.sizes or (420,) * n
    batch = make_batch(
        sip=["10.0.0.5"] * n, dip=["203.0.113.9"] * n, dport=[443] * n, proto=[6] * n,
        sport=[40_000 + i for i in range(n)],
        stime_ms=[t * 1000 for t in series.timestamps_s], elapsed_ms=[200] * n,
        bytes=list(sizes), packets=[max(1, int(s) // 100) for s in sizes],
    )  # fmt: skip
    now_ms = series.timestamps_s[-1] * 1000
    alerts = score_beacons(pair_deltas(batch), now_ms=now_ms, config=CONFIG)
    if alerts:
        return f"{alerts[0].score:.3f}"
    timing = interval_timing(np.array(series.timestamps_s) * 1000)
    if timing.period_ms <= CONFIG.callback_gap_ms:
        return "refused: 1 s repeats merge into one callback (a strobe's, not a beacon's)"
    if timing.rel_mad >= CONFIG.max_interval_rel_mad:
        return f"refused: interval MAD/median {timing.rel_mad:.2f} >= 0.6"
    return f"refused: size MAD/median {_size_rel_mad(sizes):.2f} >= 0.25"


def _size_rel_mad(sizes) -> float:
    values = np.asarray(sizes, dtype=np.float64)
    median = float(np.median(values))
    return float(np.median(np.abs(values - median)) / median) if median else 0.0


def timing_part(series: Series) -> tuple[float, float, float]:
    """(MAD/median, Bowley skew, our timing sub-score): the 0.4/0.1-weighted mean of
    the timing and skew parts, the analogue of RITA's timestamp score."""
    t = interval_timing(np.array(series.timestamps_s, dtype=np.int64) * 1000)
    mad_part = float(np.clip(1 - t.rel_mad / CONFIG.max_interval_rel_mad, 0, 1))
    skew_part = 1 - abs(t.skew)
    w_t, w_s = CONFIG.weight_timing, CONFIG.weight_skew
    return t.rel_mad, t.skew, (w_t * mad_part + w_s * skew_part) / (w_t + w_s)


def size_part(series: Series) -> tuple[float, float]:
    """(MAD/median of sizes, our size part: 1 at 0, 0 at ``max_size_rel_mad``)."""
    rel = _size_rel_mad(series.sizes)
    return rel, float(np.clip(1 - rel / CONFIG.max_size_rel_mad, 0, 1))


def _tau(rita: list[float], ours: list[float]) -> str:
    tau = kendalltau(rita, ours).statistic
    return f"{tau:.2f}"


def report_rita() -> list[str]:
    """The markdown section comparing RITA's expected scores with ours."""
    lines = [
        "## RITA comparison: RITA v5's beacon test series through our scorer",
        "",
        "RITA's `analysis/beacons_test.go` (activecm/rita) publishes input series with the "
        "scores its timestamp and data-size functions must give. The same series, fed to "
        "`detectors/beacon.py` (see `silkwatch/evaluation/rita.py`): *our part* is our timing "
        "(or size) sub-score on the same numbers; *whole scorer* is `score_beacons` on one "
        "flow per timestamp with `min_callbacks` lowered to RITA's 4 (the count part is then "
        "low: 10 callbacks of the 24 that earn it in full).",
        "",
        "| timestamps | RITA | MAD/median | Bowley skew | our timing part | whole scorer |",
        "|---|---|---|---|---|---|",
    ]
    rita, ours = [], []
    for s in TIMESTAMPS:
        rel, skew, part = timing_part(s)
        rita.append(s.rita)
        ours.append(part)
        lines.append(
            f"| {s.name} | {s.rita:.3f} | {rel:.3f} | {skew:.3f} | {part:.3f} | {_whole(s)} |"
        )
    tau_t = _tau(rita, ours)
    lines += [
        "",
        "| sizes (perfect 60 s timing) | RITA | MAD/median | our size part | whole scorer |",
        "|---|---|---|---|---|",
    ]
    rita, ours = [], []
    for s in SIZES:
        rel, part = size_part(s)
        rita.append(s.rita)
        ours.append(part)
        lines.append(f"| {s.name} | {s.rita:.3f} | {rel:.3f} | {part:.3f} | {_whole(s)} |")
    tau_s = _tau(rita, ours)
    lines += [
        "",
        f"Ordering agreement (Kendall's tau-b, RITA's score against our part): timestamps "
        f"{tau_t}, sizes {tau_s}. Where we differ, and why:",
        "",
        "* **Same order on timing**: perfect ≥ close > bimodal > random in both. Our numbers "
        "are lower in the middle because our MAD part falls linearly to 0 at MAD/median 0.6 "
        "(RITA: at 1.0): bimodal (0.51) is near Poisson (0.69) for us, so it only just passes "
        "the gate; RITA gives it 0.746.",
        "* **Skew differs in value, not in sign**: RITA takes quartiles as medians of halves "
        "(random intervals: q1 13.5, q3 1000, skew 0.845), numpy's linear interpolation gives "
        "q1 25, q3 500 (skew 0.726); both rank the random series last.",
        "* **1 s repeats**: RITA scores them 1.0; our whole scorer merges flows that start "
        "within `callback_gap_ms` (1 s) of the previous one into one callback, so these are "
        "not a beacon for us: sub-second and 1 s retries are what `strobe` is for.",
        "* **Sizes are a gate for us, a score for RITA**: sizes 1..10 B (MAD/median 0.45) "
        "get 0.773 from RITA and are refused by us (limit 0.25: benign timers on the real "
        "days sit at 0.36-0.55, planted beacons at 0.0-0.1); random sizes are last for both.",
        "* **All-zero sizes**: RITA gives 0.5 (a MAD score of 0 when the median is below "
        "1); we give full size credit (MAD 0). Flow records never carry 0 bytes (every packet "
        "has headers), so the case does not arise on flows.",
    ]
    return lines
