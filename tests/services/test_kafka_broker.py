"""The real broker behaves like Kafka: exact round trips, and transactions for exactly-once.

Faust's ``processing_guarantee="exactly_once"`` rests on aiokafka's transactional
producer, which speaks the oldest transaction API versions; these tests prove the
broker version in ``docker/kafka/pom.xml`` still accepts them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition as AioTopicPartition
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.services.kafka import KafkaBroker


@asynccontextmanager
async def _transactional_producer(
    broker: KafkaBroker, transactional_id: str
) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap, transactional_id=transactional_id
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def _read_all(bootstrap: str, topic: str, isolation_level: str) -> list[bytes]:
    """Every value in partition 0 of ``topic`` up to its end, as ``isolation_level`` sees it."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level=isolation_level,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partition = AioTopicPartition(topic, 0)
        consumer.assign([partition])
        end = (await consumer.end_offsets([partition]))[partition]
        values: list[bytes] = []
        while await consumer.position(partition) < end:
            batches = await consumer.getmany(partition, timeout_ms=1_000)
            values += [record.value for record in batches.get(partition, [])]
        return values
    finally:
        await consumer.stop()


def test_create_topic_makes_the_partitions_asked_for(kafka_broker: KafkaBroker) -> None:
    assert kafka_broker.url == f"kafka://{kafka_broker.bootstrap}"
    topic = kafka_broker.create_topic("broker-partitions", partitions=3)

    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap)
    try:
        assert consumer.partitions_for_topic(topic) == {0, 1, 2}
    finally:
        consumer.close()


def test_kafka_python_round_trip_is_exact(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.create_topic("broker-round-trip")
    sent = [(f"k{i}".encode(), bytes([i % 256]) * (i + 1)) for i in range(200)]

    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    try:
        for key, value in sent:
            producer.send(topic, key=key, value=value)
        producer.flush()
    finally:
        producer.close()

    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, auto_offset_reset="earliest")
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        records = []
        while len(records) < len(sent):
            records += consumer.poll(timeout_ms=1_000).get(partition, [])
    finally:
        consumer.close()

    assert [(r.key, r.value) for r in records] == sent
    assert [r.offset for r in records] == list(range(200))
    assert sum(len(r.value) for r in records) == 20_100  # 1 + 2 + ... + 200 bytes


async def test_read_committed_sees_committed_transactions_only(
    kafka_broker: KafkaBroker,
) -> None:
    topic = kafka_broker.create_topic("broker-transactions")
    async with _transactional_producer(kafka_broker, "silkwatch-test-txn") as producer:
        async with producer.transaction():
            await producer.send(topic, b"committed-0", partition=0)
            await producer.send(topic, b"committed-1", partition=0)
        await producer.begin_transaction()
        await producer.send(topic, b"aborted-0", partition=0)
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"committed-2", partition=0)

    committed = await _read_all(kafka_broker.bootstrap, topic, "read_committed")
    everything = await _read_all(kafka_broker.bootstrap, topic, "read_uncommitted")

    assert committed == [b"committed-0", b"committed-1", b"committed-2"]
    # The aborted record did reach the log; only the abort marker hides it.
    assert everything == [b"committed-0", b"committed-1", b"aborted-0", b"committed-2"]


async def test_offsets_commit_inside_the_transaction(kafka_broker: KafkaBroker) -> None:
    """Faust's exactly-once commits the consumer offsets with the produced records."""
    topic = kafka_broker.create_topic("broker-txn-offsets")
    async with _transactional_producer(kafka_broker, "silkwatch-test-offsets") as producer:
        async with producer.transaction():
            await producer.send(topic, b"out", partition=0)
            await producer.send_offsets_to_transaction(
                {AioTopicPartition(topic, 0): 42}, "silkwatch-test-group"
            )
        await producer.begin_transaction()
        await producer.send_offsets_to_transaction(
            {AioTopicPartition(topic, 0): 99}, "silkwatch-test-group"
        )
        await producer.abort_transaction()

    admin = kafka_broker.admin()
    try:
        offsets = admin.list_group_offsets({"silkwatch-test-group": None})
    finally:
        admin.close()
    assert {tp.partition: meta.offset for tp, meta in offsets["silkwatch-test-group"].items()} == {
        0: 42
    }
