"""The worker's Prometheus side: its registry, and the exports that read tables and the consumer.

The series and the per-batch ``record_*`` helpers are :mod:`silkwatch.connectors.prometheus`;
the agents call those with the :class:`~silkwatch.connectors.prometheus.Metrics` made here.
What lives here is what needs the worker's own state: the hour gauges summed
from the bins table of the partitions it owns, and the consumer lag per flows
partition.
"""

from __future__ import annotations

from collections.abc import Container, Hashable, Mapping

from faust.types import ConsumerT
from prometheus_client import CollectorRegistry

from silkwatch.connectors.kafka.frame import FrameError
from silkwatch.connectors.prometheus import (
    Metrics,
    create_metrics,
    record_consumer_lag,
    record_hour,
)
from silkwatch.streams.network import NetworkHours, network_totals
from silkwatch.streams.processing import Stamped

#: the content type of ``/metrics`` (:func:`silkwatch.connectors.prometheus.render`): aiohttp
#: refuses
#: a charset inside ``content_type``, and Prometheus reads UTF-8 by default
CONTENT_TYPE = "text/plain; version=0.0.4"


def worker_metrics() -> tuple[CollectorRegistry, Metrics]:
    """A fresh registry holding every silkwatch series, and the series.

    A bad frame's counter is exported as 0 before the first one, so a dashboard
    can tell "none yet" from "not exported".
    """
    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    metrics.decode_errors.labels(FrameError.reason)
    return registry, metrics


def record_network_hours(
    metrics: Metrics,
    bins: Mapping[Hashable, Stamped],
    partitions: Container[int],
    *,
    now_ms: int,
) -> None:
    """The bytes of the current and the last closed hour, over these partitions' bins."""
    hourly = network_totals(NetworkHours.summarise(bins, partitions))
    record_hour(metrics, {hour: int(v[1]) for hour, v in hourly.items()}, now_ms=now_ms)


def record_lags(
    metrics: Metrics, consumer: ConsumerT, topic: str, processed_offsets: Mapping[int, int]
) -> None:
    """Messages not yet processed, per assigned partition of ``topic`` that has processed one."""
    for tp in consumer.assignment():
        if tp.topic == topic and tp.partition in processed_offsets:
            end = consumer.highwater(tp)
            if end is not None:
                lag = max(0, end - processed_offsets[tp.partition] - 1)
                record_consumer_lag(metrics, tp.topic, tp.partition, lag)
