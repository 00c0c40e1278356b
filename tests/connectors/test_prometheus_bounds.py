"""/metrics stays under a fixed size however many label combinations the flows hold, and
the new series (freshness, dead letters) record what they say."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from silkwatch.connectors.prometheus import (
    MAX_FLOW_SERIES,
    MAX_PARTITION_SERIES,
    create_metrics,
    record_batch,
    record_dead_letter,
    record_newest_flow,
    render,
)
from silkwatch.detectors.schema import make_batch

#: the documented bound (docs/dashboards.md): every series of a worker that saw 30,000
#: (sensor, flowtype, protocol) combinations, with ``_created`` lines, under 384 KiB
#: (250,921 bytes, 3,070 lines when written, against 15 MB and 180,069 lines uncapped)
MAX_SCRAPE_BYTES = 384 * 1024


def combinations(n: int, *, offset: int = 0) -> np.ndarray:
    """A batch of ``n`` flows, each its own (sensor, flowtype, protocol), bytes descending."""
    i = np.arange(offset, offset + n)
    return make_batch(
        sensor=i // 100 % 65536,
        flowtype=i % 100,
        proto=np.full(n, 6),
        packets=np.ones(n, dtype=np.int64),
        bytes=1_000_000 - i,
    )


def flow_series(registry, name="silkwatch_flows_total") -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["sensor"], s.labels["flowtype"], s.labels["protocol"]): s.value
        for metric in registry.collect()
        for s in metric.samples
        if s.name == name
    }


def test_30000_label_combinations_keep_the_scrape_under_a_fixed_size():
    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    for part in range(3):  # three batches of 10,000 new combinations each
        record_batch(metrics, combinations(10_000, offset=part * 10_000))
    series = flow_series(registry)
    assert len(series) == MAX_FLOW_SERIES + 1  # 500 of their own, and "other"
    assert series[("other", "other", "other")] == 30_000 - MAX_FLOW_SERIES
    assert sum(series.values()) == 30_000  # nothing lost, only pooled
    # the largest flows of the first batch got the series: sensors 0-4, flowtypes 0-99
    assert sorted(k for k in series if k[0] != "other")[:2] == [
        ("0", "0", "tcp"),
        ("0", "1", "tcp"),
    ]
    assert ("5", "0", "tcp") not in series
    size = len(render(registry))
    assert size < MAX_SCRAPE_BYTES, size


def test_an_admitted_label_set_keeps_its_series_after_the_cap_is_reached():
    registry = CollectorRegistry()
    metrics = create_metrics(registry, max_flow_series=2)
    record_batch(metrics, make_batch(sensor=[1, 2, 3], proto=[6, 6, 6], bytes=[30, 20, 10]))
    record_batch(metrics, make_batch(sensor=[3, 1], proto=[6, 6], bytes=[5, 5]))
    assert flow_series(registry, "silkwatch_flow_bytes_total") == {
        ("1", "255", "tcp"): 35.0,
        ("2", "255", "tcp"): 20.0,
        ("other", "other", "other"): 15.0,
    }


def test_max_flow_series_must_be_positive():
    with pytest.raises(ValueError, match="max_flow_series must be at least 1, not 0"):
        create_metrics(CollectorRegistry(), max_flow_series=0)


def test_newest_flow_per_partition_only_moves_forward():
    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    record_newest_flow(metrics, 0, 1_434_556_800_000)
    record_newest_flow(metrics, 0, 1_434_553_200_000)  # a late batch: stays
    record_newest_flow(metrics, 1, 1_434_553_200_500)
    record_newest_flow(metrics, MAX_PARTITION_SERIES + 3, 1_000)
    assert {s.labels["partition"]: s.value for s in metrics.newest_flow.collect()[0].samples} == {
        "0": 1_434_556_800.0,
        "1": 1_434_553_200.5,
        "other": 1.0,
    }


def test_dead_letters_by_reason():
    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    record_dead_letter(metrics, "invalid_severity")
    record_dead_letter(metrics, "invalid_severity")
    record_dead_letter(metrics, "missing_first_seen")
    assert (
        registry.get_sample_value(
            "silkwatch_alerts_dead_lettered_total", {"reason": "invalid_severity"}
        )
        == 2.0
    )
    assert (
        registry.get_sample_value(
            "silkwatch_alerts_dead_lettered_total", {"reason": "missing_first_seen"}
        )
        == 1.0
    )
