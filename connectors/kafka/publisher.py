"""Publish flow batches to Kafka, partitioned by source address.

All flows of one source host land on one partition, so the per-host and
per-pair state of the stream scales out with partitions: each worker owns its
partitions' hosts outright. A batch is split by partition in one vectorised
pass and each part goes out as one or more frames (``silkwatch.connectors.kafka.frame``)
of at most ``max_frame_bytes``. A flow whose destination hashes to another
partition also goes there, as a *received copy* (a flagged frame, before that
partition's own frames of the batch), so a host's partition sees both
directions of its traffic: what a host received is part of judging what it
sent (the Kafka Streams way would be a repartition topic; copies in the same
topic keep each partition one ordered log, so replays stay deterministic).

The producer is idempotent with ``acks=all``; ``buffer_bytes`` bounds the
memory held for unacknowledged frames (``send`` blocks when it is full).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType

import numpy as np
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from kafka.producer.future import FutureRecordMetadata

from silkwatch.connectors.kafka.frame import encode_frame
from silkwatch.connectors.kafka.health import BrokerOutage, answers
from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.grouping import stable_order
from silkwatch.detectors.schema import FLOW_DTYPE, FlowBatch, ip_words

logger = logging.getLogger(__name__)

#: Kafka's default message.max.bytes is about 1 MiB; stay clear of it
DEFAULT_MAX_FRAME_BYTES = 900_000
#: seconds between two looks at an acknowledgement that is late, and until it is an outage
POLL_S, STALL_S = 1.0, 5.0


class KafkaUnavailableError(SilkwatchError):
    """The broker could not be reached or refused what we sent."""

    reason = "kafka_unavailable"

    def __init__(self, bootstrap: str, detail: str) -> None:
        super().__init__(f"kafka {bootstrap}: {detail}")
        self.bootstrap = bootstrap


def bootstrap_servers(url: str) -> str:
    """``kafka://host:port[;host:port]`` (Faust's form) → ``host:port,host:port``.

    Examples
    --------
    >>> bootstrap_servers("kafka://127.0.0.1:9092;10.0.0.2:9092")
    '127.0.0.1:9092,10.0.0.2:9092'
    """
    return url.removeprefix("kafka://").replace(";", ",")


def partition_of(batch: FlowBatch, partitions: int, *, address: str = "sip") -> np.ndarray:
    """The partition of each flow: a stable hash of its source (or ``address``) address.

    Stable across processes and machines (no Python ``hash``), so a restarted
    publisher sends a host to the partition it used before.

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> partition_of(make_batch(sip=["10.0.0.1", "10.0.0.3", "10.0.0.1"]), 8).tolist()
    [6, 0, 6]
    >>> partition_of(make_batch(dip=["10.0.0.1", "10.0.0.3"]), 8, address="dip").tolist()
    [6, 0]
    """
    high, low = ip_words(batch[address])
    mixed = (high * np.uint64(0x9E3779B97F4A7C15)) ^ low
    # splitmix64's finaliser: every input bit reaches the low bits the modulo keeps
    mixed ^= mixed >> np.uint64(30)
    mixed *= np.uint64(0xBF58476D1CE4E5B9)
    mixed ^= mixed >> np.uint64(27)
    mixed *= np.uint64(0x94D049BB133111EB)
    mixed ^= mixed >> np.uint64(31)
    return (mixed % np.uint64(partitions)).astype(np.int64)


@dataclass
class PublishCounts:
    """What a publisher has handed to Kafka so far (and what a resume skipped)."""

    flows: int = 0
    bytes: int = 0
    frames: int = 0
    skipped_flows: int = 0  # already in Kafka from an earlier run of the same source
    copied_flows: int = 0  # also sent to their destination's partition (received copies)


def frame_rows(
    batch: FlowBatch, partitions: int, *, copies: bool = True
) -> list[tuple[int, np.ndarray, bool]]:
    """The rows of each frame of a batch, in sending order: ``(partition, rows, copy)``.

    Per partition, the received copies (destination hashes there, source
    elsewhere), then its own flows (source hashes there): the own frame, which
    may close an hour, comes after the copies of its batch, so the hour is
    scored with both, as the embedded runner scores it with the whole batch.
    A partitioned run replays exactly these parts.

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> b = make_batch(sip=["10.0.0.1", "10.0.0.3", "10.0.0.1"],
    ...                dip=["10.0.0.3", "10.0.0.1", "10.0.0.1"])
    >>> [(p, rows.tolist(), copy) for p, rows, copy in frame_rows(b, 8)]
    [(0, [0], True), (0, [1], False), (6, [1], True), (6, [0, 2], False)]
    """
    source = partition_of(batch, partitions)
    destination = partition_of(batch, partitions, address="dip")
    foreign = np.flatnonzero(destination != source) if copies else np.zeros(0, np.int64)
    own_order = stable_order(source, partitions)
    own_bounds = np.searchsorted(source[own_order], np.arange(partitions + 1))
    copy_order = foreign[stable_order(destination[foreign], partitions)]
    copy_bounds = np.searchsorted(destination[copy_order], np.arange(partitions + 1))
    parts = []
    for p in range(partitions):
        for order, bounds, copy in (
            (copy_order, copy_bounds, True),
            (own_order, own_bounds, False),
        ):
            rows = order[bounds[p] : bounds[p + 1]]
            if len(rows):
                parts.append((p, rows, copy))
    return parts


#: message headers that stamp a frame with its place in its source
SOURCE_HEADER, POSITION_HEADER = "silkwatch-source", "silkwatch-position"


class FlowPublisher:
    """Sends flow batches to a Kafka topic (a context manager that flushes on exit).

    :param broker: ``kafka://host:port`` or ``host:port``
    :param topic: the flows topic; created with ``partitions`` if missing
    :param partitions: partition count for a new topic (an existing topic keeps its own)
    :param max_frame_bytes: upper bound of one Kafka message. Default - 900,000
    :param buffer_bytes: memory for frames not yet acknowledged. Default - 64 MiB
    :param source: an id of what is published (a file's path, size and time), stamped
        on every frame with the frame's position in it, so that :meth:`resume` can
        skip what an earlier, interrupted run of the same source already landed.
        Default - None (no stamps, no resume)
    :param broker_timeout_s: how long to wait for a broker that stopped acknowledging
        before giving up (:class:`KafkaUnavailableError`); the producer retries on its own
        meanwhile and, idempotent, lands a retried frame once. Default - 600
    :param received_copies: also send each flow to its destination's partition
        (:func:`frame_rows`), which the detection role needs and the bins role skips:
        a bins-only deployment halves its topic without them. Default - True

    A broker outage is told in a few lines
    (:class:`~silkwatch.connectors.kafka.health.BrokerOutage`):
    one when no acknowledgement came for ``STALL_S``, a reminder every 15 s, one when
    it is back.

    Examples
    --------
    ::

        with FlowPublisher("kafka://127.0.0.1:9092", "silkwatch-flows") as publisher:
            for batch in read_batches("day.rw"):
                publisher.send(batch)
        print(publisher.counts)
    """

    def __init__(
        self,
        broker: str,
        topic: str,
        *,
        partitions: int = 8,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        buffer_bytes: int = 64 * 1024 * 1024,
        source: str | None = None,
        broker_timeout_s: float = 600.0,
        received_copies: bool = True,
    ) -> None:
        self.bootstrap = bootstrap_servers(broker)
        self.received_copies = received_copies
        self.broker_timeout_s = broker_timeout_s
        self.outage = BrokerOutage(self.bootstrap)
        self._gave_up = False  # a wait failed: closing drops what is queued
        self.topic = topic
        self.source = source
        self.counts = PublishCounts()
        self._batches = 0  # batches sent so far: a frame's position is (batch, frame)
        self._landed: dict[int, tuple[int, int]] = {}  # partition → newest position in Kafka
        self._max_rows = max(1, (max_frame_bytes - 16) // FLOW_DTYPE.itemsize)
        self._buffer_bytes = buffer_bytes
        self._in_flight: deque[tuple[FutureRecordMetadata, int]] = deque()
        self._in_flight_bytes = 0
        try:
            self.partitions = ensure_topic(self.bootstrap, topic, partitions)
            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                batch_size=1024 * 1024,
                max_request_size=max(max_frame_bytes + 1024, 1024 * 1024),
                bootstrap_timeout_ms=15_000,
                # the producer retries until we give up (broker_timeout_s), not before
                delivery_timeout_ms=int((broker_timeout_s + 60) * 1000),
                reconnect_backoff_max_ms=5_000,  # a broker that is back is found within 5 s
            )
        except KafkaTimeoutError as exc:
            raise KafkaUnavailableError(self.bootstrap, "no broker answered") from exc
        except KafkaError as exc:
            raise KafkaUnavailableError(self.bootstrap, str(exc)) from exc

    def send(self, batch: FlowBatch) -> None:
        """Queue one batch: split by partition, framed, sent asynchronously.

        Frames an earlier run of the same source already landed (:meth:`resume`)
        are skipped and counted in ``counts.skipped_flows``.
        """
        index, self._batches = self._batches, self._batches + 1
        if not batch.size:
            return
        numbers: dict[int, int] = {}  # a partition's frames of this batch, copies included
        for p, rows, received_copy in frame_rows(
            batch, self.partitions, copies=self.received_copies
        ):
            for start in range(0, len(rows), self._max_rows):
                part = rows[start : start + self._max_rows]
                number = numbers[p] = numbers.get(p, -1) + 1
                if (index, number) <= self._landed.get(p, (-1, -1)):
                    self.counts.skipped_flows += 0 if received_copy else len(part)
                    continue
                frame = encode_frame(batch, part, received_copy=received_copy)
                headers = None
                if self.source is not None:
                    headers = [
                        (SOURCE_HEADER, self.source.encode()),
                        (POSITION_HEADER, f"{index}.{number}".encode()),
                    ]
                future = self._producer.send(self.topic, value=frame, partition=p, headers=headers)
                self._track(future, len(frame))
                self.counts.frames += 1
                if received_copy:
                    self.counts.copied_flows += len(part)
                else:
                    self.counts.flows += len(part)
                    self.counts.bytes += int(batch["bytes"][part].sum())

    def resume(self, *, scan: int = 4_096) -> int:
        """Find how far an earlier run of this source got, per partition; returns frames found.

        Reads each partition backwards from its end (1 message, then 8, 64, ...
        up to ``scan``) for the newest frame stamped with this source. Frames of
        one partition land in order (an idempotent producer), so every position
        up to that one is in Kafka and :meth:`send` skips it. A partition where
        other publishers wrote more than ``scan`` messages since is sent again in
        full.
        """
        if self.source is None:
            return 0
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, consumer_timeout_ms=3_000)
        try:
            for p in range(self.partitions):
                tp = TopicPartition(self.topic, p)
                consumer.assign([tp])
                end = consumer.end_offsets([tp])[tp]
                upper, step = end, 1
                while upper > 0 and end - upper < scan and p not in self._landed:
                    lower = max(0, end - step, end - scan)
                    self._scan(consumer, tp, lower, upper)
                    upper, step = lower, step * 8
        except KafkaError as exc:
            raise KafkaUnavailableError(self.bootstrap, f"reading back: {exc}") from exc
        finally:
            consumer.close()
        return len(self._landed)

    def _scan(self, consumer: KafkaConsumer, tp: TopicPartition, lower: int, upper: int) -> None:
        """Note the newest position of this source among the messages ``[lower, upper)``."""
        consumer.seek(tp, lower)
        for record in consumer:
            if record.offset >= upper:
                break
            headers = dict(record.headers or [])
            if headers.get(SOURCE_HEADER) != self.source.encode():
                continue
            batch, _, number = headers.get(POSITION_HEADER, b"").decode().partition(".")
            if batch.isdigit() and number.isdigit():
                newest = max(self._landed.get(tp.partition, (-1, -1)), (int(batch), int(number)))
                self._landed[tp.partition] = newest
            if record.offset >= upper - 1:
                break

    def _track(self, future: FutureRecordMetadata, size: int) -> None:
        """Remember an unacknowledged frame; wait for the oldest ones past the budget."""
        self._in_flight.append((future, size))
        self._in_flight_bytes += size
        while self._in_flight_bytes > self._buffer_bytes:
            self._settle_oldest()

    def flush(self) -> None:
        """Wait until every queued frame is acknowledged by the broker (see :meth:`_wait`)."""
        while self._in_flight:
            self._settle_oldest()

    def _settle_oldest(self) -> None:
        """Wait for the oldest unacknowledged frame, then forget it."""
        self._wait(self._in_flight[0][0])
        _, size = self._in_flight.popleft()
        self._in_flight_bytes -= size

    def _wait(self, future: FutureRecordMetadata) -> None:
        """Wait for one frame's acknowledgement, through an outage of up to ``broker_timeout_s``.

        :raises KafkaUnavailableError: the producer gave up on the frame, or no
            acknowledgement came for ``broker_timeout_s``
        """
        started_s = time.monotonic()
        try:
            while not self._acknowledged(future):
                self._stalled(time.monotonic() - started_s)
        except KafkaUnavailableError:
            self._gave_up = True
            raise
        self.outage.back()

    def _acknowledged(self, future: FutureRecordMetadata) -> bool:
        """True once the frame is acknowledged, False if it is still pending after ``POLL_S``."""
        try:
            future.get(timeout=POLL_S)
        except KafkaError as exc:
            if isinstance(exc, KafkaTimeoutError) and not future.is_done:
                return False  # our poll ran out, not the producer's patience
            raise KafkaUnavailableError(self.bootstrap, f"send failed: {exc}") from exc
        return True

    def _stalled(self, waited_s: float) -> None:
        """No acknowledgement for ``waited_s``: say so once, remind, give up past the timeout."""
        if waited_s >= self.broker_timeout_s:
            raise KafkaUnavailableError(
                self.bootstrap,
                f"no acknowledgement for {waited_s:.0f} s (--broker-timeout "
                f"{self.broker_timeout_s:.0f} s), {len(self._in_flight):,} frames unacknowledged; "
                "a rerun of the same input resumes",
            )
        if waited_s >= STALL_S and self.outage.down_since is None:
            state = "answers but" if answers(self.bootstrap) else "does not answer and"
            self.outage.lost(
                f"it {state} sent no acknowledgement for {waited_s:.0f} s; "
                f"waiting up to {self.broker_timeout_s:.0f} s"
            )
        self.outage.remind(
            f"{self.counts.flows:,} flows sent, {len(self._in_flight):,} frames unacknowledged"
        )

    def close(self) -> None:
        """Flush, then release the connection; after a failed wait, release it at once."""
        try:
            if not self._gave_up:
                self.flush()
        finally:
            if self._gave_up:
                # close() waits for what is queued first, and would fail again (and once
                # more when the object is collected): the sender drops it now. kafka-python
                # 3.0 has no public way to abort.
                self._producer._sender.force_close()
                self._producer._sender.join(5.0)
            self._producer.close(timeout=0 if self._gave_up else None)

    def __enter__(self) -> FlowPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            self._gave_up = True  # interrupted (Ctrl-C): let go, do not wait for the broker
        self.close()


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> int:
    """Create the topic if it does not exist; return its partition count.

    :raises KafkaUnavailableError: no broker answered at ``bootstrap``
    """
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="silkwatch", bootstrap_timeout_ms=15_000
        )
    except KafkaError as exc:
        raise KafkaUnavailableError(bootstrap, f"no broker answered ({exc})") from exc
    try:
        try:
            admin.create_topics([NewTopic(topic, partitions, 1)])
            logger.info("created topic=%s partitions=%d", topic, partitions)
        except TopicAlreadyExistsError:
            pass
        (description,) = admin.describe_topics([topic])
        return len(description["partitions"])
    finally:
        admin.close()
