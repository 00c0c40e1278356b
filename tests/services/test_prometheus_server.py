"""The test Prometheus scrapes exactly the targets a test names, and answers PromQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from tests.services.process import free_port
from tests.services.prometheus import PrometheusServer


def _exporter(events: int) -> Iterator[str]:
    """A prometheus-client exporter whose counter stands at ``events``; yields host:port."""
    registry = CollectorRegistry()
    Counter("silkwatch_test_events", "events seen", registry=registry).inc(events)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield f"127.0.0.1:{port}"
    server.shutdown()
    thread.join()


@pytest.fixture
def exporter_a() -> Iterator[str]:
    yield from _exporter(1234)


@pytest.fixture
def exporter_b() -> Iterator[str]:
    yield from _exporter(77)


def _events_by_instance(prometheus: PrometheusServer) -> dict[str, str]:
    return {
        sample["metric"]["instance"]: sample["value"][1]
        for sample in prometheus.query("silkwatch_test_events_total")
    }


def test_scrape_reads_exactly_the_named_targets(
    prometheus_server: PrometheusServer, exporter_a: str, exporter_b: str
) -> None:
    """One test for both steps: each target change costs Prometheus' 5 s discovery throttle."""
    url = prometheus_server.scrape([exporter_a])

    assert url == prometheus_server.url
    assert _events_by_instance(prometheus_server) == {exporter_a: "1234"}
    up = prometheus_server.query(f'up{{instance="{exporter_a}"}}')
    assert [(s["metric"]["job"], s["value"][1]) for s in up] == [("silkwatch", "1")]

    prometheus_server.scrape([exporter_b])

    active = prometheus_server.active_targets()
    assert [t["labels"]["instance"] for t in active] == [exporter_b]
    # exporter_a's series stays queryable until its staleness marker (about 2 intervals).
    assert _events_by_instance(prometheus_server)[exporter_b] == "77"
