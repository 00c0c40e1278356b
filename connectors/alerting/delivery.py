"""The delivery loop: ``alerts`` topic → grouping → sink, committing only what was acknowledged.

Each sink reads the topic with its own consumer group (``silkwatch-alerts-<sink>``),
so a receiver that is down holds back only its own progress; the stream
that publishes alerts never waits for any receiver. A notification is retried
with exponential backoff until the receiver acknowledges it (alerts stay in
Kafka meanwhile: none is lost), and only then are its alerts marked done; other
groups go on meanwhile, and reading pauses once ``MAX_OUTSTANDING`` alerts wait.

Why commit metadata: grouping finishes alerts out of order (a quiet group
waits while a noisy one is sent), so the committed offset (the lowest alert not
yet done) can lag behind alerts already delivered. The commit's metadata lists
those done offsets above it; after a restart they are skipped, so nothing is
sent twice. Run one deliverer per sink configuration: two would both send.

Poison: every record is validated (``silkwatch.connectors.alerting.schema``) before it
reaches grouping or a sink. An invalid one is passed over by every sink, and
one more loop (:class:`DeadLetterRunner`, consumer group
``silkwatch-alerts-deadletter``) writes it, with its reason, to the dead-letter
topic (``<topic>-deadletter``) and counts it, once, in
``silkwatch_alerts_dead_lettered_total{reason}``. A sink whose loop fails
anyway is restarted alone, from its own committed position
(:func:`run_delivery`); the others never notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.structs import OffsetAndMetadata

from silkwatch.connectors.alerting.grouping import Grouper, GroupingConfig, Notification
from silkwatch.connectors.alerting.http import DeliveryError
from silkwatch.connectors.alerting.schema import InvalidAlert, validate_alert
from silkwatch.connectors.prometheus import Metrics, record_dead_letter, record_delivery
from silkwatch.detectors.exceptions import SilkwatchError

logger = logging.getLogger(__name__)

DEFAULT_TOPIC = "silkwatch-alerts"  # where `silkwatch worker` sends alerts (streams/settings.py)

#: longest wait for new alerts between checks for due notifications
POLL_S = 0.5

#: alerts read but not yet delivered above which reading pauses
MAX_OUTSTANDING = 10_000

#: waiting for the group coordinator of a new consumer group: 60 × 0.5 s
COORDINATOR_RETRIES = 60
COORDINATOR_RETRY_S = 0.5

#: connecting to the broker at start: 10 × 1 s
START_RETRIES = 10
START_RETRY_S = 1.0

#: Kafka's default ``offset.metadata.max.bytes`` is 4096; stay well below it
MAX_METADATA_CHARS = 3000

#: alerts waiting in grouping above which ``due`` runs in a thread, off the event loop
OFF_LOOP_PENDING = 5_000

#: most characters of an invalid record's text kept in its dead-letter record
MAX_DEAD_LETTER_CHARS = 64 * 1024


class DeliveryStartError(SilkwatchError):
    """The alerts topic or its consumer group cannot be reached."""

    reason = "alert_delivery_start"

    def __init__(self, bootstrap: str, topic: str, detail: str) -> None:
        super().__init__(f"alert delivery: kafka {bootstrap} topic {topic}: {detail}")


class AlertSink(Protocol):
    """What the delivery loop needs from a sink."""

    name: str

    async def send(self, notification: Notification) -> None:
        """Deliver, or raise ``DeliveryError``."""
        ...


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff between attempts, in seconds.

    Examples
    --------
    >>> [Backoff(initial_s=0.5, factor=2, max_s=6).delay_s(n) for n in range(1, 6)]
    [0.5, 1.0, 2.0, 4.0, 6.0]
    """

    initial_s: float = 1.0
    factor: float = 2.0
    max_s: float = 60.0

    def delay_s(self, attempt: int) -> float:
        """Wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.initial_s * self.factor ** (attempt - 1), self.max_s))


class OffsetTracker:
    """Which offsets of each partition are done, and what may be committed.

    Offsets are registered as read, in order, and marked done in any order. The
    commit point is the first read offset not done; done offsets above it go
    into the commit metadata as ranges.

    Examples
    --------
    >>> t = OffsetTracker()
    >>> for offset in range(5):
    ...     t.read(0, offset)
    >>> t.done(0, 0); t.done(0, 2); t.done(0, 3)
    >>> t.commit_point(0)
    (1, '[[2,3]]')
    >>> OffsetTracker.from_metadata('[[2,3]]')
    {2, 3}
    """

    def __init__(self) -> None:
        self._read: dict[int, deque[int]] = {}
        self._done: dict[int, set[int]] = {}
        self._next: dict[int, int] = {}

    def read(self, partition: int, offset: int) -> None:
        self._read.setdefault(partition, deque()).append(offset)
        self._done.setdefault(partition, set())
        self._next[partition] = offset + 1

    def done(self, partition: int, offset: int) -> None:
        pending, done = self._read[partition], self._done[partition]
        done.add(offset)
        while pending and pending[0] in done:
            done.discard(pending.popleft())

    def partitions(self) -> list[int]:
        return sorted(self._read)

    def commit_point(self, partition: int) -> tuple[int, str]:
        """(offset to commit, metadata listing done offsets above it)."""
        pending = self._read[partition]
        offset = pending[0] if pending else self._next[partition]
        return offset, json.dumps(_ranges(sorted(self._done[partition])), separators=(",", ":"))

    def outstanding(self) -> int:
        """Offsets read but not yet done, over all partitions."""
        return sum(len(q) - len(self._done[p]) for p, q in self._read.items())

    @staticmethod
    def from_metadata(metadata: str) -> set[int]:
        """The done offsets a previous run recorded in its commit metadata."""
        if not metadata:
            return set()
        try:
            ranges = json.loads(metadata)
            return {o for start, end in ranges for o in range(int(start), int(end) + 1)}
        except (ValueError, TypeError):
            logger.warning("alert delivery: commit metadata not understood, ignored: %r", metadata)
            return set()


def _ranges(offsets: Sequence[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for offset in offsets:
        if out and out[-1][1] == offset - 1:
            out[-1][1] = offset
        else:
            out.append([offset, offset])
    return out


async def attempt(
    sink: AlertSink, notification: Notification, number: int, metrics: Metrics | None = None
) -> float | None:
    """Try to deliver once: None if the receiver acknowledged, else the least wait
    before the next try it asked for (``Retry-After`` of a 429/503), 0.0 if none.

    Warnings are throttled: attempts 1, 2, 4, 8, … of a notification are logged.
    """
    try:
        await sink.send(notification)
    except Exception as exc:  # a sink's bug must not stop the loop: retried like a refusal
        failure = exc if isinstance(exc, DeliveryError) else DeliveryError(sink.name, "sink_error")
        if metrics is not None:
            record_delivery(metrics, sink.name, failure_reason=failure.reason)
        if number & (number - 1) == 0:
            logger.warning(
                "alert delivery failed sink=%s reason=%s attempt=%d alerts=%d",
                sink.name,
                failure.reason,
                number,
                len(notification.tokens),
            )
        return failure.retry_after_s
    if metrics is not None:
        record_delivery(metrics, sink.name)
    if number > 1:
        logger.info("alert delivery recovered sink=%s attempts=%d", sink.name, number)
    return None


class TopicReader:
    """What every loop over the alerts topic shares: its own consumer group, every
    partition assigned, resumed at the group's committed offsets (skipping the
    done-above offsets recorded in the commit metadata), committing what is done.
    """

    def __init__(self, bootstrap: str, topic: str, group_id: str, name: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group_id = group_id
        self.name = name
        self._reset()

    def _reset(self) -> None:
        """Forget everything read: a (re)started loop begins at the committed position."""
        self.tracker = OffsetTracker()
        self._skip: dict[int, set[int]] = {}
        self._committed: dict[int, tuple[int, str]] = {}

    async def _start(self) -> AIOKafkaConsumer:
        """A consumer positioned at the committed offsets; a broker that does not answer
        at once (busy, or starting) is asked again for ``START_RETRIES × START_RETRY_S``."""
        self._reset()
        for attempt in range(1, START_RETRIES + 1):
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=self.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            try:
                await consumer.start()
                await self._resume(consumer)
                return consumer
            except KafkaError as exc:
                await consumer.stop()
                if not exc.retriable or attempt == START_RETRIES:
                    raise DeliveryStartError(self.bootstrap, self.topic, repr(exc)) from exc
            except BaseException:
                await consumer.stop()
                raise
            await asyncio.sleep(START_RETRY_S)
        raise AssertionError("unreachable")

    async def _resume(self, consumer: AIOKafkaConsumer) -> None:
        """Assign every partition, seek each to its committed offset, load the done-above set."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            tps, committed = await self._committed_offsets(admin)
        finally:
            await admin.close()
        consumer.assign(tps)
        for tp in tps:
            meta = committed.get(tp)
            if meta is not None and meta.offset >= 0:
                consumer.seek(tp, meta.offset)
                self._skip[tp.partition] = OffsetTracker.from_metadata(meta.metadata)
                self._committed[tp.partition] = (meta.offset, meta.metadata)
            else:
                await consumer.seek_to_beginning(tp)
        logger.info(
            "alert delivery started sink=%s group=%s partitions=%d",
            self.name,
            self.group_id,
            len(tps),
        )

    async def _committed_offsets(
        self, admin: AIOKafkaAdminClient
    ) -> tuple[list[TopicPartition], dict[TopicPartition, OffsetAndMetadata]]:
        """The topic's partitions and the group's committed offsets with metadata.

        Waits out a topic not created yet and a group coordinator still being
        elected (a new group on a fresh broker), for at most
        ``COORDINATOR_RETRIES × COORDINATOR_RETRY_S``.
        """
        for _ in range(COORDINATOR_RETRIES):
            try:
                (topic,) = await admin.describe_topics([self.topic])
                tps = [TopicPartition(self.topic, p["partition"]) for p in topic["partitions"]]
                if tps:
                    offsets = await admin.list_consumer_group_offsets(self.group_id, partitions=tps)
                    return sorted(tps), offsets
            except KafkaError as exc:
                if not exc.retriable:
                    raise DeliveryStartError(self.bootstrap, self.topic, repr(exc)) from exc
            await asyncio.sleep(COORDINATOR_RETRY_S)
        raise DeliveryStartError(
            self.bootstrap, self.topic, "no partitions or no group coordinator"
        )

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        offsets = {}
        for partition in self.tracker.partitions():
            offset, metadata = self.tracker.commit_point(partition)
            if len(metadata) > MAX_METADATA_CHARS:
                # Too many out-of-order done offsets to record: hold the commit
                # back (at-least-once for those) rather than lose any.
                continue
            if self._committed.get(partition) != (offset, metadata):
                offsets[TopicPartition(self.topic, partition)] = OffsetAndMetadata(offset, metadata)
                self._committed[partition] = (offset, metadata)
        if offsets:
            await consumer.commit(offsets)


