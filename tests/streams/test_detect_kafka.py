"""The detect role through the real broker: the embedded runner's alerts, exactly once across kills.

A synthetic day with planted attacks is published whole before the worker
starts (a full backlog). The worker checkpoints every second; it is killed
with SIGKILL at random points and restarted. At the end, the alerts topic
must hold exactly what the embedded runner raises on the same messages (same
ids, same revisions, same final severities), no (id, revision) twice, and the
same findings (ids and final severities) as the embedded runner on the file's
own batches. How many intermediate revisions a finding goes through may
depend on how the flows are batched; its id and its final word do not.
"""

from __future__ import annotations

import json
import random
import time

import pytest
from kafka import KafkaConsumer

from connectors.kafka.frame import decode_frame
from connectors.kafka.publisher import FlowPublisher
from detectors.synthetic import synthetic_day
from streams.embedded import run
from tests.streams.test_worker_kafka import unique_names
from tests.streams.workers import start_worker, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

#: checkpoints every second, no wall-clock scoring (a replay is judged at hour closes, as the
#: embedded runner judges it), and the last hour closed 3 s after the last message
ENV = {
    "SILKWATCH_CHECKPOINT_INTERVAL_S": "1",
    "SILKWATCH_SCORE_INTERVAL_S": "0",
    "SILKWATCH_IDLE_CLOSE_S": "3",
}


def alerts_on(bootstrap: str, topic: str) -> list[dict]:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        consumer_timeout_ms=3_000, value_deserializer=json.loads,
    )  # fmt: skip
    try:
        return [record.value for record in consumer]
    finally:
        consumer.close()


def messages(bootstrap: str, topic: str) -> list:
    """The flow batches of a one-partition topic, in offset order, as the worker saw them."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3_000
    )
    try:
        return [decode_frame(record.value) for record in consumer]
    finally:
        consumer.close()


def finals(alerts) -> dict[str, tuple]:
    """id → (kind, sip, dip, dport, revision, severity) of each finding's last revision."""
    out: dict[str, tuple] = {}
    for a in alerts:
        a = a if isinstance(a, dict) else a.to_dict()
        key = (a["kind"], a["sip"], a["dip"], a["dport"], a["revision"], a["severity"])
        if a["id"] not in out or out[a["id"]][4] < a["revision"]:
            out[a["id"]] = key
    return out


def test_kill9_under_a_full_backlog_gives_the_embedded_alerts_exactly_once(kafka_broker, tmp_path):
    day = synthetic_day(11, hosts=150)
    on_file = finals(run(day.batches).alerts)
    assert len(on_file) == 5  # the planted beacons, exfiltration and DNS tunnel
    app_id, topic = unique_names()
    kafka_broker.create_topic(topic, 1)  # one partition: the embedded runner's view of hosts
    with FlowPublisher(kafka_broker.url, topic, max_frame_bytes=100_000) as publisher:
        for batch in day.batches:
            publisher.send(batch)
    total_messages = publisher.counts.frames
    expected = finals(run(messages(kafka_broker.bootstrap, topic)).alerts)
    assert total_messages >= 8  # room for kills between the first and the last frame

    def start():
        return start_worker(kafka_broker.url, tmp_path, app_id=app_id, topic=topic,
                            roles="detect", env=ENV)  # fmt: skip

    rng = random.Random()
    kills = []
    worker = start()
    for _ in range(3):  # kill -9 once the worker got somewhere: never where it was killed last
        target = rng.randint(max(kills, default=-1) + 1, total_messages - 2)
        wait_for(
            lambda w=worker, t=target: w.detect().get("0", {}).get("offset", -1) >= t,
            timeout_s=120,
            what=f"offset {target} detected",
        )
        kills.append(worker.detect()["0"]["offset"])
        worker.kill()
        worker = start()
    try:
        wait_for(
            lambda: (
                worker.detect().get("0", {}).get("closed_until_ms", 0)
                > day.batches[-1]["stime_ms"].max()
            ),
            timeout_s=240,
            what=f"the whole day detected and closed (killed at offsets {kills})",
        )
        time.sleep(2)  # the last alerts' sends
    finally:
        worker.service.stop()
    got = alerts_on(kafka_broker.bootstrap, f"{topic}-alerts")
    pairs = [(a["id"], a["revision"]) for a in got]
    assert len(pairs) == len(set(pairs)), f"an alert was sent twice (kills at {kills})"
    assert finals(got) == expected, f"kills at offsets {kills}, {total_messages} messages"
    assert {i: f[5] for i, f in finals(got).items()} == {i: f[5] for i, f in on_file.items()}
