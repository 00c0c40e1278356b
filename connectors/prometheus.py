"""Every Prometheus series silkwatch exports, and helpers that record whole batches.

The series live in one ``NamedTuple`` built against a registry the caller passes
(as Faust's ``sensors/prometheus.py`` does), so each test starts from an empty
``CollectorRegistry``. Names follow goflow2 and the Prometheus conventions:
``silkwatch_`` prefix, counters declared without ``_total`` (the client appends
it), base units (bytes, seconds).

Labels take small fixed value sets. The two exceptions are the top-N hosts of the
bubble view and the last-N alerts of the alert table: they carry addresses, so
their label sets are *replaced* on every update and never exceed N.

The flow counters' (sensor, flowtype, protocol) label sets are capped too
(``max_flow_series``, default ``MAX_FLOW_SERIES``): the first label sets seen,
the largest first within each batch, get series of their own; every later one
is counted under ``sensor="other", flowtype="other", protocol="other"``. A counter
cannot move from ``other`` to a series of its own without breaking ``rate()``,
so this is top-N as first admitted, which for flow data is the steady heavy
hitters. With the cap, a scrape stays under a fixed size however many
combinations the data holds (``docs/dashboards.md``).

Recording is vectorised: one ``np.unique`` per batch, one ``inc`` per distinct
label set, never a Python loop over flows.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, Protocol

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from silkwatch.detectors.grouping import group_rows, key_words
from silkwatch.detectors.schema import HOUR_MS, FlowBatch, ip_strings

#: IANA keywords for the protocols a wall display should name; others stay numeric
PROTOCOL_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "ipv6-icmp"}

#: per-batch processing time, 1 ms … 10 s
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: how many recent alerts the alert table keeps as labelled series
RECENT_ALERTS = 20

#: most (sensor, flowtype, protocol) label sets of the flow counters; the rest is ``other``
MAX_FLOW_SERIES = 500

#: most partitions with a freshness series of their own; the rest is ``other``
MAX_PARTITION_SERIES = 256

#: the label value of everything past a cap
OTHER = "other"

_FLOW_LABELS = ("sensor", "flowtype", "protocol")
_ALERT_LABELS = ("kind", "severity", "sip", "dip", "dport", "protocol", "reason")

#: longest ``reason`` label of the alert table (the sentence, cut with "…")
MAX_REASON_LABEL_CHARS = 200

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


class CountryLookup(Protocol):
    """What ``record_batch`` needs from a Geo-IP database (see ``silkwatch.connectors.geoip``)."""

    def country_codes(self, addresses: np.ndarray, ipv6: np.ndarray) -> np.ndarray:
        """Two-letter country code of each 16-byte address (``"--"`` when unknown)."""
        ...


class Metrics(NamedTuple):
    """Every silkwatch series, created against one registry."""

    flows: Counter
    flow_bytes: Counter
    flow_packets: Counter
    hour_bytes: Gauge
    hour_start: Gauge
    top_host_bytes: Gauge
    top_host_packets: Gauge
    country_bytes: Counter
    alerts: Counter
    recent_alert_score: Gauge
    recent_alert_last_seen: Gauge
    consumer_lag: Gauge
    batch_latency: Histogram
    decode_errors: Counter
    shed_active: Gauge
    deliveries: Counter
    delivery_failures: Counter
    dead_letters: Counter
    newest_flow: Gauge
    site_incomplete: Counter
    #: N of the top-N host series (not a series; bounds their label cardinality)
    top_hosts: int
    #: cap on the flow counters' label sets (not a series)
    max_flow_series: int
    #: the flow counters' label sets admitted so far (mutable; bounded by the cap)
    flow_series: set[tuple[str, str, str]]


def create_metrics(
    registry: CollectorRegistry, *, top_hosts: int = 20, max_flow_series: int = MAX_FLOW_SERIES
) -> Metrics:
    """Create every silkwatch series in ``registry``.

    :param registry: where the series are registered; pass a fresh one in tests.
    :param top_hosts: how many source hosts the bubble view shows. Default - 20.
    :param max_flow_series: most (sensor, flowtype, protocol) label sets of the
        flow counters; later ones count as ``other``. Default - ``MAX_FLOW_SERIES``
    """
    if top_hosts < 1:
        raise ValueError(f"top_hosts must be at least 1, not {top_hosts}")
    if max_flow_series < 1:
        raise ValueError(f"max_flow_series must be at least 1, not {max_flow_series}")
    ns = {"namespace": "silkwatch", "registry": registry}
    return Metrics(
        flows=Counter("flows", "Flow records processed.", _FLOW_LABELS, **ns),
        flow_bytes=Counter(
            "flow_bytes", "Bytes carried by the processed flows.", _FLOW_LABELS, **ns
        ),
        flow_packets=Counter(
            "flow_packets", "Packets carried by the processed flows.", _FLOW_LABELS, **ns
        ),
        hour_bytes=Gauge(
            "hour_bytes",
            "Bytes of flows starting in the current or the last closed hour (event time).",
            ("hour",),
            **ns,
        ),
        hour_start=Gauge(
            "hour_start_timestamp_seconds",
            "Start of the hour that hour_bytes describes, seconds since the epoch.",
            ("hour",),
            **ns,
        ),
        top_host_bytes=Gauge(
            "top_host_bytes", "Bytes sent by each of the top-N source hosts.", ("host",), **ns
        ),
        top_host_packets=Gauge(
            "top_host_packets", "Packets sent by each of the top-N source hosts.", ("host",), **ns
        ),
        country_bytes=Counter(
            "destination_country_bytes",
            "Bytes by destination country (ISO 3166 alpha-2, -- when unknown).",
            ("country",),
            **ns,
        ),
        alerts=Counter("alerts", "Alerts raised.", ("kind", "severity"), **ns),
        recent_alert_score=Gauge(
            "recent_alert_score", "Score of each of the most recent alerts.", _ALERT_LABELS, **ns
        ),
        recent_alert_last_seen=Gauge(
            "recent_alert_last_seen_timestamp_seconds",
            "Event time of the last flow of each of the most recent alerts.",
            _ALERT_LABELS,
            **ns,
        ),
        consumer_lag=Gauge(
            "kafka_consumer_lag_messages",
            "Messages between the committed offset and the end of each partition.",
            ("topic", "partition"),
            **ns,
        ),
        batch_latency=Histogram(
            "batch_latency_seconds",
            "Wall time from receiving a flow batch to having scored it.",
            buckets=LATENCY_BUCKETS_S,
            **ns,
        ),
        decode_errors=Counter(
            "decode_errors", "Flow records or frames that could not be decoded.", ("reason",), **ns
        ),
        shed_active=Gauge(
            "load_shed_active", "1 while the worker sheds load because it falls behind.", **ns
        ),
        deliveries=Counter(
            "alert_deliveries", "Alert notifications a receiver acknowledged.", ("sink",), **ns
        ),
        delivery_failures=Counter(
            "alert_delivery_failures",
            "Failed attempts to deliver alert notifications (each retry counts).",
            ("sink", "reason"),
            **ns,
        ),
        dead_letters=Counter(
            "alerts_dead_lettered",
            "Invalid alert records written to the dead-letter topic, by schema reason.",
            ("reason",),
            **ns,
        ),
        newest_flow=Gauge(
            "newest_flow_timestamp_seconds",
            "Event time of the newest flow seen on each flows partition (data freshness).",
            ("partition",),
            **ns,
        ),
        site_incomplete=Counter(
            "site_incomplete_closes",
            "Hour closes scored without every flows partition's population part "
            "(one stayed away longer than SILKWATCH_SITE_WAIT_S).",
            **ns,
        ),
        top_hosts=top_hosts,
        max_flow_series=max_flow_series,
        flow_series=set(),
    )


def protocol_label(proto: int) -> str:
    """The ``protocol`` label value: an IANA keyword for common protocols, else the number."""
    return PROTOCOL_NAMES.get(int(proto), str(int(proto)))


def record_batch(
    metrics: Metrics, batch: FlowBatch, *, countries: CountryLookup | None = None
) -> None:
    """Count a batch's flows, bytes and packets by sensor, flowtype and protocol.

    With ``countries`` also add its bytes by destination country; the lookup sees
    each distinct destination once.
    """
    if not len(batch):
        return
    key = (
        (batch["sensor"].astype(np.int64) << 16)
        | (batch["flowtype"].astype(np.int64) << 8)
        | batch["proto"].astype(np.int64)
    )
    groups = group_rows(key_words(key))  # a sort-free np.unique
    keys, inverse = key[groups.first], groups.inverse
    flows = groups.sizes
    octets = np.bincount(inverse, weights=batch["bytes"].astype(np.float64), minlength=len(keys))
    packets = np.bincount(inverse, weights=batch["packets"].astype(np.float64), minlength=len(keys))
    order = np.argsort(-octets, kind="stable")  # largest first: they get the free series
    for k, n, b, p in zip(
        keys[order].tolist(),
        flows[order].tolist(),
        octets[order].tolist(),
        packets[order].tolist(),
        strict=True,
    ):
        labels = _flow_labels(
            metrics, (str(k >> 16), str((k >> 8) & 0xFF), protocol_label(k & 0xFF))
        )
        metrics.flows.labels(*labels).inc(n)
        metrics.flow_bytes.labels(*labels).inc(b)
        metrics.flow_packets.labels(*labels).inc(p)
    if countries is not None:
        record_countries(metrics, batch, countries)


def _flow_labels(metrics: Metrics, labels: tuple[str, str, str]) -> tuple[str, str, str]:
    """``labels`` if admitted (or still room to admit them), else the ``other`` set."""
    admitted = metrics.flow_series
    if labels in admitted:
        return labels
    if len(admitted) < metrics.max_flow_series:
        admitted.add(labels)
        return labels
    return (OTHER, OTHER, OTHER)


def record_newest_flow(metrics: Metrics, partition: int, stime_ms_max: int) -> None:
    """Raise the freshness gauge of ``partition`` to ``stime_ms_max`` (never lowers it:
    late flows do not make data look older).

    :param partition: the flows topic partition the batch came from
    :param stime_ms_max: start time of the batch's newest flow, ms since the epoch

    Examples
    --------
    >>> m = create_metrics(CollectorRegistry())
    >>> record_newest_flow(m, 3, 1434556800000); record_newest_flow(m, 3, 1434553200000)
    >>> m.newest_flow.labels("3")._value.get()
    1434556800.0
    """
    label = str(int(partition)) if int(partition) < MAX_PARTITION_SERIES else OTHER
    gauge = metrics.newest_flow.labels(label)
    seconds = int(stime_ms_max) / 1000
    if seconds > gauge._value.get():
        gauge.set(seconds)


def record_dead_letter(metrics: Metrics, reason: str) -> None:
    """Count one invalid alert record sent to the dead-letter topic (a schema reason)."""
    metrics.dead_letters.labels(reason).inc()


def record_countries(metrics: Metrics, batch: FlowBatch, countries: CountryLookup) -> None:
    """Add a batch's bytes by destination country (each distinct destination looked up once)."""
    if not len(batch):
        return
    codes = countries.country_codes(batch["dip"], batch["ipv6"])
    names, inverse = np.unique(codes, return_inverse=True)
    octets = np.bincount(inverse, weights=batch["bytes"].astype(np.float64))
    for name, b in zip(names.tolist(), octets.tolist(), strict=True):
        metrics.country_bytes.labels(name).inc(b)


