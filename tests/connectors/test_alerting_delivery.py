"""Delivery through the real Kafka ``alerts`` topic to a real HTTP receiver on 127.0.0.1:
a receiver that is down gets everything once it is up; a restart sends nothing twice."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging

import pytest
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from silkwatch.connectors.alerting.delivery import Backoff, SinkRunner
from silkwatch.connectors.alerting.grouping import GroupingConfig
from silkwatch.connectors.alerting.secrets import Secret
from silkwatch.connectors.alerting.webhook import AlertmanagerWebhookSink
from silkwatch.connectors.prometheus import create_metrics
from silkwatch.detectors.alerts import Alert
from tests.connectors.alert_samples import stamped
from tests.connectors.receiver import Receiver

pytestmark = pytest.mark.kafka

NOW = GroupingConfig(group_wait_s=0, group_interval_s=0)
QUICK = Backoff(initial_s=0.05, max_s=0.2)
SECRET_PATH = "/hook/T0/B0/TOPSECRET"
_topics = itertools.count()


def alert(kind: str, i: int) -> dict:
    return stamped(
        Alert(kind, "high", 0.9, "10.0.0.5", f"198.51.100.{i}", 443, 6, 1_000 * i, 2_000 * i)
    )


def publish(broker, alerts: list[dict], partitions: int = 1) -> str:
    topic = broker.create_topic(f"alerts-delivery-{next(_topics)}", partitions)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for i, a in enumerate(alerts):
        producer.send(topic, json.dumps(a).encode(), partition=i % partitions)
    producer.flush()
    producer.close()
    return topic


def delivered(receiver: Receiver) -> list[tuple[str, str]]:
    """(kind, dip) of every alert the receiver accepted, in arrival order."""
    return [
        (a["labels"]["alertname"], a["labels"]["dip"])
        for body in receiver.bodies()
        for a in body["alerts"]
    ]


async def run_until(runner: SinkRunner, done, *, limit_s: float = 60.0) -> None:
    """Run the sink loop until ``done()`` holds (checked every 0.1 s, at most ``limit_s``),
    then stop it the way the worker does."""
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    for _ in range(int(limit_s / 0.1)):
        if done() or task.done():
            break
        await asyncio.sleep(0.1)
    stop.set()
    await task


def runner(broker, topic, sink, metrics=None) -> SinkRunner:
    return SinkRunner(
        broker.bootstrap, sink, grouping=NOW, topic=topic, backoff=QUICK, metrics=metrics
    )


async def test_receiver_down_then_up_gets_every_alert_once(kafka_broker, caplog):
    caplog.set_level(logging.DEBUG)
    alerts = [alert(kind, i) for i, kind in enumerate(["exfil", "beacon", "dns_tunnel"] * 4)]
    topic = publish(kafka_broker, alerts, partitions=2)
    receiver = Receiver()  # port reserved, nothing listening: the receiver is down
    metrics = create_metrics(CollectorRegistry())
    sink = AlertmanagerWebhookSink("soc", Secret(receiver.url + SECRET_PATH, "$HOOK"))
    r = runner(kafka_broker, topic, sink, metrics)

    def failures() -> float:
        return sum(
            s.value
            for s in metrics.delivery_failures.collect()[0].samples
            if s.name.endswith("_total")
        )

    async def bring_up_after_failures():
        for _ in range(600):
            if failures() >= 3:
                receiver.start()
                return
            await asyncio.sleep(0.1)

    starter = asyncio.create_task(bring_up_after_failures())
    try:
        await run_until(r, lambda: len(delivered(receiver)) >= 12)
        await starter
        # keep running a moment longer: nothing more may arrive
        await run_until(runner(kafka_broker, topic, sink), lambda: False, limit_s=1.5)
    finally:
        receiver.stop()
    assert sorted(delivered(receiver)) == sorted(
        (a["kind"], a["dip"]) for a in alerts
    )  # all 12, each once
    assert len(delivered(receiver)) == 12
    assert failures() >= 3
    assert metrics.delivery_failures.labels("soc", "connection")._value.get() == failures()
    # the webhook URL is a secret: never in a log line
    assert "TOPSECRET" not in caplog.text
    assert "alert delivery failed sink=soc reason=connection attempt=1" in caplog.text


async def test_restart_sends_nothing_twice_even_when_groups_finish_out_of_order(kafka_broker):
    kinds = ["beacon", "exfil", "exfil", "beacon", "exfil"]
    alerts = [alert(kind, i) for i, kind in enumerate(kinds)]
    topic = publish(kafka_broker, alerts)
    receiver = Receiver().start()
    # the receiver refuses beacon notifications: exfil (offsets 1, 2, 4) is acknowledged,
    # beacon (0, 3) is not, so the committed offset stays at 0 with 1, 2, 4 noted as done
    receiver.refuse = lambda body: body["groupLabels"]["kind"] == "beacon"
    sink = AlertmanagerWebhookSink("restart", Secret(receiver.url + "/hook", "test"))
    try:
        first = runner(kafka_broker, topic, sink)
        await run_until(first, lambda: len(delivered(receiver)) >= 3)
        assert sorted(delivered(receiver)) == [
            ("exfil", "198.51.100.1"),
            ("exfil", "198.51.100.2"),
            ("exfil", "198.51.100.4"),
        ]
        # a worker restart: a new runner, same consumer group; the receiver accepts all now
        receiver.refuse = lambda body: False
        second = runner(kafka_broker, topic, sink)
        await run_until(second, lambda: len(delivered(receiver)) >= 5)
        await run_until(runner(kafka_broker, topic, sink), lambda: False, limit_s=1.5)
    finally:
        receiver.stop()
    assert sorted(delivered(receiver)) == sorted((a["kind"], a["dip"]) for a in alerts)
    assert len(delivered(receiver)) == 5


async def test_a_noisy_hour_is_one_notification_per_group_interval(kafka_broker):
    # 60 distinct exfil alerts; the loop's clock is ours, so the grouping timeline is exact
    alerts = [alert("exfil", i) for i in range(60)]
    topic = publish(kafka_broker, alerts[:40])
    receiver = Receiver().start()
    now = [0.0]
    sink = AlertmanagerWebhookSink("noisy", Secret(receiver.url + "/hook", "test"))
    r = SinkRunner(
        kafka_broker.bootstrap,
        sink,
        grouping=GroupingConfig(group_wait_s=30, group_interval_s=300),
        topic=topic,
        backoff=QUICK,
        clock=lambda: now[0],
    )
    stop = asyncio.Event()
    task = asyncio.create_task(r.run(stop))

    async def settle(condition) -> None:
        for _ in range(600):
            if condition() or task.done():
                return
            await asyncio.sleep(0.05)

    try:
        await settle(lambda: r.tracker.outstanding() == 40)  # all read at t=0, none sent
        assert receiver.requests == []
        now[0] = 30.0  # group_wait over: one notification with all 40
        await settle(lambda: len(receiver.requests) == 1)
        producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
        for a in alerts[40:]:
            producer.send(topic, json.dumps(a).encode())
        producer.flush()
        producer.close()
        now[0] = 329.0  # 20 more arrive within the group interval: held back
        await settle(lambda: r.tracker.outstanding() == 20)
        await asyncio.sleep(0.5)
        assert len(receiver.requests) == 1
        now[0] = 330.0  # one group_interval after the first: the second notification
        await settle(lambda: len(receiver.requests) == 2)
    finally:
        stop.set()
        await task
        receiver.stop()
    assert [len(body["alerts"]) for body in receiver.bodies()] == [40, 20]
    assert sorted(delivered(receiver)) == sorted((a["kind"], a["dip"]) for a in alerts)
