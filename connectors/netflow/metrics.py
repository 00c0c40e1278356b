"""The collector's Prometheus series, read from the decoder's counters at scrape time.

The decoder counts per (exporter, domain) in plain integers (no metric code in
decode loops); this collector turns them into series when Prometheus scrapes,
as goflow2's metrics wrap its stages. Names follow ``connectors/prometheus.py``:

* ``silkwatch_netflow_packets_total{exporter,domain}``
* ``silkwatch_netflow_records_total{exporter,domain}``
* ``silkwatch_netflow_lost_records_total{exporter,domain}`` (v5 and IPFIX sequences)
* ``silkwatch_netflow_lost_packets_total{exporter,domain}`` (v9 sequences)
* ``silkwatch_netflow_template_misses_total{exporter,domain}``
* ``silkwatch_netflow_pending_dropped_total{exporter,domain}``
* ``silkwatch_netflow_malformed_total{exporter,domain}``
* ``silkwatch_netflow_templates``, ``silkwatch_netflow_receive_dropped_total``

The exporter label carries an address, against the usual rule, because the
issue asks for per-exporter loss; its cardinality is bounded by the decoder's
``max_sources`` (exporter, domain) pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from silkwatch.connectors.netflow.decoder import Decoder, ExporterCounts

_HELP = {
    "packets": "Export datagrams received",
    "records": "Flow records decoded",
    "lost_records": "Records missing by sequence number (NetFlow v5, IPFIX)",
    "lost_packets": "Export packets missing by sequence number (NetFlow v9)",
    "template_misses": "Data sets that arrived before their template",
    "pending_dropped": "Data sets dropped after waiting for their template",
    "malformed": "Malformed datagrams (counted, logged, skipped)",
}


class CollectorMetrics(Collector):
    """Series for one decoder (and optionally its receiver's drop counter).

    >>> from prometheus_client import generate_latest
    >>> registry = CollectorRegistry()
    >>> decoder = Decoder()
    >>> decoder.counts_of("192.0.2.1", 0).records = 5
    >>> _ = register_metrics(registry, decoder)
    >>> "silkwatch_netflow_records_total{domain=\\"0\\",exporter=\\"192.0.2.1\\"} 5.0" in (
    ...     generate_latest(registry).decode())
    True
    """

    def __init__(self, decoder: Decoder, receive_dropped: Callable[[], int] | None = None):
        self.decoder = decoder
        self.receive_dropped = receive_dropped

    def collect(self) -> Iterator[Metric]:
        """One family per counter, one sample per (exporter, domain)."""
        counts: list[tuple[tuple[str, int], ExporterCounts]] = list(self.decoder.counts.items())
        for name, text in _HELP.items():
            family = CounterMetricFamily(
                f"silkwatch_netflow_{name}", text, labels=("exporter", "domain")
            )
            for (exporter, domain), values in counts:
                family.add_metric((exporter, str(domain)), getattr(values, name))
            yield family
        yield GaugeMetricFamily(
            "silkwatch_netflow_templates", "Templates in the cache", value=len(self.decoder.cache)
        )
        if self.receive_dropped is not None:
            yield CounterMetricFamily(
                "silkwatch_netflow_receive_dropped",
                "Datagrams dropped by the kernel or the receive queue",
                value=self.receive_dropped(),
            )


def register_metrics(
    registry: CollectorRegistry,
    decoder: Decoder,
    receive_dropped: Callable[[], int] | None = None,
) -> CollectorMetrics:
    """Register the collector's series in ``registry``."""
    collector = CollectorMetrics(decoder, receive_dropped)
    registry.register(collector)
    return collector
