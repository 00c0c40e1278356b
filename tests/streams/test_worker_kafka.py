"""The stream on a real Apache Kafka broker (started by the ``kafka_broker`` fixture).

Real ``silkwatch worker`` processes consume what kafka-python and ``silkwatch
publish`` produce; the hourly bins they keep must equal SiLK's own rwcount. The
crash and rebalance tests run ``--roles bins`` workers: the guarantee under test
(offset-stamped table values) is the same code for every table, and the bins
agent alone keeps a loaded 2-core CI machine fast enough.
"""

from __future__ import annotations

import random
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from kafka import KafkaProducer

from connectors.kafka.frame import encode_frame
from detectors.schema import make_batch
from tests.streams.workers import hourly_totals, start_worker, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

FCCX = "data/silk/fccx/FT_RWIPV6ROUTING-v1-c1-L.dat"
GOLDEN_3600 = "data/silk/golden/fccx-rwcount-3600-timeprop.txt"
HOUR_15 = 1434553200000  # 2015-06-17 15:00 UTC


def golden_hours(path: Path) -> dict[int, tuple[float, float, float]]:
    """rwcount output → {bin start ms: (records, bytes, packets)}."""
    out = {}
    for line in path.read_text().splitlines()[1:]:
        date, records, octets, packets = (cell.strip() for cell in line.split("|")[:4])
        start = np.datetime64(date.replace("/", "-"), "ms").astype(np.int64)
        out[int(start)] = (float(records), float(octets), float(packets))
    return out


def rounded(hours: dict[int, tuple[float, float, float]]) -> dict[int, tuple[float, ...]]:
    """Two decimals, as rwcount prints them."""
    return {hour: tuple(round(v, 2) for v in values) for hour, values in hours.items()}


def wait_for_rwcount(expected, *workers, what: str, timeout_s: float = 240) -> None:
    """Wait until the workers' bins, summed, print like ``rwcount`` (two decimals)."""
    wait_for(
        lambda: rounded(hourly_totals(*workers)) == expected,
        timeout_s=timeout_s,
        what=f"{what} equal to rwcount {expected}",
    )


def sent_totals(worker) -> tuple[int, int]:
    """(flows, bytes) summed over every host's sent statistics."""
    rows = [r for r in worker.hosts() if r["direction"] == "sent"]
    return sum(r["flows"] for r in rows), sum(r["bytes"] for r in rows)


def unique_names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"silkwatch-test-{tag}", f"flows-{tag}"


def publish(broker_url: str, topic: str, source: Path) -> str:
    """Run ``silkwatch publish`` as a user would; return its last line."""
    result = subprocess.run(
        [sys.executable, "-m", "silkwatch", "publish", str(source), "--broker", broker_url,
         "--topic", topic],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return result.stdout.strip().splitlines()[-1]


def test_faust_worker_counts_every_record_from_kafka_python(kafka_broker, tmp_path):
    """Smoke test on the real Apache Kafka broker: 10,000 records in, 10,000 counted."""
    app_id, topic = unique_names()
    kafka_broker.create_topic(topic, 8)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    for i in range(10_000):
        flow = make_batch(
            sip=[f"10.0.{i // 256 % 256}.{i % 256}"],
            stime_ms=[HOUR_15 + i],
            bytes=[100 + i % 7],
            packets=[1],
        )
        producer.send(topic, value=encode_frame(flow), partition=i % 8)
    producer.flush()
    producer.close()
    expected_bytes = float(sum(100 + i % 7 for i in range(10_000)))

    worker = start_worker(kafka_broker.url, tmp_path, app_id=app_id, topic=topic, roles="bins")
    try:
        wait_for(
            lambda: hourly_totals(worker).get(HOUR_15, (0,))[0] == 10_000,
            timeout_s=120,
            what="10,000 records counted",
        )
        assert hourly_totals(worker) == {HOUR_15: (10_000.0, expected_bytes, 10_000.0)}
    finally:
        worker.service.stop()


def test_published_fccx_hour_equals_rwcount(kafka_broker, shared_dir, tmp_path):
    """245,340 flows published; the worker's hourly bins equal SiLK's rwcount --bin-size=3600."""
    app_id, topic = unique_names()
    summary = publish(kafka_broker.url, topic, shared_dir / FCCX)
    assert summary.startswith("published 245,340 flows, 422,463,836 bytes in ")
    expected = golden_hours(shared_dir / GOLDEN_3600)

    worker = start_worker(kafka_broker.url, tmp_path, app_id=app_id, topic=topic)
    try:
        wait_for_rwcount(expected, worker, what="the bins", timeout_s=180)
        wait_for(
            lambda: sent_totals(worker) == (245_340, 422_463_836),
            timeout_s=300,
            what="per-host statistics holding every flow",
        )
        top = max((r for r in worker.hosts() if r["direction"] == "sent"), key=lambda r: r["bytes"])
        assert (top["host"], top["bytes"]) == ("192.168.123.14", 31_694_474)  # rwstats' top sIP
    finally:
        worker.service.stop()


def test_worker_killed_mid_stream_ends_exact(kafka_broker, shared_dir, tmp_path):
    """kill -9 at a random point, restart: bins still exactly equal rwcount's."""
    app_id, topic = unique_names()
    expected = golden_hours(shared_dir / GOLDEN_3600)
    worker = start_worker(kafka_broker.url, tmp_path, app_id=app_id, topic=topic, roles="bins")
    publish(kafka_broker.url, topic, shared_dir / FCCX)
    kill_at = random.Random().uniform(20_000, 200_000)
    try:
        wait_for(
            lambda: hourly_totals(worker).get(HOUR_15, (0,))[0] >= kill_at,
            timeout_s=180,
            what=f"{kill_at:.0f} records counted before the kill",
        )
    finally:
        worker.kill()
    restarted = start_worker(kafka_broker.url, tmp_path, app_id=app_id, topic=topic, roles="bins")
    try:
        wait_for_rwcount(expected, restarted, what=f"restarted bins (killed at {kill_at:.0f})")
    finally:
        restarted.service.stop()


def test_two_workers_share_partitions_and_survive_a_kill(kafka_broker, shared_dir, tmp_path):
    """Two workers in one group give rwcount's totals; kill one, the other takes over exactly."""
    app_id, topic = unique_names()
    expected = golden_hours(shared_dir / GOLDEN_3600)
    first = start_worker(kafka_broker.url, tmp_path, app_id=app_id, topic=topic, roles="bins")
    second = start_worker(kafka_broker.url, tmp_path, app_id=app_id, topic=topic, roles="bins")
    try:
        publish(kafka_broker.url, topic, shared_dir / FCCX)
        wait_for_rwcount(expected, first, second, what="two workers' bins")
        second.kill()
        wait_for_rwcount(expected, first, what="the survivor's bins")
    finally:
        first.service.stop()
