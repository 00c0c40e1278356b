"""The detect role through the real broker: the embedded runner's alerts, exactly once across kills.

A synthetic day with planted attacks is published whole before the worker
starts (a full backlog). The worker checkpoints every second; it is killed
with SIGKILL at random points and restarted. At the end, the alerts topic
must hold exactly what the embedded runner raises on the same messages (same
ids, same revisions, same final severities), no (id, revision) twice, and the
same findings (ids and final severities) as the embedded runner on the file's
own batches. How many intermediate revisions a finding goes through may
depend on how the flows are batched; its id and its final word do not. On
several partitions, each scored with the whole site's populations, the final
word includes the score and every piece of evidence.
"""

from __future__ import annotations

import itertools
import json
import random
import time

import pytest
from kafka import KafkaConsumer, TopicPartition

from silkwatch.connectors.kafka.frame import decode_frame, is_received_copy
from silkwatch.connectors.kafka.publisher import FlowPublisher
from silkwatch.detectors.synthetic import synthetic_day
from silkwatch.streams.embedded import run
from tests.streams.test_site_exchange import run_partitions
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
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3_000
    )
    try:
        return [json.loads(record.value) for record in consumer]
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
    for target in sorted(rng.sample(range(2, total_messages - 2), 3)):
        if kills and kills[-1] >= target:
            continue  # the restarted worker is already past this point
        wait_for(
            lambda w=worker, t=target: w.detect().get("0", {}).get("offset", -1) >= t,
            timeout_s=120,
            what=f"offset {target} detected",
        )
        kills.append(worker.detect()["0"]["offset"])  # kill -9 once the worker got there
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


def partition_frames(bootstrap: str, topic: str, partitions: int) -> list[tuple]:
    """Every partition's messages as ``(partition, batch, received copy)``, taking turns."""
    per_partition = []
    for partition in range(partitions):
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=3_000)
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        per_partition.append(
            [(partition, decode_frame(r.value), is_received_copy(r.value)) for r in consumer]
        )
        consumer.close()
    return [frame for turn in itertools.zip_longest(*per_partition) for frame in turn if frame]


def final_words(alerts) -> dict[str, tuple]:
    """id → its last revision's (kind, sip, dip, dport, severity, score, evidence), as JSON."""
    out: dict[str, tuple[int, tuple]] = {}
    for a in alerts:
        a = json.loads(json.dumps(a if isinstance(a, dict) else a.to_dict()))
        word = (a["kind"], a["sip"], a["dip"], a["dport"], a["severity"], a["score"], a["evidence"])
        if a["id"] not in out or out[a["id"]][0] < a["revision"]:
            out[a["id"]] = (a["revision"], word)
    return {i: word for i, (_, word) in out.items()}


def test_a_rebalance_and_a_kill_between_two_workers_lose_and_repeat_nothing(kafka_broker, tmp_path):
    day = synthetic_day(13, hosts=150)
    app_id, topic = unique_names()
    kafka_broker.create_topic(topic, 4)
    with FlowPublisher(kafka_broker.url, topic, max_frame_bytes=100_000) as publisher:
        for batch in day.batches:
            publisher.send(batch)
    # four partitions, each holding a quarter of the hosts, score with the whole site
    # (streams/siteboard.py), and each hour on the flows started before its end plus the
    # lateness, however the messages cut the input: processors fed the topic's messages
    # raise the embedded runner's alerts on the file, scores and evidence included
    on_file = final_words(run(day.batches).alerts)
    assert len(on_file) == 5
    assert (
        final_words(run_partitions(partition_frames(kafka_broker.bootstrap, topic, 4), 4))
        == on_file
    )

    # a rebalance pauses consumption for seconds: longer than that before idle hours close,
    # or a partition's last hour closes early on one worker and not on the other's replay
    env = ENV | {"SILKWATCH_IDLE_CLOSE_S": "20"}

    def start():
        return start_worker(kafka_broker.url, tmp_path, app_id=app_id, topic=topic,
                            roles="detect", env=env)  # fmt: skip

    def progress(*workers) -> int:
        return sum(p["offset"] + 1 for w in workers for p in w.detect().values())

    first = start()
    wait_for(lambda: progress(first) > 20, timeout_s=120, what="the first worker under way")
    second = start()  # a rebalance: partitions move to the second worker mid-stream
    wait_for(lambda: len(second.detect()) > 0, timeout_s=120, what="the second worker assigned")
    first.kill()  # and the first dies: the second takes everything over from checkpoints
    try:
        wait_for(
            lambda: len(second.detect()) == 4
            and all((p["closed_until_ms"] or 0) > p["watermark_ms"]
                    for p in second.detect().values()),
            timeout_s=240,
            what="every partition detected and closed by the survivor",
        )  # fmt: skip
        time.sleep(3)  # the last alerts' sends
    finally:
        second.service.stop()
    got = alerts_on(kafka_broker.bootstrap, f"{topic}-alerts")
    pairs = [(a["id"], a["revision"]) for a in got]
    assert len(pairs) == len(set(pairs)), "an alert was sent twice"
    assert final_words(got) == on_file
