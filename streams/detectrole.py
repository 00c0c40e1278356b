"""The detect role on Kafka: one in-memory processor per partition, checkpointed, replayable.

Detection state is not kept in Faust tables (a changelog message per touched
key cost 57 % of the worker's time and 963 MB of changelog per 66 MB of flows).
Each assigned flows partition has one :class:`silkwatch.streams.detection.DetectionProcessor`
in memory. Every ``checkpoint_interval_s`` of wall time, and whenever an hour
closes, its whole state goes to a compacted checkpoint topic
(:mod:`silkwatch.streams.checkpoint`: numpy arrays, never pickle) in chunks, keyed by
partition, with the source offset it reflects. Chunks alternate between two
key slots and the manifest naming them is written last, so a checkpoint cut
short by a crash never spoils the previous one, even after compaction.

Exactly once, checkpoint first: the worker's consumer commits a flows
partition only up to the offset of its newest *durable* checkpoint
(:attr:`DetectRole.durable`, read by :mod:`silkwatch.streams.transport`). After a crash
or a rebalance, the next owner loads that checkpoint and Faust resumes from
the committed offset, at or before it; messages the checkpoint already holds
are skipped by their offset. Alerts sent after the checkpoint would be sent
again by the replay: the checkpoint records where the alerts topic stood, the
new owner reads the alerts this partition sent since, and holds back those
(id, revision) when the replay raises them again.

A checkpoint that cannot be read is one log line, a counter, and a rebuild
from the start of the partition; never a crash and never a hang.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from silkwatch.detectors.alerts import Alert
from silkwatch.detectors.config import DetectorsConfig
from silkwatch.streams.checkpoint import CheckpointError, dump_state, load_state
from silkwatch.streams.detection import DetectionProcessor, SiteExchange
from silkwatch.streams.processing import StreamConfig

logger = logging.getLogger(__name__)

#: checkpoint chunk size: below Kafka's default 1 MB message limit
CHUNK_BYTES = 512 * 1024

#: a checkpoint that took t seconds is followed by none for CHECKPOINT_SPACING × t
CHECKPOINT_SPACING = 10.0

#: what a stored checkpoint is: (manifest, chunk values by index)
Stored = tuple[dict[str, Any], dict[int, bytes]]

#: a flows message held back while its partition waits for the site:
#: (offset, batch, received copy, wall clock in ms when it was read: None in a replay)
Parked = tuple[int, np.ndarray, bool, int | None]


@dataclass
class Partition:
    """One assigned flows partition: its processor and checkpoint bookkeeping."""

    processor: DetectionProcessor
    checkpointed_offset: int
    last_checkpoint_s: float
    #: wall seconds the last checkpoint took (dump, send, acknowledgement)
    checkpoint_cost_s: float = 0.0
    #: the chunk slot (0 or 1) the next checkpoint writes: never the one the manifest names
    slot: int = 0
    #: (id, revision) of alerts already on the alerts topic that a replay would repeat
    already_sent: set[tuple[str, int]] = field(default_factory=set)
    #: messages read while an hour close waits for the site, in offset order
    parked: list[Parked] = field(default_factory=list)
    #: held by whoever applies messages, closes or checkpoints (the agent, or a timer)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def parked_flows(self) -> int:
        """Flows held while the partition waits."""
        return sum(len(batch) for _, batch, _, _ in self.parked)

    def go_on(self) -> list[Alert]:
        """Finish a close that waited for the site, then apply the held messages in
        order until a close waits again; returns the alerts raised."""
        processor = self.processor
        alerts = [] if processor.waiting else processor.resume()
        while self.parked and not processor.waiting:
            offset, batch, copy, wall_ms = self.parked.pop(0)
            alerts += processor.process(batch, offset, wall_ms=wall_ms, received_copy=copy)
        return alerts


class DetectRole:
    """The detect role's partitions, checkpoints and commit ceiling.

    :param config: event-time settings
    :param detectors: detector thresholds
    :param send_chunk: ``await send_chunk(partition, key, value)`` writes one
        checkpoint record (the caller's producer; durable once ``flush`` returns)
    :param flush: ``await flush()`` waits until everything sent is acknowledged
    :param read_checkpoint: ``await read_checkpoint(partition)`` → the newest
        stored checkpoint of a partition, or None
    :param read_alerts_since: ``await read_alerts_since(offset)`` → alerts (as
        dicts) on the alerts topic after ``offset``
    :param checkpoint_interval_s: wall time between checkpoints of a busy partition
    :param score_interval_s: wall time between scorings between hour closes
    :param exchange: where the partitions' population parts meet. Default - None
        (each partition is scored as if it were the site)
    """

    def __init__(
        self,
        config: StreamConfig,
        detectors: DetectorsConfig,
        *,
        send_chunk: Callable[[int, bytes, bytes], Awaitable[None]],
        flush: Callable[[], Awaitable[None]],
        read_checkpoint: Callable[[int], Awaitable[Stored | None]],
        read_alerts_since: Callable[[int], Awaitable[list[dict[str, Any]]]],
        checkpoint_interval_s: float = 5.0,
        score_interval_s: float | None = 2.0,
        exchange: SiteExchange | None = None,
    ) -> None:
        self.config = config
        self.detectors = detectors
        self.send_chunk = send_chunk
        self.flush = flush
        self.read_checkpoint = read_checkpoint
        self.read_alerts_since = read_alerts_since
        self.checkpoint_interval_s = checkpoint_interval_s
        self.score_interval_s = score_interval_s
        self.exchange = exchange
        self.partitions: dict[int, Partition] = {}
        #: flows partition → offset the consumer may commit up to (next to read)
        self.durable: dict[int, int] = {}
        self.alerts_offset = -1  # newest alerts-topic offset this worker produced
        self.bad_checkpoints = 0
        self.checkpoints_written = 0
        self._locks: dict[int, asyncio.Lock] = {}

    async def processor(self, partition: int) -> Partition:
        """The partition's processor, restored from its newest checkpoint on first use."""
        held = self.partitions.get(partition)
        if held is not None:
            return held
        lock = self._locks.setdefault(partition, asyncio.Lock())
        async with lock:
            if partition not in self.partitions:
                self.partitions[partition] = await self._restore(partition)
        return self.partitions[partition]

    def assign(self, partitions: set[int]) -> None:
        """After a rebalance: forget the partitions another worker now owns.

        A partition kept through the rebalance keeps its state in memory: while
        the group rebalances nobody processes it, and the replay from the
        committed offset that follows is skipped message by message. A partition
        that went elsewhere and comes back later is restored from its checkpoint.
        """
        for partition in set(self.partitions) - partitions:
            del self.partitions[partition]
            self.durable.pop(partition, None)
        for held in self.partitions.values():
            held.parked.clear()  # read again from the committed offset

    def held_back(self, held: Partition, alerts: list[Alert]) -> list[Alert]:
        """The alerts not already on the alerts topic before a restart."""
        if not held.already_sent:
            return alerts
        fresh = [a for a in alerts if (a.id, a.revision) not in held.already_sent]
        if len(fresh) < len(alerts):
            logger.info(
                "held back %d alerts already sent before a restart", len(alerts) - len(fresh)
            )
        return fresh

    def checkpoint_due(self, held: Partition, *, hour_closed: bool) -> bool:
        """True when the partition has news and the interval passed, or an hour closed.

        An hour close checkpoints too, but at most once a second. Each checkpoint
        is the whole state, and the agent waits for it: checkpoints may take at
        most 1 / ``CHECKPOINT_SPACING`` of the wall time (a backlog replay closes
        hours many times a second; each skipped checkpoint only means a longer
        replay after a crash).

        >>> from types import SimpleNamespace
        >>> role = DetectRole.__new__(DetectRole)
        >>> role.checkpoint_interval_s = 5.0
        >>> state = SimpleNamespace(state=SimpleNamespace(offset=9))
        >>> now = time.monotonic()
        >>> held = Partition(state, checkpointed_offset=3, last_checkpoint_s=now - 2.0)
        >>> [role.checkpoint_due(held, hour_closed=closed) for closed in (False, True)]
        [False, True]
        >>> held.checkpoint_cost_s = 0.3  # 2 s after a checkpoint that took 0.3 s: too soon
        >>> role.checkpoint_due(held, hour_closed=True)
        False
        """
        if held.processor.state.offset <= held.checkpointed_offset:
            return False
        waited_s = time.monotonic() - held.last_checkpoint_s
        spacing_s = CHECKPOINT_SPACING * held.checkpoint_cost_s
        return waited_s >= max(self.checkpoint_interval_s, spacing_s) or (
            hour_closed and waited_s >= max(min(1.0, self.checkpoint_interval_s), spacing_s)
        )

    async def checkpoint(self, partition: int) -> int:
        """Write the partition's state; once durable, let the consumer commit up to it.

        Returns the bytes written.
        """
        held = self.partitions[partition]
        state = held.processor.state
        started_s = time.monotonic()
        data = dump_state(state, partition=partition)
        checkpoint_id = uuid.uuid4().hex
        chunks = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
        for index, chunk in enumerate(chunks):
            await self.send_chunk(
                partition,
                f"{partition}/{held.slot}/{index}".encode(),
                checkpoint_id.encode() + chunk,
            )
        manifest = {
            "id": checkpoint_id,
            "slot": held.slot,
            "chunks": len(chunks),
            "offset": state.offset,
            "alerts_offset": self.alerts_offset,
        }
        await self.send_chunk(partition, str(partition).encode(), json.dumps(manifest).encode())
        await self.flush()
        held.checkpointed_offset = state.offset
        held.last_checkpoint_s = time.monotonic()
        held.checkpoint_cost_s = held.last_checkpoint_s - started_s
        held.slot = 1 - held.slot
        self.durable[partition] = state.offset + 1
        self.checkpoints_written += 1
        logger.info(
            "checkpoint partition=%d offset=%d bytes=%d chunks=%d",
            partition,
            state.offset,
            len(data),
            len(chunks),
        )
        return len(data)

    async def _restore(self, partition: int) -> Partition:
        processor = DetectionProcessor(
            partition,
            self.config,
            self.detectors,
            score_interval_s=self.score_interval_s,
            exchange=self.exchange,
        )
        stored = await self.read_checkpoint(partition)
        slot, alerts_offset = 0, -1  # without a checkpoint, every alert sent so far counts
        if stored is None:
            logger.info("no checkpoint of partition %d: it starts empty", partition)
        else:
            manifest, chunks = stored
            slot = 0 if manifest.get("slot") == 1 else 1  # the next checkpoint: the other slot
            try:
                data = _assemble(partition, manifest, chunks)
                processor.state = load_state(data, self.detectors, partition=partition)
                alerts_offset = int(manifest["alerts_offset"])
            except (CheckpointError, KeyError, TypeError, ValueError) as exc:
                self.bad_checkpoints += 1
                logger.error("%s; rebuilding the partition by replay", exc)
            else:
                logger.info(
                    "restored partition %d from its checkpoint at offset %d (%d bytes)",
                    partition,
                    processor.state.offset,
                    len(data),
                )
        # what this partition sent after the state it starts from: a replay raises it again
        already_sent = {
            (str(alert.get("id")), int(alert.get("revision", 0)))
            for alert in await self.read_alerts_since(alerts_offset)
            if alert.get("partition") == partition
        }
        offset = processor.state.offset
        self.durable[partition] = offset + 1
        return Partition(processor, offset, time.monotonic(), slot=slot, already_sent=already_sent)


def _assemble(partition: int, manifest: dict[str, Any], chunks: dict[int, bytes]) -> bytes:
    """The checkpoint's bytes from its chunks; CheckpointError when any is missing or stale."""
    try:
        checkpoint_id = str(manifest["id"]).encode()
        count = int(manifest["chunks"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(partition, f"bad manifest {manifest!r}") from exc
    parts = []
    for index in range(count):
        chunk = chunks.get(index, b"")
        if not chunk.startswith(checkpoint_id):
            raise CheckpointError(partition, f"chunk {index} of {count} missing or stale")
        parts.append(chunk[len(checkpoint_id) :])
    return b"".join(parts)
