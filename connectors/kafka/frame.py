"""The flow-batch frame: how a batch of flows travels as one Kafka message.

One Kafka message carries many flows (batches, not records, on the hot path).
The frame is versioned and self-describing enough for consumers in any
language; ``docs/frame.md`` is its specification.

Layout (all integers little-endian)::

    offset size  field
    0      4     magic  b"SWFB"
    4      1     version (1)
    5      1     layout  1 = full (IPv4 and IPv6), 2 = compact IPv4
    6      2     flags   bit 0: received copy (see below); other bits 0
    8      4     record count N
    12     4     record size R in bytes (104 for layout 1, 64 for layout 2)
    16     N*R   records, packed, in the layout's field order

The compact layout is chosen automatically when every flow in the batch is
IPv4; it stores addresses as 4-byte integers and saves a third of the bytes
on the wire.

A *received copy* (flag bit 0) carries flows to the partition of their
destination: the publisher keys flows by source, so a host's own partition
has everything it sent, and these copies bring it what it received (its
producer/consumer ratio, the peers that answered it, the other side of its
connections). Consumers that count flows (the bins) skip copies; each flow
is counted once, in its source's partition.
"""

from __future__ import annotations

import struct

import numpy as np

from silkwatch.connectors.fieldmoves import FieldMoves, field
from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.schema import FLOW_DTYPE, FlowBatch, make_batch, take_rows

MAGIC = b"SWFB"
VERSION = 1
LAYOUT_FULL = 1
LAYOUT_COMPACT_V4 = 2
#: flags bit 0: the frame's flows are copies for their destinations' partition
RECEIVED_COPY = 1

_HEADER = struct.Struct("<4sBBHII")

#: layout 2: FLOW_DTYPE with the three addresses as host-order uint32 and no ipv6 flag
COMPACT_V4_DTYPE = np.dtype(
    [
        (name, "<u4" if name in ("sip", "dip", "nhip") else FLOW_DTYPE.fields[name][0])
        for name in FLOW_DTYPE.names
        if name != "ipv6"
    ]
)
_ADDRESSES = ("sip", "dip", "nhip")
_LAYOUTS = {LAYOUT_FULL: FLOW_DTYPE, LAYOUT_COMPACT_V4: COMPACT_V4_DTYPE}


def _compact_moves(to_compact: bool) -> FieldMoves:
    """Moves between a full and a compact record: addresses are the v4-mapped tails."""
    moves = []
    for name in COMPACT_V4_DTYPE.names:
        compact_type, compact_at = COMPACT_V4_DTYPE.fields[name][:2]
        full_type, full_at = FLOW_DTYPE.fields[name][:2]
        if name in _ADDRESSES:
            full_type, full_at = np.dtype(">u4"), full_at + 12
        ends = [(full_at, full_type), (compact_at, compact_type)]
        (source_at, source_type), (target_at, target_type) = ends if to_compact else ends[::-1]
        moves.append(field(source_at, source_type, target_at, target_type))
    sizes = [FLOW_DTYPE.itemsize, COMPACT_V4_DTYPE.itemsize]
    return FieldMoves(*(sizes if to_compact else sizes[::-1]), moves)


_TO_COMPACT, _FROM_COMPACT = _compact_moves(True), _compact_moves(False)
#: a decoded compact record before its fields arrive: IPv4-mapped addresses, zero padding
_COMPACT_TEMPLATE = make_batch(sip=["0.0.0.0"], dip=["0.0.0.0"], nhip=["0.0.0.0"]).tobytes()


class FrameError(SilkwatchError):
    """A Kafka message that is not a valid flow-batch frame."""

    reason = "bad_frame"

    def __init__(self, detail: str) -> None:
        super().__init__(f"flow frame: {detail}")


def encode_frame(
    batch: FlowBatch, rows: np.ndarray | None = None, *, received_copy: bool = False
) -> bytes:
    """Pack a flow batch (or its ``rows``, by index) into one frame, compact when all IPv4.

    :param received_copy: mark the frame as flows copied to their destinations'
        partition (:data:`RECEIVED_COPY`). Default - False

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> frame = encode_frame(make_batch(sip=["10.0.0.1"], bytes=[99]))
    >>> len(frame), decode_frame(frame)["bytes"].tolist()
    (80, [99])
    """
    batch = np.ascontiguousarray(batch, dtype=FLOW_DTYPE)
    count = batch.size if rows is None else len(rows)
    ipv6 = batch["ipv6"] if rows is None else batch["ipv6"][rows]
    if count and not ipv6.any():
        packed = np.empty(count, dtype=COMPACT_V4_DTYPE)
        _TO_COMPACT.apply(batch, packed, rows=rows)
        layout = LAYOUT_COMPACT_V4
    else:
        packed = batch.copy() if rows is None else take_rows(batch, rows)
        used = FLOW_DTYPE.fields["ipv6"][1] + 1
        packed.view(np.uint8).reshape(-1, FLOW_DTYPE.itemsize)[:, used:] = 0  # padding
        layout = LAYOUT_FULL
    flags = RECEIVED_COPY if received_copy else 0
    header = _HEADER.pack(MAGIC, VERSION, layout, flags, packed.size, packed.dtype.itemsize)
    return header + packed.tobytes()


def decode_frame(frame: bytes | memoryview) -> FlowBatch:
    """Unpack one frame into a flow batch; ``FrameError`` names what is wrong."""
    if len(frame) < _HEADER.size:
        raise FrameError(f"{len(frame)} bytes is shorter than the {_HEADER.size}-byte header")
    magic, version, layout, flags, count, record_size = _HEADER.unpack_from(frame)
    if magic != MAGIC:
        raise FrameError(f"bad magic {magic!r} (expected {MAGIC!r})")
    if version != VERSION:
        raise FrameError(f"unsupported version {version}")
    if flags & ~RECEIVED_COPY:
        raise FrameError(f"unknown flags {flags:#06x}")
    dtype = _LAYOUTS.get(layout)
    if dtype is None:
        raise FrameError(f"unknown layout {layout}")
    if record_size != dtype.itemsize:
        raise FrameError(f"record size {record_size} does not match layout {layout}")
    expected = _HEADER.size + count * record_size
    if len(frame) != expected:
        raise FrameError(f"length {len(frame)} does not match {count} records ({expected} bytes)")
    records = np.frombuffer(frame, dtype=dtype, count=count, offset=_HEADER.size)
    if layout == LAYOUT_FULL:
        return records.copy()
    batch = np.empty(count, dtype=FLOW_DTYPE)
    _FROM_COMPACT.apply(records, batch, _COMPACT_TEMPLATE)
    return batch


def is_received_copy(frame: bytes | memoryview) -> bool:
    """Does the frame carry copies for the destinations' partition? (Read before decoding.)

    >>> from silkwatch.detectors.schema import make_batch
    >>> batch = make_batch(sip=["10.0.0.1"])
    >>> copy = encode_frame(batch, received_copy=True)
    >>> is_received_copy(encode_frame(batch)), is_received_copy(copy)
    (False, True)
    """
    return len(frame) >= _HEADER.size and bool(frame[6] & RECEIVED_COPY)
