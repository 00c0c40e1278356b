"""``silkwatch publish --follow`` on a growing SiLK repository, into the real Kafka broker."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
from kafka import KafkaConsumer, TopicPartition

from silkwatch.connectors.kafka.frame import decode_frame, is_received_copy
from silkwatch.connectors.silk import SilkWriter, read_batches
from tests.streams.test_worker_kafka import FCCX
from tests.streams.workers import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def published(bootstrap: str, topic: str) -> tuple[int, int]:
    """(flows, bytes) in every frame of the topic so far."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    if not partitions:  # the publisher has not created the topic yet
        consumer.close()
        return 0, 0
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    flows = octets = 0
    while any(consumer.position(tp) < ends[tp] for tp in partitions):
        for records in consumer.poll(timeout_ms=1000).values():
            for record in records:
                if is_received_copy(record.value):
                    continue  # each flow counts once, in its source's partition
                batch = decode_frame(record.value)
                flows += len(batch)
                octets += int(batch["bytes"].sum())
    consumer.close()
    return flows, octets


def start_publisher(broker_url: str, root, topic: str, checkpoint) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "silkwatch", "publish", str(root), "--follow", "--poll", "0.2",
         "--broker", broker_url, "--topic", topic, "--checkpoint", str(checkpoint)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_follow_publishes_appended_flows_once_across_a_restart(kafka_broker, shared_dir, tmp_path):
    flows = np.concatenate(list(read_batches(shared_dir / FCCX)))
    first, rest = flows[:100_000], flows[100_000:]
    hour_file = tmp_path / "repo" / "out" / "2015" / "06" / "17" / "out-S3_20150617.15"
    hour_file.parent.mkdir(parents=True)
    with SilkWriter(hour_file) as writer:
        writer.write(first)
    topic = f"follow-{uuid.uuid4().hex[:8]}"
    checkpoint = tmp_path / "checkpoint.json"

    publisher = start_publisher(kafka_broker.url, tmp_path / "repo", topic, checkpoint)
    try:
        wait_for(lambda: published(kafka_broker.bootstrap, topic)[0] == 100_000,
                 timeout_s=120, what="the first 100,000 flows")  # fmt: skip
        with SilkWriter(hour_file, append=True) as writer:  # rwflowappend adds the rest
            writer.write(rest)
        wait_for(lambda: published(kafka_broker.bootstrap, topic)[0] == 245_340,
                 timeout_s=120, what="all 245,340 flows")  # fmt: skip
    finally:
        publisher.send_signal(signal.SIGTERM)
        publisher.wait(timeout=60)

    restarted = start_publisher(kafka_broker.url, tmp_path / "repo", topic, checkpoint)
    time.sleep(5)  # several polls: a restart must not publish anything again
    restarted.send_signal(signal.SIGTERM)
    restarted.wait(timeout=60)
    assert published(kafka_broker.bootstrap, topic) == (245_340, 422_463_836)
