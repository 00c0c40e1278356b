"""The site topic: partitions' population parts between workers, as numpy arrays (never pickle).

Every worker reads the whole topic into its :class:`~silkwatch.streams.siteboard.SiteBoard`
and writes what its own partitions publish. A record is an ``.npz`` archive read
with ``allow_pickle=False``: a ``meta`` JSON (what it is, which partition, which
instant) and, for a part, the arrays of
:class:`~silkwatch.detectors.population.PopulationPart`, each checked for dtype,
shape and agreeing lengths. Anything else is a :class:`SiteRecordError`: one log
line and a counter, never a crash.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np

from silkwatch.detectors.population import PART_ARRAYS, PopulationPart
from silkwatch.streams.checkpoint import typed_array
from silkwatch.streams.siteboard import SiteBoard

#: the record layout; a reader refuses others
VERSION = 1


class SiteRecordError(ValueError):
    """A site-topic record that is not one this module wrote."""

    reason = "site_record"


def encode_part(partition: int, part: PopulationPart) -> bytes:
    """A partition's part as one record.

    >>> from silkwatch.detectors.population import empty_part
    >>> kind, partition, part = decode_record(encode_part(3, empty_part(7_200_000)))
    >>> kind, partition, part.now_ms, part.senders, part.sender_hosts.shape
    ('part', 3, 7200000, False, (0, 2))
    """
    meta = {"kind": "part", "partition": partition, "now_ms": part.now_ms,
            "senders": part.senders, "sources": part.sources}  # fmt: skip
    return _archive(meta, {name: getattr(part, name) for name in PART_ARRAYS})


def encode_reached(partition: int, until_ms: int) -> bytes:
    """A partition has closed up to ``until_ms``.

    >>> decode_record(encode_reached(1, 10_800_000))
    ('reached', 1, 10800000)
    """
    return _archive({"kind": "reached", "partition": partition, "until_ms": until_ms}, {})


def decode_record(data: bytes) -> tuple[str, int, Any]:
    """``("part", partition, PopulationPart)`` or ``("reached", partition, until_ms)``.

    >>> decode_record(b"\\x80\\x04K\\x01.")  # a pickle is refused, not run
    Traceback (most recent call last):
    ...
    silkwatch.streams.sitetopic.SiteRecordError: not a site record: ...
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(_array(arrays, "meta", np.uint8, 1).tobytes())
        if meta.get("version") != VERSION:
            raise ValueError(f"version {meta.get('version')!r}")
        partition = _integer(meta, "partition")
        if meta.get("kind") == "reached":
            return "reached", partition, _integer(meta, "until_ms")
        if meta.get("kind") != "part":
            raise ValueError(f"kind {meta.get('kind')!r}")
        columns = {name: _array(arrays, name, *layout) for name, layout in PART_ARRAYS.items()}
        part = PopulationPart(
            now_ms=_integer(meta, "now_ms"),
            senders=bool(meta["senders"]),
            sources=_integer(meta, "sources"),
            **columns,
        )
        _check_lengths(part)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise SiteRecordError(f"not a site record: {exc}") from exc
    return "part", partition, part


def feed(board: SiteBoard, data: bytes) -> None:
    """One record into the board (SiteRecordError when it is not one)."""
    kind, partition, value = decode_record(data)
    if not 0 <= partition < (board.partitions or 0):
        raise SiteRecordError(f"partition {partition} of {board.partitions}")
    if kind == "part":
        board.publish(partition, value)
    else:
        board.reached(partition, value)


class QueuedExchange:
    """A :class:`SiteBoard` whose own partitions' news is also queued for the site topic.

    The processor publishes synchronously; the worker sends :attr:`outbox` with its
    checkpoint producer, so a checkpoint is durable only with the parts before it.
    """

    def __init__(self, board: SiteBoard) -> None:
        self.board = board
        self.outbox: list[bytes] = []

    def publish(self, partition: int, part: PopulationPart) -> None:
        self.board.publish(partition, part)
        self.outbox.append(encode_part(partition, part))

    def reached(self, partition: int, until_ms: int) -> None:
        self.board.reached(partition, until_ms)
        self.outbox.append(encode_reached(partition, until_ms))

    def site(self, now_ms: int) -> PopulationPart | None:
        return self.board.site(now_ms)

    def latest(self) -> PopulationPart | None:
        return self.board.latest()


def _archive(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    out = io.BytesIO()
    encoded = json.dumps({"version": VERSION, **meta}).encode()
    np.savez(out, meta=np.frombuffer(encoded, dtype=np.uint8), **arrays)
    return out.getvalue()


def _array(arrays: dict[str, np.ndarray], name: str, dtype: type, ndim: int) -> np.ndarray:
    """:func:`typed_array`, and key words two per row."""
    array = typed_array(arrays, name, dtype, ndim)
    if ndim == 2 and array.shape[1] != 2:
        raise ValueError(f"{name}: {array.dtype} of shape {array.shape}")
    return array


def _integer(meta: dict[str, Any], name: str) -> int:
    value = meta[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} {value!r}")
    return value


def _check_lengths(part: PopulationPart) -> None:
    for names in (
        ("sender_hosts", "sender_bytes", "sender_packets"),
        ("destinations", "destination_sources"),
        ("resolvers", "resolver_clients"),
    ):
        if len({len(getattr(part, name)) for name in names}) != 1:
            raise ValueError(f"{', '.join(names)} of different lengths")
