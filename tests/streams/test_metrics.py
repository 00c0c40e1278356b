"""The worker's exports that read its tables and consumer (streams/metrics.py)."""

from types import SimpleNamespace

from silkwatch.streams.metrics import record_lags, record_network_hours, worker_metrics
from silkwatch.streams.processing import Stamped

H = 3_600_000


def test_a_fresh_registry_exports_bad_frames_as_zero():
    registry, _ = worker_metrics()
    assert registry.get_sample_value("silkwatch_decode_errors_total", {"reason": "bad_frame"}) == 0


def test_hour_gauges_sum_the_bins_of_the_given_partitions_only():
    registry, metrics = worker_metrics()
    bins = {
        (0, 0): Stamped(1, {("total", 0): [1.0, 100.0, 1.0]}),
        (1, 0): Stamped(1, {("total", 0): [1.0, 20.0, 1.0]}),
        (2, 0): Stamped(1, {("total", 0): [1.0, 5000.0, 1.0]}),  # a standby copy
        (0, H): Stamped(2, {("total", 0): [1.0, 7.0, 1.0], ("proto", 6): [1.0, 7.0, 1.0]}),
    }
    record_network_hours(metrics, bins, {0, 1}, now_ms=H + 10)
    value = registry.get_sample_value
    assert value("silkwatch_hour_bytes", {"hour": "current"}) == 7
    assert value("silkwatch_hour_bytes", {"hour": "last_closed"}) == 120
    assert value("silkwatch_hour_start_timestamp_seconds", {"hour": "last_closed"}) == 0


def test_lag_is_counted_for_partitions_of_the_topic_that_processed_a_message():
    registry, metrics = worker_metrics()
    assigned = [SimpleNamespace(topic=t, partition=p) for t, p in [("f", 0), ("f", 1), ("b", 0)]]
    ends = {("f", 0): 10, ("f", 1): 4, ("b", 0): 99}
    consumer = SimpleNamespace(
        assignment=lambda: assigned, highwater=lambda tp: ends[(tp.topic, tp.partition)]
    )
    record_lags(metrics, consumer, "f", {0: 6, 2: 1})
    lag = "silkwatch_kafka_consumer_lag_messages"
    assert registry.get_sample_value(lag, {"topic": "f", "partition": "0"}) == 3
    assert registry.get_sample_value(lag, {"topic": "f", "partition": "1"}) is None
    assert registry.get_sample_value(lag, {"topic": "b", "partition": "0"}) is None