def record_hour(
    metrics: Metrics, hourly_bytes: Mapping[int, int], *, now_ms: int, bin_ms: int = HOUR_MS
) -> None:
    """Publish the current and the last closed hour of hourly byte bins.

    :param hourly_bytes: bytes by bin start (ms since the epoch), as the hourly
        aggregator's ``result`` returns them.
    :param now_ms: event time that decides which hour is current (the newest flow
        seen), never the wall clock.
    :param bin_ms: bin width. Default - one hour.
    """
    current_ms = now_ms - now_ms % bin_ms
    for hour, start_ms in (("current", current_ms), ("last_closed", current_ms - bin_ms)):
        metrics.hour_bytes.labels(hour).set(hourly_bytes.get(start_ms, 0))
        metrics.hour_start.labels(hour).set(start_ms / 1000)


def record_top_hosts(
    metrics: Metrics,
    hosts: np.ndarray,
    ipv6: np.ndarray,
    octets: np.ndarray,
    packets: np.ndarray,
) -> None:
    """Replace the top-host series with the N hosts that sent the most bytes.

    The previous label set is dropped first, so at most N hosts are ever exported
    however the ranking churns.

    :param hosts: one 16-byte source address per host (a group-by result).
    :param ipv6: whether each address is IPv6.
    :param octets: bytes sent by each host.
    :param packets: packets sent by each host.
    """
    top = np.argsort(-np.asarray(octets, dtype=np.float64), kind="stable")[: metrics.top_hosts]
    names = ip_strings(np.asarray(hosts)[top], np.asarray(ipv6)[top])
    metrics.top_host_bytes.clear()
    metrics.top_host_packets.clear()
    for name, b, p in zip(names, octets[top].tolist(), packets[top].tolist(), strict=True):
        metrics.top_host_bytes.labels(name).set(b)
        metrics.top_host_packets.labels(name).set(p)


