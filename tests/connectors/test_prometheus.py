"""Metrics: exact values from whole-batch recording, bounded cardinality, valid exposition."""

from __future__ import annotations

import shutil
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from silkwatch.connectors.geoip import CountryDB
from silkwatch.connectors.prometheus import (
    RECENT_ALERTS,
    create_metrics,
    record_alerts,
    record_batch,
    record_batch_latency,
    record_consumer_lag,
    record_decode_error,
    record_delivery,
    record_hour,
    record_shed,
    record_top_hosts,
    render,
)
from silkwatch.detectors.schema import make_batch, parse_ips

HOUR_MS = 3_600_000


@pytest.fixture
def registry():
    return CollectorRegistry()


@pytest.fixture
def metrics(registry):
    return create_metrics(registry, top_hosts=3)


def value(registry, name, **labels):
    return registry.get_sample_value(name, labels)


def samples(registry, name):
    """{label tuple: value} of every sample called ``name``."""
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == name
    }


BATCH = make_batch(
    sensor=[3, 3, 3, 0],
    flowtype=[1, 1, 1, 2],
    proto=[6, 6, 17, 6],
    bytes=[100, 250, 74, 1_000],
    packets=[2, 3, 1, 10],
    dip=["8.8.8.8", "81.2.69.160", "10.0.0.1", "8.8.8.8"],
)


def test_record_batch_counts_by_sensor_flowtype_protocol(registry, metrics):
    record_batch(metrics, BATCH)
    record_batch(metrics, BATCH[:1])  # counters add up across batches
    assert samples(registry, "silkwatch_flow_bytes_total") == {
        (("flowtype", "1"), ("protocol", "tcp"), ("sensor", "3")): 450.0,
        (("flowtype", "1"), ("protocol", "udp"), ("sensor", "3")): 74.0,
        (("flowtype", "2"), ("protocol", "tcp"), ("sensor", "0")): 1_000.0,
    }
    assert value(registry, "silkwatch_flows_total", sensor="3", flowtype="1", protocol="tcp") == 3
    assert (
        value(registry, "silkwatch_flow_packets_total", sensor="0", flowtype="2", protocol="tcp")
        == 10
    )
    # no Geo-IP database given: no country series
    assert samples(registry, "silkwatch_destination_country_bytes_total") == {}


def test_record_batch_bytes_by_destination_country(registry, metrics):
    with CountryDB() as countries:
        record_batch(metrics, BATCH, countries=countries)
    assert samples(registry, "silkwatch_destination_country_bytes_total") == {
        (("country", "US"),): 1_100.0,
        (("country", "GB"),): 250.0,
        (("country", "--"),): 74.0,
    }


def test_record_batch_empty_batch_records_nothing(registry, metrics):
    record_batch(metrics, BATCH[:0])
    assert samples(registry, "silkwatch_flows_total") == {}


def test_unnamed_protocol_keeps_its_number(registry, metrics):
    record_batch(metrics, make_batch(proto=[89], bytes=[60], packets=[1]))
    assert (
        value(registry, "silkwatch_flows_total", sensor="65535", flowtype="255", protocol="89") == 1
    )


def test_record_hour_current_and_last_closed(registry, metrics):
    bins = {0: 150, HOUR_MS: 7, 2 * HOUR_MS: 9}
    record_hour(metrics, bins, now_ms=HOUR_MS + 59_000)
    assert value(registry, "silkwatch_hour_bytes", hour="current") == 7
    assert value(registry, "silkwatch_hour_bytes", hour="last_closed") == 150
    assert value(registry, "silkwatch_hour_start_timestamp_seconds", hour="current") == 3600
    # an hour with no flows reads 0, not the stale value
    record_hour(metrics, bins, now_ms=5 * HOUR_MS)
    assert value(registry, "silkwatch_hour_bytes", hour="current") == 0
    assert value(registry, "silkwatch_hour_bytes", hour="last_closed") == 0


def test_record_top_hosts_keeps_only_the_top_n(registry, metrics):
    hosts, ipv6 = parse_ips(["10.0.0.1", "10.0.0.2", "2001:db8::1", "10.0.0.4", "10.0.0.5"])
    record_top_hosts(
        metrics, hosts, ipv6, np.array([10, 500, 300, 40, 20]), np.array([1, 5, 3, 4, 2])
    )
    assert samples(registry, "silkwatch_top_host_bytes") == {
        (("host", "10.0.0.2"),): 500.0,
        (("host", "2001:db8::1"),): 300.0,
        (("host", "10.0.0.4"),): 40.0,
    }
    # the ranking changes: the old label set is replaced, never grows past N
    record_top_hosts(metrics, hosts[:2], ipv6[:2], np.array([7, 6]), np.array([1, 1]))
    assert samples(registry, "silkwatch_top_host_packets") == {
        (("host", "10.0.0.1"),): 1.0,
        (("host", "10.0.0.2"),): 1.0,
    }


