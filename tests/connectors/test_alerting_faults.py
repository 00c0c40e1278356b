"""The delivery faults of issue 14, through the real Kafka alerts topic to real HTTP
receivers on 127.0.0.1: a poison alert among good ones, a receiver down for ten
minutes (on the loop's own clock, not ten real minutes), a receiver that answers
late, and a loop that fails."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client import CollectorRegistry

from silkwatch.connectors.alerting.delivery import (
    Backoff,
    DeadLetterRunner,
    SinkRunner,
    run_delivery,
)
from silkwatch.connectors.alerting.grouping import GroupingConfig
from silkwatch.connectors.alerting.secrets import Secret
from silkwatch.connectors.alerting.slack import SlackSink
from silkwatch.connectors.alerting.teams import TeamsSink
from silkwatch.connectors.alerting.webhook import AlertmanagerWebhookSink
from silkwatch.connectors.prometheus import create_metrics
from silkwatch.detectors.alerts import Alert
from tests.connectors.alert_samples import stamped
from tests.connectors.receiver import Receiver

pytestmark = pytest.mark.kafka

#: every alert read is due at once, and listed (none truncated)
NOW = GroupingConfig(group_wait_s=0, group_interval_s=0, max_alerts=1000)
QUICK = Backoff(initial_s=0.05, max_s=0.2)
_topics = itertools.count()


def good_alerts(n: int) -> list[dict]:
    return [
        stamped(
            Alert(
                ("exfil", "beacon")[i % 2],
                "high",
                0.9,
                "10.0.0.5",
                f"198.51.{i // 250}.{i % 250}",
                443,
                6,
                1434553200000 + i,
                1434556800000 + i,
                {"bytes": i},
                "Regular.",
            ),
            id=f"{i:016x}",
            revision=1 + i % 3,
        )
        for i in range(n)
    ]


def publish(broker, records: list[bytes], name: str) -> str:
    topic = broker.create_topic(f"alerts-{name}-{next(_topics)}", 1)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for record in records:
        producer.send(topic, record)
    producer.flush()
    producer.close()
    return topic


def read_all(broker, topic: str) -> list[dict]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    try:
        return [json.loads(m.value) for m in consumer]
    finally:
        consumer.close()


def keys(alerts: list[dict]) -> list[str]:
    return sorted(f"{a['id']}:{a['revision']}" for a in alerts)


async def run_while(runners, done, *, limit_s: float = 90.0, settle_s: float = 1.5) -> None:
    """Run the loops until ``done()`` holds, then ``settle_s`` longer (nothing more may
    arrive), then stop them the way the command does."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_delivery(runners, stop))
    for _ in range(int(limit_s / 0.1)):
        if done() or task.done():
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(settle_s)
    stop.set()
    await task


async def test_poison_among_100_good_alerts_reaches_no_sink_and_is_dead_lettered_once(
    kafka_broker,
):
    alerts = good_alerts(100)
    poison = {**alerts[0], "severity": "urgent"}  # an unknown severity
    records = [json.dumps(a).encode() for a in alerts]
    records.insert(50, json.dumps(poison).encode())
    topic = publish(kafka_broker, records, "poison")
    webhook, slack, teams = Receiver().start(), Receiver().start(), Receiver()  # teams: down
    metrics = create_metrics(CollectorRegistry())
    sinks = [
        AlertmanagerWebhookSink("webhook", Secret(webhook.url + "/hook", "test")),
        SlackSink("slack", Secret(slack.url + "/hook", "test")),
        TeamsSink("teams", Secret(teams.url + "/hook", "test")),
    ]
    runners = [
        SinkRunner(kafka_broker.bootstrap, s, grouping=NOW, topic=topic, backoff=QUICK)
        for s in sinks
    ]
    dead = DeadLetterRunner(kafka_broker.bootstrap, topic=topic, metrics=metrics)
    try:
        # teams is down the whole time: webhook and slack get everything regardless
        await run_while(
            [*runners, dead],
            lambda: len(webhook.keys()) >= 100 and len(slack.keys()) >= 100 and dead.count >= 1,
        )
        assert teams.requests == []
        teams.start()  # now up: teams gets everything too, from its own committed position
        await run_while(runners[2:], lambda: len(teams.keys()) >= 100)
        # a restart of every loop sends nothing again and dead-letters nothing again
        await run_while([*runners, dead], lambda: False)
    finally:
        for r in (webhook, slack, teams):
            r.stop()
    expected = keys(alerts)
    assert sorted(webhook.keys()) == expected  # each exactly once
    assert sorted(slack.keys()) == expected
    assert sorted(teams.keys()) == expected
    per_alert_webhook = sorted(a["idempotencyKey"] for b in webhook.bodies() for a in b["alerts"])
    assert per_alert_webhook == expected
    (dead_letter,) = read_all(kafka_broker, f"{topic}-deadletter")
    assert dead_letter == {
        "reason": "invalid_severity",
        "detail": "Invalid enum value 'urgent' - at `$.severity`",
        "topic": topic,
        "partition": 0,
        "offset": 50,
        "value": json.dumps(poison),
    }
    assert metrics.dead_letters.labels("invalid_severity")._value.get() == 1.0