def record_alerts(metrics: Metrics, alerts: Iterable[Any]) -> None:
    """Count alerts by kind and severity and keep the newest in the alert table.

    The table series hold the ``RECENT_ALERTS`` alerts with the latest
    ``last_seen_ms``; older ones are removed, bounding their cardinality. Their
    ``reason`` label is the alert's sentence (one line, cut at
    ``MAX_REASON_LABEL_CHARS``), which the wall's alert table shows.
    """
    for alert in alerts:
        metrics.alerts.labels(alert.kind, alert.severity).inc()
        labels = (
            alert.kind,
            alert.severity,
            _address_text(alert.sip),
            _address_text(alert.dip),
            "" if alert.dport is None else str(int(alert.dport)),
            "" if alert.proto is None else protocol_label(alert.proto),
            reason_label(getattr(alert, "reason", "")),
        )
        metrics.recent_alert_score.labels(*labels).set(float(alert.score))
        metrics.recent_alert_last_seen.labels(*labels).set(alert.last_seen_ms / 1000)
    _trim_recent_alerts(metrics)


def reason_label(reason: str) -> str:
    """The alert's sentence as a label value: one line, at most ``MAX_REASON_LABEL_CHARS``.

    Examples
    --------
    >>> reason_label("Regular\\nbeacon."), len(reason_label("x" * 500))
    ('Regular beacon.', 200)
    """
    text = _CONTROL.sub(" ", reason or "")
    if len(text) > MAX_REASON_LABEL_CHARS:
        text = text[: MAX_REASON_LABEL_CHARS - 1] + "…"
    return text