def alert(i, kind="exfil", severity="high"):
    return SimpleNamespace(
        kind=kind,
        severity=severity,
        score=float(i) / 10,
        sip="10.0.0.1",
        dip=f"198.51.100.{i}",
        dport=443,
        proto=6,
        last_seen_ms=1_000_000 + i * 1_000,
        reason=f"Alert {i}\nin two lines.",
    )


def test_record_alerts_counts_and_bounds_the_alert_table(registry, metrics):
    record_alerts(metrics, [alert(i) for i in range(RECENT_ALERTS + 5)])
    record_alerts(metrics, [alert(99, kind="beacon", severity="medium")])
    assert value(registry, "silkwatch_alerts_total", kind="exfil", severity="high") == 25
    assert value(registry, "silkwatch_alerts_total", kind="beacon", severity="medium") == 1
    table = samples(registry, "silkwatch_recent_alert_last_seen_timestamp_seconds")
    assert len(table) == RECENT_ALERTS
    # the newest 20 survive: alert 99 and alerts 6..24
    assert sorted(dict(k)["dip"] for k in table) == sorted(
        [f"198.51.100.{i}" for i in [99, *range(6, 25)]]
    )
    assert len(samples(registry, "silkwatch_recent_alert_score")) == RECENT_ALERTS
    labels = dict(
        dip="198.51.100.99",
        sip="10.0.0.1",
        dport="443",
        protocol="tcp",
        reason="Alert 99 in two lines.",  # the sentence, one line, for the alert table
    )
    assert value(
        registry, "silkwatch_recent_alert_score", kind="beacon", severity="medium", **labels
    ) == pytest.approx(9.9)


def test_alert_addresses_as_raw_bytes(registry, metrics):
    (sip, dip), _ = parse_ips(["10.0.0.9", "2001:db8::2"])
    record_alerts(
        metrics, [SimpleNamespace(**{**vars(alert(1)), "sip": sip, "dip": dip.tobytes()})]
    )
    (labels,) = samples(registry, "silkwatch_recent_alert_score")
    assert dict(labels)["sip"] == "10.0.0.9" and dict(labels)["dip"] == "2001:db8::2"


def test_pipeline_health(registry, metrics):
    record_decode_error(metrics, "truncated_record")
    record_decode_error(metrics, "truncated_record")
    for seconds in (0.002, 0.02, 3.0):
        record_batch_latency(metrics, seconds)
    record_consumer_lag(metrics, "flows", 2, 1_234)
    record_shed(metrics, True)
    record_delivery(metrics, "slack")
    record_delivery(metrics, "slack", failure_reason="http_503")
    assert value(registry, "silkwatch_decode_errors_total", reason="truncated_record") == 2
    assert value(registry, "silkwatch_batch_latency_seconds_count") == 3
    assert value(registry, "silkwatch_batch_latency_seconds_bucket", le="0.025") == 2
    assert (
        value(registry, "silkwatch_kafka_consumer_lag_messages", topic="flows", partition="2")
        == 1234
    )
    assert value(registry, "silkwatch_load_shed_active") == 1
    assert value(registry, "silkwatch_alert_deliveries_total", sink="slack") == 1
    assert (
        value(registry, "silkwatch_alert_delivery_failures_total", sink="slack", reason="http_503")
        == 1
    )


def test_top_hosts_must_be_positive(registry):
    with pytest.raises(ValueError, match="top_hosts must be at least 1, not 0"):
        create_metrics(registry, top_hosts=0)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus) missing")
def test_promtool_accepts_the_exposition(registry, metrics):
    with CountryDB() as countries:
        record_batch(metrics, BATCH, countries=countries)
    hosts, ipv6 = parse_ips(["10.0.0.1"])
    record_top_hosts(metrics, hosts, ipv6, np.array([5]), np.array([1]))
    record_hour(metrics, {0: 1}, now_ms=0)
    record_alerts(metrics, [alert(1)])
    record_decode_error(metrics, "bad_frame")
    record_batch_latency(metrics, 0.01)
    record_consumer_lag(metrics, "flows", 0, 0)
    record_shed(metrics, False)
    record_delivery(metrics, "webhook", failure_reason="timeout")
    text = render(registry)
    assert b"silkwatch_flow_bytes_total{" in text
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, check=False
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, b"")


def test_alert_with_fields_that_do_not_apply(registry, metrics):
    # a host-level alert (no peer, port or protocol), as silkwatch.detectors.alerts.Alert allows
    record_alerts(
        metrics, [SimpleNamespace(**{**vars(alert(1)), "dip": None, "dport": None, "proto": None})]
    )
    (labels,) = samples(registry, "silkwatch_recent_alert_score")
    assert dict(labels) == {
        "kind": "exfil",
        "severity": "high",
        "sip": "10.0.0.1",
        "dip": "",
        "dport": "",
        "protocol": "",
        "reason": "Alert 1 in two lines.",
    }