class SinkRunner(TopicReader):
    """One sink's loop over the ``alerts`` topic.

    :param bootstrap: Kafka bootstrap servers (``host:port``).
    :param sink: where notifications go.
    :param grouping: when they go. Default - ``GroupingConfig()``
    :param topic: the alerts topic. Default - ``alerts``
    :param backoff: retry delays. Default - ``Backoff()``
    :param clock: seconds, for grouping only (not event time: rate limits are
        about when people get messages). Default - ``time.monotonic``
    """

    def __init__(
        self,
        bootstrap: str,
        sink: AlertSink,
        *,
        grouping: GroupingConfig | None = None,
        topic: str = DEFAULT_TOPIC,
        backoff: Backoff | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.grouping = grouping or GroupingConfig()
        self.grouper = Grouper(self.grouping)
        super().__init__(bootstrap, topic, f"silkwatch-alerts-{sink.name}", sink.name)
        self.backoff = backoff or Backoff()
        self.metrics = metrics
        self.clock = clock

    def _take(self, partition: int, offset: int, value: bytes | None, now_s: float) -> None:
        self.tracker.read(partition, offset)
        if offset in self._skip.get(partition, ()):
            self.tracker.done(partition, offset)  # delivered before a restart
            return
        try:
            alert: dict[str, Any] = validate_alert(value)
        except InvalidAlert as exc:
            # Passed over: the dead-letter loop keeps and counts it, once for all sinks.
            logger.debug(
                "alert delivery: invalid alert skipped sink=%s partition=%d offset=%d reason=%s",
                self.name,
                partition,
                offset,
                exc.reason,
            )
            self.tracker.done(partition, offset)
            return
        for token in self.grouper.add(alert, now_s=now_s, token=(partition, offset)):
            self.tracker.done(*token)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume, group, deliver and commit until ``stop`` is set."""
        self.grouper = Grouper(self.grouping)
        consumer = await self._start()
        try:
            #: (retry at, attempt number, notification): failed ones wait here, so a
            #: refused group never holds back the others
            retries: list[tuple[float, int, Notification]] = []
            while not stop.is_set():
                wake_s = min([t for t, _, _ in retries] + [self.grouper.next_due_s() or math.inf])
                wait_s = max(0.0, min(POLL_S, wake_s - self.clock()))
                if self.tracker.outstanding() < MAX_OUTSTANDING:
                    batches = await consumer.getmany(timeout_ms=int(wait_s * 1000), max_records=500)
                    now_s = self.clock()
                    for tp, records in batches.items():
                        for record in records:
                            self._take(tp.partition, record.offset, record.value, now_s)
                else:  # the receiver is far behind: stop reading until it catches up
                    await asyncio.sleep(wait_s)
                now_s = self.clock()
                if (
                    self.grouper.pending > OFF_LOOP_PENDING
                ):  # a big group: O(n), but not on the loop
                    due = await asyncio.to_thread(self.grouper.due, now_s=now_s)
                else:
                    due = self.grouper.due(now_s=now_s)
                tries = [(1, n) for n in due]
                tries += [(number, n) for t, number, n in retries if t <= now_s]
                retries = [r for r in retries if r[0] > now_s]
                for number, notification in tries:
                    wait_s = await attempt(self.sink, notification, number, self.metrics)
                    if wait_s is None:
                        for partition, offset in notification.tokens:
                            self.tracker.done(partition, offset)
                    else:
                        retry_s = self.clock() + max(wait_s, self.backoff.delay_s(number))
                        retries.append((retry_s, number + 1, notification))
                await self._commit(consumer)
        finally:
            await consumer.stop()


def dead_letter_record(
    topic: str, partition: int, offset: int, value: bytes | None, error: InvalidAlert
) -> bytes:
    """The dead-letter record: where the alert came from, why it was refused, its text.

    Examples
    --------
    >>> json.loads(dead_letter_record("alerts", 0, 7, b"[1]", InvalidAlert("not_object", "array")))
    {'reason': 'not_object', 'detail': 'array', 'topic': 'alerts', 'partition': 0, 'offset': 7,
     'value': '[1]'}
    """
    text = (value or b"").decode("utf-8", errors="replace")[:MAX_DEAD_LETTER_CHARS]
    record = {
        "reason": error.reason,
        "detail": error.detail,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "value": text,
    }
    return json.dumps(record, separators=(",", ":")).encode()


class DeadLetterRunner(TopicReader):
    """Writes every invalid record of the alerts topic to the dead-letter topic, once.

    :param dead_letter_topic: where refused records go. Default - ``<topic>-deadletter``
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        topic: str = DEFAULT_TOPIC,
        dead_letter_topic: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__(bootstrap, topic, "silkwatch-alerts-deadletter", "deadletter")
        self.dead_letter_topic = dead_letter_topic or f"{topic}-deadletter"
        self.metrics = metrics
        self.count = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Validate, dead-letter the invalid, commit, until ``stop`` is set."""
        await self._ensure_topic()
        consumer = await self._start()
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        try:
            await producer.start()
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=int(POLL_S * 1000), max_records=500)
                for tp, records in batches.items():
                    for record in records:
                        await self._check(producer, tp.partition, record.offset, record.value)
                await self._commit(consumer)
        finally:
            await producer.stop()
            await consumer.stop()

    async def _ensure_topic(self) -> None:
        """Create the dead-letter topic (one partition, one replica: create it beforehand for more)
        unless it exists, so its first record does not wait for auto-creation."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            await admin.start()
            await admin.create_topics([NewTopic(self.dead_letter_topic, 1, 1)])
        except TopicAlreadyExistsError:
            pass
        except KafkaError as exc:
            raise DeliveryStartError(self.bootstrap, self.dead_letter_topic, repr(exc)) from exc
        finally:
            await admin.close()

    async def _check(
        self, producer: AIOKafkaProducer, partition: int, offset: int, value: bytes | None
    ) -> None:
        self.tracker.read(partition, offset)
        if offset not in self._skip.get(partition, ()):
            try:
                validate_alert(value)
            except InvalidAlert as exc:
                body = dead_letter_record(self.topic, partition, offset, value, exc)
                key = f"{self.topic}:{partition}:{offset}".encode()
                await producer.send_and_wait(self.dead_letter_topic, body, key=key)
                self.count += 1
                if self.metrics is not None:
                    record_dead_letter(self.metrics, exc.reason)
                if self.count & (self.count - 1) == 0:  # 1, 2, 4, 8…: a flood stays readable
                    logger.warning(
                        "alert dead-lettered topic=%s partition=%d offset=%d reason=%s "
                        "dead_letter_topic=%s total=%d",
                        self.topic,
                        partition,
                        offset,
                        exc.reason,
                        self.dead_letter_topic,
                        self.count,
                    )
        self.tracker.done(partition, offset)


async def _supervise(
    runner: SinkRunner | DeadLetterRunner,
    stop: asyncio.Event,
    metrics: Metrics | None,
    backoff: Backoff,
) -> None:
    """Run one loop; if it fails after starting, restart it alone from its committed
    position (with backoff), so one sink's fault never stops the others."""
    failures = 0
    while not stop.is_set():
        try:
            await runner.run(stop)
            return
        except DeliveryStartError:
            raise  # Kafka itself is unreachable: one line, and the command exits
        except Exception as exc:
            failures += 1
            reason = getattr(exc, "reason", None) or type(exc).__name__
            logger.error(
                "alert delivery loop failed sink=%s reason=%s restarts=%d: "
                "restarting from its committed position",
                runner.name,
                reason,
                failures,
            )
            if metrics is not None:
                record_delivery(metrics, runner.name, failure_reason="loop_restarted")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff.delay_s(failures))


async def run_delivery(
    runners: Sequence[SinkRunner | DeadLetterRunner],
    stop: asyncio.Event,
    *,
    metrics: Metrics | None = None,
    backoff: Backoff | None = None,
) -> None:
    """Run every loop side by side, each supervised on its own (:func:`_supervise`)."""
    tasks = [
        asyncio.create_task(_supervise(r, stop, metrics, backoff or Backoff())) for r in runners
    ]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
