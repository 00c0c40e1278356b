"""An interrupted publish, run again, lands every flow exactly once (stamped frames)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from kafka import KafkaConsumer

from silkwatch.connectors.kafka.frame import decode_frame, is_received_copy
from silkwatch.connectors.kafka.publisher import FlowPublisher, partition_of
from silkwatch.connectors.silk import read_batches
from tests.streams.test_worker_kafka import FCCX, unique_names

pytestmark = pytest.mark.kafka


def landed(bootstrap: str, topic: str) -> np.ndarray:
    """Every flow in the topic, as one batch (received copies left out: each flow once)."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3_000
    )
    try:
        frames = [record.value for record in consumer if not is_received_copy(record.value)]
        return np.concatenate([decode_frame(frame) for frame in frames])
    finally:
        consumer.close()


#: the columns compared: what identifies a flow and what is counted
COLUMNS = ("stime_ms", "elapsed_ms", "sip", "dip", "sport", "dport", "proto", "bytes", "packets")


def canonical(flows: np.ndarray) -> list[tuple]:
    """The flows as sorted tuples of :data:`COLUMNS`: one order whatever the partitioning."""
    return sorted(zip(*(flows[c].tolist() for c in COLUMNS), strict=True))


def test_a_rerun_skips_what_landed_and_sends_the_rest(kafka_broker, shared_dir):
    _, topic = unique_names()
    batches = list(read_batches(shared_dir / FCCX, rows=20_000))
    source = "fccx-hour"
    with FlowPublisher(kafka_broker.url, topic, source=source, max_frame_bytes=200_000) as first:
        for batch in batches[:5]:  # then the run dies
            first.send(batch)
    again = FlowPublisher(kafka_broker.url, topic, source=source, max_frame_bytes=200_000)
    assert again.resume() == 8  # every partition got frames of the first run
    for batch in batches:
        again.send(batch)
    again.close()
    assert again.counts.skipped_flows == sum(len(b) for b in batches[:5]) == 100_000
    assert again.counts.flows == 245_340 - 100_000
    flows = landed(kafka_broker.bootstrap, topic)
    assert canonical(flows) == canonical(np.concatenate(batches))  # each flow once


def test_publishing_the_same_file_twice_lands_it_once(kafka_broker, shared_dir):
    _, topic = unique_names()

    def publish(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "silkwatch", "publish", str(shared_dir / FCCX),
             "--broker", kafka_broker.url, "--topic", topic, *extra],
            capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip

    assert publish().stdout.startswith("published 245,340 flows, 422,463,836 bytes in ")
    second = publish()
    assert second.stdout.startswith("published 0 flows, 0 bytes in 0 frames")
    assert second.stdout.rstrip().endswith(", 245,340 skipped as already in Kafka")
    assert "resuming " in second.stderr
    assert len(landed(kafka_broker.bootstrap, topic)) == 245_340
    forced = publish("--no-resume")  # asked for: sent whole again
    assert forced.stdout.startswith("published 245,340 flows")
    assert len(landed(kafka_broker.bootstrap, topic)) == 2 * 245_340


def test_received_copies_are_counted_and_can_be_left_out(kafka_broker, shared_dir):
    """By default each flow also goes to its destination's partition, flagged; on demand not."""

    def publish(topic: str, *extra: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "silkwatch", "publish", str(shared_dir / FCCX),
             "--broker", kafka_broker.url, "--topic", topic, *extra],
            capture_output=True, text=True, timeout=300, check=True,
        ).stdout  # fmt: skip

    def copies_and_flows(topic: str) -> tuple[int, int]:
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=kafka_broker.bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=3_000,
        )
        counts = [0, 0]
        for record in consumer:
            counts[0 if is_received_copy(record.value) else 1] += len(decode_frame(record.value))
        consumer.close()
        return counts[0], counts[1]

    _, topic = unique_names()
    said = publish(topic)  # a new topic: 8 partitions
    batches = list(read_batches(shared_dir / FCCX))
    foreign = sum(
        int((partition_of(b, 8, address="dip") != partition_of(b, 8)).sum()) for b in batches
    )
    assert copies_and_flows(topic) == (foreign, 245_340)
    assert f" (and {foreign:,} received copies) " in said
    _, without = unique_names()
    assert "received copies" not in publish(without, "--no-received-copies")
    assert copies_and_flows(without) == (0, 245_340)
