"""The whole path: real Kafka → ``silkwatch worker`` → real Prometheus → every dashboard query.

A synthetic day with planted attacks is published; a real Prometheus scrapes the
worker's ``/metrics``; then every panel query of both built dashboards must return
data. The alert-delivery panels are fed by ``silkwatch alerts deliver`` (its own
process and ``/metrics``), which ``tests/grafana/test_panels_prometheus.py`` covers.
"""

from __future__ import annotations

import uuid

import pytest

from silkwatch.connectors.kafka.publisher import FlowPublisher
from silkwatch.detectors.synthetic import synthetic_day
from silkwatch.grafana.build import DASHBOARDS, build_json, expand, panel_queries
from tests.grafana.test_panels_prometheus import query_until_data
from tests.streams.workers import start_worker, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus, pytest.mark.slow]

DELIVERER_METRICS = ("silkwatch_alert_deliveries", "silkwatch_alert_delivery_failures")

WORKER_QUERIES = [
    pytest.param(expr, id=f"{name}:{title}:{i}")
    for name in DASHBOARDS
    for i, (title, expr) in enumerate(panel_queries(build_json(name)))
    if not any(metric in expr for metric in DELIVERER_METRICS)
]


@pytest.fixture(scope="module")
def worker_scraped(kafka_broker, prometheus_server, tmp_path_factory):
    tag = uuid.uuid4().hex[:8]
    topic = f"flows-{tag}"
    worker = start_worker(
        kafka_broker.url, tmp_path_factory.mktemp("worker"), app_id=f"panels-{tag}", topic=topic
    )
    day = synthetic_day(1, hosts=300)
    with FlowPublisher(kafka_broker.url, topic) as publisher:
        for batch in day.batches:
            publisher.send(batch)
    prometheus_server.scrape([f"127.0.0.1:{worker.web_port}"])
    wait_for(
        lambda: (
            bool(prometheus_server.query("sum(silkwatch_flows_total) == 175772"))
            and bool(prometheus_server.query("sum(silkwatch_alerts_total) >= 5"))
        ),
        timeout_s=600,
        what="every flow and the alerts of the synthetic day in Prometheus",
    )
    yield prometheus_server
    worker.service.stop()


def test_worker_exports_every_flow(worker_scraped):
    (sample,) = query_until_data(worker_scraped, "sum(silkwatch_flows_total)")
    assert float(sample["value"][1]) == 175_772


@pytest.mark.parametrize("expr", WORKER_QUERIES)
def test_every_panel_query_returns_worker_data(worker_scraped, expr):
    real = expand(expr).removesuffix(" or vector(0)")
    assert query_until_data(worker_scraped, real), f"no data for {real!r}"