def _trim_recent_alerts(metrics: Metrics) -> None:
    """Remove all but the ``RECENT_ALERTS`` newest alert-table series."""
    samples = metrics.recent_alert_last_seen.collect()[0].samples
    if len(samples) <= RECENT_ALERTS:
        return
    by_age = sorted(samples, key=lambda s: s.value, reverse=True)
    for sample in by_age[RECENT_ALERTS:]:
        labels = tuple(sample.labels[name] for name in _ALERT_LABELS)
        metrics.recent_alert_last_seen.remove(*labels)
        metrics.recent_alert_score.remove(*labels)


def _address_text(address: Any) -> str:
    """An alert address (text, 16 raw bytes, an ``ipaddress`` object or None) as text."""
    if address is None:
        return ""
    if isinstance(address, bytes | np.void):
        mapped = ipaddress.IPv6Address(bytes(address))
        return str(mapped.ipv4_mapped or mapped)
    return str(address)


def record_decode_error(metrics: Metrics, reason: str) -> None:
    """Count one record or frame that could not be decoded (``SilkwatchError.reason``)."""
    metrics.decode_errors.labels(reason).inc()


def record_batch_latency(metrics: Metrics, seconds: float) -> None:
    """Observe the time one batch took from receipt to scores, in seconds."""
    metrics.batch_latency.observe(seconds)


def record_consumer_lag(metrics: Metrics, topic: str, partition: int, lag_messages: int) -> None:
    """Set how far the consumer is behind on one partition, in messages."""
    metrics.consumer_lag.labels(topic, str(partition)).set(lag_messages)


def record_shed(metrics: Metrics, active: bool) -> None:
    """Set whether the worker is currently shedding load."""
    metrics.shed_active.set(1 if active else 0)


def record_delivery(metrics: Metrics, sink: str, *, failure_reason: str | None = None) -> None:
    """Count one delivery attempt: acknowledged, or failed for ``failure_reason``."""
    if failure_reason is None:
        metrics.deliveries.labels(sink).inc()
    else:
        metrics.delivery_failures.labels(sink, failure_reason).inc()


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text exposition format, as ``/metrics`` serves it."""
    return generate_latest(registry)