async def test_receiver_down_ten_minutes_then_up_gets_each_key_once(kafka_broker):
    alerts = good_alerts(30)
    topic = publish(kafka_broker, [json.dumps(a).encode() for a in alerts], "down")
    receiver = Receiver()  # port reserved, nothing listening
    metrics = create_metrics(CollectorRegistry())
    now = [0.0]
    runner = SinkRunner(
        kafka_broker.bootstrap,
        AlertmanagerWebhookSink("down", Secret(receiver.url + "/hook", "test")),
        grouping=GroupingConfig(group_wait_s=30, group_interval_s=300, max_alerts=1000),
        topic=topic,
        backoff=Backoff(),  # the shipped one: 1 s doubling up to 60 s, on the loop's clock
        metrics=metrics,
        clock=lambda: now[0],
    )

    def failures() -> float:
        return metrics.delivery_failures.labels("down", "connection")._value.get()

    async def ten_minutes_down_then_up() -> None:
        while runner.tracker.outstanding() < 30:  # the clock starts once all are read
            await asyncio.sleep(0.05)
        while now[0] < 600.0:  # the loop's clock runs 200x faster than the wall's
            await asyncio.sleep(0.05)
            now[0] += 10.0
        receiver.start()
        while len(receiver.keys()) < 30 and now[0] < 1200.0:  # the next retry comes
            await asyncio.sleep(0.05)
            now[0] += 10.0

    clock_task = asyncio.create_task(ten_minutes_down_then_up())
    try:
        await run_while([runner], lambda: clock_task.done() and len(receiver.keys()) >= 30)
        await clock_task
    finally:
        receiver.stop()
    assert sorted(receiver.keys()) == keys(alerts)
    # two groups (exfil, beacon), each refused from t=30 s on, retried at 1, 2, 4 … 60 s
    # of the loop's clock, which the loop reads once per poll (≤ 0.5 s of the wall's, so
    # up to 100 s of its own): at least 3 refusals per group in the ten minutes
    assert failures() >= 6
    assert metrics.deliveries.labels("down")._value.get() == 2.0


async def test_a_late_answer_is_retried_with_the_same_idempotency_key(kafka_broker):
    alerts = good_alerts(3)
    topic = publish(kafka_broker, [json.dumps(a).encode() for a in alerts], "late")
    receiver = Receiver().start()
    answered = []

    def first_late(body) -> float:  # did the work, answered after the sender gave up
        answered.append(body["idempotency_key"])
        return 1.0 if len(answered) == 1 else 0.0

    receiver.delay_s = first_late
    sink = AlertmanagerWebhookSink("late", Secret(receiver.url + "/hook", "test"), timeout_s=0.3)
    one_group = GroupingConfig(group_by=(), group_wait_s=0, group_interval_s=0)
    runner = SinkRunner(
        kafka_broker.bootstrap, sink, grouping=one_group, topic=topic, backoff=QUICK
    )
    try:
        await run_while([runner], lambda: len(receiver.requests) >= 2)
    finally:
        receiver.stop()
    key = ",".join(keys(alerts))
    # two requests (the timed-out one and its retry), one key: the receiver drops the second
    assert [h["Idempotency-Key"] for _, h, _ in receiver.requests] == [key, key]
    assert [b["idempotency_key"] for b in receiver.bodies()] == [key, key]
    assert sorted(set(receiver.keys())) == keys(alerts)


class _Loop:
    """A loop that runs until stopped, failing once after starting if told to."""

    def __init__(self, name: str, *, fail_first: bool) -> None:
        self.name = name
        self.fail_first = fail_first
        self.runs = 0

    async def run(self, stop: asyncio.Event) -> None:
        self.runs += 1
        if self.fail_first and self.runs == 1:
            raise RuntimeError("https://hooks.example/T0/B0/SECRET in the message")
        await stop.wait()


async def test_a_failing_loop_is_restarted_alone(caplog):
    flaky, steady = _Loop("flaky", fail_first=True), _Loop("steady", fail_first=False)
    metrics = create_metrics(CollectorRegistry())
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_delivery([flaky, steady], stop, metrics=metrics, backoff=Backoff(initial_s=0.01))
    )
    for _ in range(100):
        if flaky.runs == 2:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await task
    assert (flaky.runs, steady.runs) == (2, 1)
    assert metrics.delivery_failures.labels("flaky", "loop_restarted")._value.get() == 1.0
    assert "SECRET" not in caplog.text
    assert (
        "alert delivery loop failed sink=flaky reason=RuntimeError restarts=1: "
        "restarting from its committed position" in caplog.text
    )
