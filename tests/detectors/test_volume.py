"""Hourly volume peaks: the exact hour fires, diurnal ramps and warm-up do not."""

from __future__ import annotations

import numpy as np
import pytest

from silkwatch.detectors.schema import make_batch
from silkwatch.detectors.timebins import BinVolumes, bin_volumes
from silkwatch.detectors.volume import HOUR_MS, VolumeConfig, score_volume

#: three days of a working-day rhythm: 20 MB at night up to 200 MB at noon
DIURNAL_MB = 20 + 180 * np.sin(np.pi * (np.arange(72) % 24) / 24) ** 2


def _bins(megabytes: np.ndarray, group: int = 0, first_hour: int = 0) -> BinVolumes:
    hours = first_hour + np.arange(len(megabytes))
    octets = np.asarray(megabytes, dtype=np.float64) * 1e6
    return BinVolumes(
        np.full(len(hours), group, np.int64), hours * HOUR_MS, np.ones(len(hours)), octets, octets
    )


def _merged(*parts: BinVolumes) -> BinVolumes:
    names = ("group", "bin_start_ms", "records", "bytes", "packets")
    return BinVolumes(*(np.concatenate([getattr(p, name) for p in parts]) for name in names))


def _alert_hours(bins: BinVolumes, config: VolumeConfig | None = None) -> list[int]:
    return [
        int(alert.first_seen_ms // HOUR_MS)
        for hour in np.unique(bins.bin_start_ms).tolist()
        for alert in score_volume(bins, hour_start_ms=hour, config=config)
    ]


def test_a_diurnal_rhythm_is_not_a_peak() -> None:
    assert _alert_hours(_bins(DIURNAL_MB)) == []


@pytest.mark.parametrize("hour", [30, 45, 60, 71])
def test_a_peak_fires_on_its_exact_hour(hour: int) -> None:
    megabytes = DIURNAL_MB.copy()
    megabytes[hour] = 2_000
    assert _alert_hours(_bins(megabytes)) == [hour]


def test_alert_fields_and_evidence() -> None:
    megabytes = np.full(30, 50.0)
    megabytes[::2] = 40.0
    megabytes[26] = 900.0
    [alert] = score_volume(_bins(megabytes), hour_start_ms=26 * HOUR_MS, names={0: "sensor S0"})
    assert (alert.kind, alert.sip, alert.dip, alert.dport, alert.proto) == (
        "volume",
        None,
        None,
        None,
        None,
    )
    assert (alert.first_seen_ms, alert.last_seen_ms) == (26 * HOUR_MS, 27 * HOUR_MS - 1)
    # last 24 bins: twelve at 40 MB and twelve at 50 MB; the busy half is all 50 MB
    assert alert.evidence["baseline_median_bytes"] == pytest.approx(50e6)
    assert alert.evidence["ratio"] == 18.0
    assert alert.evidence["history_hours"] == 24
    assert alert.evidence["group"] == 0
    assert alert.evidence["robust_z"] == pytest.approx(np.log(18) / 0.2)  # MAD 0 → the floor
    assert alert.score == pytest.approx(0.5 + 0.5 * np.log(18 / 3) / np.log(10))
    assert alert.severity == "high"
    assert alert.reason == (
        "sensor S0 carried 900,000,000 bytes in the hour, 18.0x its busy-hour median of 50,000,000."
    )


@pytest.mark.parametrize(("peak_hour", "fires"), [(5, False), (19, False), (20, True)])
def test_warm_up_returns_nothing(peak_hour: int, fires: bool) -> None:
    """A peak with fewer than ``min_history_hours`` = 20 earlier bins is not judged."""
    megabytes = np.full(30, 50.0)
    megabytes[peak_hour] = 5_000
    assert _alert_hours(_bins(megabytes)) == ([peak_hour] if fires else [])
    assert _alert_hours(_bins(megabytes), VolumeConfig(min_history_hours=5)) == [peak_hour]


def test_first_morning_after_start_up_is_not_a_peak() -> None:
    """Nine quiet night hours, then the working day: the stratosphere-010 pattern."""
    megabytes = np.r_[np.full(9, 0.02), [3, 113, 359, 341, 24, 212, 46, 54, 24], np.full(6, 0.02)]
    assert _alert_hours(_bins(megabytes)) == []
    assert _alert_hours(_bins(megabytes), VolumeConfig(min_history_hours=6)) == [10, 11]


def test_groups_are_judged_apart() -> None:
    quiet = _bins(np.full(30, 100.0), group=0)
    loud = np.full(30, 100.0)
    loud[25] = 1_000
    alerts = score_volume(
        _merged(quiet, _bins(loud, group=7)), hour_start_ms=25 * HOUR_MS, names={7: "sensor S7"}
    )
    assert [(a.evidence["group"], a.reason.split(" carried")[0]) for a in alerts] == [
        (7, "sensor S7")
    ]


@pytest.mark.parametrize(
    ("config", "fires"),
    [
        (VolumeConfig(), True),
        (VolumeConfig(min_bytes=2_000_000_000), False),
        (VolumeConfig(min_ratio=11.0), False),
        (VolumeConfig(min_robust_z=100.0), False),
        (VolumeConfig(baseline_hours=3, min_history_hours=4), False),
    ],
)
def test_each_threshold_gates(config: VolumeConfig, fires: bool) -> None:
    megabytes = np.full(30, 100.0)
    megabytes[::3] = 120.0
    megabytes[25] = 1_000  # 10x
    assert bool(score_volume(_bins(megabytes), hour_start_ms=25 * HOUR_MS, config=config)) is fires


def test_missing_bins_are_not_zero_hours() -> None:
    """A sensor silent at night: its active hours form the baseline, not zeros."""
    bins = _merged(_bins(np.full(8, 100.0), first_hour=0), _bins([100, 100, 900], first_hour=20))
    assert _alert_hours(bins, VolumeConfig(min_history_hours=10)) == [22]
    assert _alert_hours(bins, VolumeConfig(min_history_hours=11)) == []


def test_no_bin_in_the_hour() -> None:
    assert score_volume(_bins(np.full(10, 100.0)), hour_start_ms=50 * HOUR_MS) == []


def test_from_flows_through_timebins() -> None:
    """Flows binned per sensor by :func:`bin_volumes` feed the scorer directly."""
    hours = np.repeat(np.arange(30), 10)
    octets = np.full(len(hours), 3_000_000)
    octets[hours == 27] = 40_000_000
    batch = make_batch(stime_ms=hours * HOUR_MS + 1000, bytes=octets, packets=octets // 1000)
    batch["sensor"] = 3
    bins = bin_volumes(batch, bin_ms=HOUR_MS, scheme="start-spike", group=batch["sensor"])
    [alert] = [a for h in range(30) for a in score_volume(bins, hour_start_ms=h * HOUR_MS)]
    assert (alert.first_seen_ms, alert.evidence["group"], alert.evidence["ratio"]) == (
        27 * HOUR_MS,
        3,
        13.333,
    )
