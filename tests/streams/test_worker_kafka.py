"""The stream on a real Apache Kafka broker (started by the ``kafka_broker`` fixture).

Real ``silkwatch worker`` processes consume what kafka-python and ``silkwatch
publish`` produce; the hourly bins they keep must equal SiLK's own rwcount. The
crash and rebalance tests run ``--roles bins`` workers: the guarantee under test
(offset-stamped table values) is the same code for every table, and the bins
agent alone keeps a loaded 2-core CI machine fast enough.
"""

from __future__ import annotations

import contextlib
import random
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from kafka import KafkaConsumer, KafkaProducer

from silkwatch.connectors.kafka.frame import encode_frame
from silkwatch.detectors.schema import make_batch
from silkwatch.streams.binstopic import BinsMessageError, closed_hour_from_message
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
    seen: list[dict] = [{}]

    def matches() -> bool:
        seen[0] = rounded(hourly_totals(*workers))
        return seen[0] == expected

    try:
        wait_for(matches, timeout_s=timeout_s, what=f"{what} equal to rwcount {expected}")
    except AssertionError as timeout:
        raise AssertionError(f"{timeout}; last seen {seen[0]}") from None


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


def test_poison_on_the_flows_and_bins_topics_is_counted_and_skipped(kafka_broker, tmp_path):
    """A frame that is not one, bins messages of another shape, and a received copy.

    The worker logs one line for each bad message, counts it by reason, and goes on;
    the copy (a flow sent to its destination's partition) is not counted twice.
    """
    app_id, topic = unique_names()
    kafka_broker.create_topic(topic, 2)
    kafka_broker.create_topic(f"{topic}-bins", 1)
    flows = make_batch(sip=["10.0.0.1", "10.0.0.2"], dip=["10.0.0.2", "10.0.0.1"],
                       stime_ms=[HOUR_15, HOUR_15 + 1],
                       bytes=[300, 700], packets=[3, 7])  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    producer.send(topic, value=b"junk", partition=0)
    producer.send(topic, value=encode_frame(flows), partition=0)
    producer.send(topic, value=encode_frame(flows, received_copy=True), partition=1)
    for poison in (b'{"partition": "x"}', b"[1, 2]", b'{"partition": 0, "hour_start_ms": 0}', b"{"):
        producer.send(f"{topic}-bins", value=poison)
    producer.flush()
    producer.close()

    worker = start_worker(kafka_broker.url, tmp_path, app_id=app_id, topic=topic, roles="bins",
                          env={"SILKWATCH_IDLE_CLOSE_S": "3"})  # fmt: skip
    try:

        def errors() -> dict[str, float]:
            with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/metrics") as r:
                text = r.read().decode()
            found = re.findall(r'silkwatch_decode_errors_total\{reason="(\w+)"\} (\S+)', text)
            return {reason: float(n) for reason, n in found if float(n)}

        wait_for(
            lambda: errors() == {"bad_frame": 1.0, "bad_bins_message": 4.0},
            timeout_s=120,
            what="one bad frame and four bad bins messages counted",
        )
        wait_for(lambda: hourly_totals(worker) == {HOUR_15: (2.0, 1000.0, 10.0)}, timeout_s=60,
                 what="the two flows counted once")  # fmt: skip
        # the feed is idle: the worker closes partition 0's hour on its own (a timer's write)
        wait_for(lambda: len(closed_hours(kafka_broker.bootstrap, f"{topic}-bins")) == 1,
                 timeout_s=60, what="the idle partition's hour closed")  # fmt: skip
        [hour] = closed_hours(kafka_broker.bootstrap, f"{topic}-bins")
        assert (hour.partition, hour.hour_start_ms) == (0, HOUR_15)
        assert hour.volumes[("total", 0)] == (2.0, 1000.0, 10.0)
        assert worker.service.popen.poll() is None  # still running
    finally:
        worker.service.stop()
    log = worker.service.log_path.read_text(errors="replace")
    assert log.count("skipping bad bins message") == 4
    assert log.count("skipping bad frame") == 1
    assert "Traceback" not in log


def closed_hours(bootstrap: str, topic: str) -> list:
    """The closed hours on a bins topic (messages that are not one left out)."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=2_000
    )
    hours = []
    try:
        for record in consumer:
            with contextlib.suppress(BinsMessageError):
                hours.append(closed_hour_from_message(record.value))
    finally:
        consumer.close()
    return hours


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


def test_a_worker_joining_mid_publish_leaves_no_partition_behind(
    kafka_broker, shared_dir, tmp_path
):
    """A second worker joins while the first reads a publish: together they end at rwcount's.

    The rebalance drops what the first worker had fetched but not processed, on
    partitions with nothing committed yet; those are read again from their start
    (``streams.transport``), not left with lag and no reader.
    """
    app_id, topic = unique_names()
    expected = golden_hours(shared_dir / GOLDEN_3600)
    first = start_worker(kafka_broker.url, tmp_path, app_id=app_id, topic=topic, roles="bins")
    publishing = threading.Thread(target=publish, args=(kafka_broker.url, topic, shared_dir / FCCX))
    publishing.start()
    second = start_worker(kafka_broker.url, tmp_path, app_id=app_id, topic=topic, roles="bins")
    publishing.join()
    try:
        wait_for_rwcount(expected, first, second, what="the two workers' bins")
    finally:
        first.service.stop()
        second.service.stop()


def stop_within(worker, timeout_s: float = 30.0) -> None:
    """SIGTERM; the worker must be gone within ``timeout_s`` (no SIGKILL needed)."""
    if not worker.service.stop(timeout_s):
        pytest.fail(f"worker ignored SIGTERM for {timeout_s:.0f} s:\n{worker.service.log_tail()}")


def test_every_role_on_two_workers_one_stopped_the_other_takes_over(
    kafka_broker, shared_dir, tmp_path
):
    """Bins and detection on two workers; a clean stop of one hands its partitions over.

    Both roles read every flows message: the survivor's rebalance must not wait
    for messages its queues dropped, and both must stop on SIGTERM.
    """
    app_id, topic = unique_names()
    expected = golden_hours(shared_dir / GOLDEN_3600)
    first = start_worker(kafka_broker.url, tmp_path, app_id=app_id, topic=topic)
    second = start_worker(kafka_broker.url, tmp_path, app_id=app_id, topic=topic)
    try:
        # the hand-over under test is the stop below: the group settles its first
        # assignment before the day is published (a join while messages arrive can
        # lose bins, 2026-12-08 closing note of issue 11)
        wait_for(lambda: len(second.detect()) > 0, timeout_s=60, what="the second worker's share")
        time.sleep(2.0)
        publish(kafka_broker.url, topic, shared_dir / FCCX)
        wait_for_rwcount(expected, first, second, what="the two workers' bins")
        stop_within(second)
        wait_for_rwcount(expected, first, what="the survivor's bins")
        wait_for(lambda: len(first.detect()) == 8, timeout_s=120, what="all 8 detect partitions")
    finally:
        stop_within(first)
        second.service.stop()
