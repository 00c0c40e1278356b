"""Reading back what the worker itself wrote: checkpoint chunks and recent alerts.

Both reads are bounded: from a known offset (or the start of a compacted
partition) up to the end offset asked for at the start, with a timeout, so a
restore never waits on records still being written. Nothing read is trusted:
keys and JSON are checked, and a record that does not fit is skipped and
counted by the caller's validation.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

logger = logging.getLogger(__name__)


async def read_records(
    bootstrap: str, topic: str, partition: int, *, start: int | None = None, timeout_s: float = 30
) -> list[tuple[bytes | None, bytes | None]]:
    """(key, value) of a partition's records from ``start`` (None: the beginning) to its end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    out: list[tuple[bytes | None, bytes | None]] = []
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        # an explicit offset: aiokafka's seek_to_beginning on an assigned partition without
        # a group leaves the position at the end (auto_offset_reset="latest")
        first = (await consumer.beginning_offsets([tp]))[tp]
        consumer.seek(tp, first if start is None else max(start, first))
        position = await consumer.position(tp)
        while position < end:
            batches = await consumer.getmany(tp, timeout_ms=int(timeout_s * 1000))
            records = batches.get(tp, [])
            if not records:
                logger.warning(
                    "reading %s[%d] stopped at %d of %d", topic, partition, position, end
                )
                break
            out += [(r.key, r.value) for r in records if r.offset < end]
            position = records[-1].offset + 1
    finally:
        await consumer.stop()
    return out


def newest_checkpoint(
    records: list[tuple[bytes | None, bytes | None]], partition: int
) -> tuple[dict[str, Any], dict[int, bytes]] | None:
    """The last manifest of ``partition`` and the newest chunks of the slot it names, or None.

    Checkpoints alternate between two slots of chunk keys (``P/0/i``, ``P/1/i``),
    and the manifest (key ``P``) is written last, so a checkpoint cut short by a
    crash overwrites only the other slot's chunks, never those the manifest names.

    Examples
    --------
    >>> recs = [(b"3/0/0", b"old"), (b"3", b'{"id": "a", "slot": 0, "chunks": 1}'),
    ...         (b"3/0/0", b"new"), (b"3/1/0", b"partial"), (b"4", b'{"id": "b"}'),
    ...         (b"3", b"not json")]
    >>> newest_checkpoint(recs, 3)
    ({'id': 'a', 'slot': 0, 'chunks': 1}, {0: b'new'})
    """
    manifest: dict[str, Any] | None = None
    chunks: dict[tuple[bytes, int], bytes] = {}
    prefix = f"{partition}/".encode()
    for key, value in records:
        if key is None or value is None:
            continue
        if key == str(partition).encode():
            try:
                parsed = json.loads(value)
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(parsed, dict):
                manifest = parsed
        elif key.startswith(prefix):
            slot, _, index = key[len(prefix) :].partition(b"/")
            if index.isdigit():
                chunks[(slot, int(index))] = value
    if manifest is None:
        return None
    slot = str(manifest.get("slot", "")).encode()
    return manifest, {index: value for (s, index), value in chunks.items() if s == slot}


def alert_dicts(records: list[tuple[bytes | None, bytes | None]]) -> list[dict[str, Any]]:
    """The records that are JSON objects (alerts); anything else is skipped.

    Examples
    --------
    >>> alert_dicts([(None, b'{"id": "x", "revision": 1}'), (None, b"[1]"), (None, b"\\xff")])
    [{'id': 'x', 'revision': 1}]
    """
    out = []
    for _, value in records:
        try:
            parsed = json.loads(value or b"")
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(parsed, dict):
            out.append(parsed)
    return out
