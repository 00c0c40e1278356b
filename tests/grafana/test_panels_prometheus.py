"""Every panel query of the built dashboards returns data from a real Prometheus.

A real Prometheus (``prometheus_server``) scrapes ``metrics_target``: here a tiny
HTTP server serving ``render(registry)`` after the synthetic day was recorded
through ``silkwatch.connectors.prometheus``. To run the same check against the worker,
override ``metrics_target`` with the worker's web ``host:port``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from silkwatch.connectors.geoip import CountryDB
from silkwatch.connectors.prometheus import (
    create_metrics,
    record_alerts,
    record_batch,
    record_batch_latency,
    record_consumer_lag,
    record_dead_letter,
    record_decode_error,
    record_delivery,
    record_hour,
    record_newest_flow,
    record_shed,
    record_top_hosts,
    render,
)
from silkwatch.detectors import groupby
from silkwatch.detectors.alerts import Alert
from silkwatch.detectors.synthetic import synthetic_day
from silkwatch.grafana.build import DASHBOARDS, build_json, expand, iter_panels, panel_queries

pytestmark = pytest.mark.prometheus

HOUR_MS = 3_600_000
#: a query needing two scrapes (rate, increase) has data after ~2 s at 1 s scrapes
QUERY_TRIES, QUERY_PAUSE_S = 100, 0.1


def record_sample(registry: CollectorRegistry) -> dict[str, float]:
    """Record the synthetic day as the worker would; returns a few exact expectations."""
    metrics = create_metrics(registry, top_hosts=20)
    day = synthetic_day(7, hosts=50)
    batch = np.concatenate(day.batches)
    with CountryDB() as countries:
        for part in day.batches:
            record_batch(metrics, part, countries=countries)
    hours = batch["stime_ms"] // HOUR_MS * HOUR_MS
    starts, inverse = np.unique(hours, return_inverse=True)
    sums = np.bincount(inverse, weights=batch["bytes"].astype(np.float64))
    now_ms = int(batch["stime_ms"].max())
    record_hour(metrics, dict(zip(starts.tolist(), sums.tolist(), strict=True)), now_ms=now_ms)
    hosts = groupby.result(groupby.update(groupby.empty("sip", "bytes,packets"), batch))
    record_top_hosts(
        metrics,
        hosts.keys["sip"],
        groupby.is_ipv6(hosts.keys["sip"]),
        hosts.columns["bytes"],
        hosts.columns["packets"],
    )
    record_alerts(
        metrics,
        [
            Alert(p.kind, "high", 0.9, p.sip, p.dip, p.dport, p.proto, p.first_ms, p.last_ms)
            for p in day.planted
        ],
    )
    record_decode_error(metrics, "truncated_record")
    for seconds in (0.004, 0.02, 0.3):
        record_batch_latency(metrics, seconds)
    record_consumer_lag(metrics, "flows", 0, 42)
    record_shed(metrics, False)
    record_delivery(metrics, "slack")
    record_delivery(metrics, "slack", failure_reason="http_503")
    record_dead_letter(metrics, "invalid_severity")
    parts = np.array_split(batch, 4)  # as four flows partitions would see the day
    for partition, part in enumerate(parts):
        record_newest_flow(metrics, partition, int(part["stime_ms"].max()))
    return {
        "sum(silkwatch_flows_total)": float(len(batch)),
        "sum(silkwatch_flow_bytes_total)": float(batch["bytes"].sum()),
        "sum(silkwatch_destination_country_bytes_total)": float(batch["bytes"].sum()),
        'silkwatch_hour_bytes{hour="current"}': float(sums[-1]),
        "count(silkwatch_top_host_bytes)": 20.0,
        "max(silkwatch_top_host_bytes)": float(hosts.columns["bytes"].max()),
        "sum(silkwatch_alerts_total)": float(len(day.planted)),
        "count(silkwatch_newest_flow_timestamp_seconds)": 4.0,
        "max(silkwatch_newest_flow_timestamp_seconds)": now_ms / 1000,
        "sum(silkwatch_alerts_dead_lettered_total)": 1.0,
        'sum(up{job="silkwatch"})': 1.0,
    }


@pytest.fixture(scope="module")
def exported() -> Iterator[tuple[str, dict[str, float]]]:
    """A /metrics server on 127.0.0.1 with the sample recorded: (host:port, expectations)."""
    registry = CollectorRegistry()
    expected = record_sample(registry)
    body = render(registry)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", expected
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def metrics_target(exported) -> str:
    """``host:port`` whose ``/metrics`` Prometheus scrapes (the worker's, in the lead's test)."""
    return exported[0]


@pytest.fixture(scope="module")
def scraped(prometheus_server, metrics_target):
    prometheus_server.scrape([metrics_target])
    return prometheus_server


def query_until_data(server, expr: str) -> list[dict]:
    """The query's result once it has any (bounded retries while scrapes arrive)."""
    for _ in range(QUERY_TRIES):
        result = server.query(expr)
        if result:
            return result
        time.sleep(QUERY_PAUSE_S)
    return []


ALL_QUERIES = [
    pytest.param(expr, id=f"{name}:{title}:{i}")
    for name in DASHBOARDS
    for i, (title, expr) in enumerate(panel_queries(build_json(name)))
]


@pytest.mark.parametrize("expr", ALL_QUERIES)
def test_every_panel_query_returns_data(scraped, expr):
    # the `or vector(0)` fallbacks (0 instead of "No data" on the wall) must not
    # hide a query that finds nothing: ask without them
    real = expand(expr).removesuffix(" or vector(0)")
    assert query_until_data(scraped, real), f"no data for {real!r}"


def test_prometheus_holds_the_exact_sample(scraped, exported):
    _, expected = exported
    got = {expr: float(query_until_data(scraped, expr)[0]["value"][1]) for expr in expected}
    assert got == expected


MERGED_PANELS = [
    pytest.param(panel, id=f"{name}:{panel['title']}")
    for name in DASHBOARDS
    for panel in iter_panels(build_json(name))
    if any(t["id"] == "merge" for t in panel.get("transformations", []))
]


@pytest.mark.parametrize("panel", MERGED_PANELS)
def test_merged_frames_share_their_label_sets(scraped, panel):
    # Grafana's "merge" joins the instant-query tables row by row on equal label
    # columns: every query of the panel must return the same label sets, or the
    # bubble chart and tables would show half-empty rows
    label_sets = [
        sorted(
            tuple(sorted(r["metric"].items())) for r in query_until_data(scraped, expand(t["expr"]))
        )
        for t in panel["targets"]
    ]
    assert label_sets[0], panel["title"]
    assert all(s == label_sets[0] for s in label_sets[1:]), panel["title"]
