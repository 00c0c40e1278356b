"""Convert records from one fixed layout to another in one compiled pass.

Decoding a SiLK record or a Kafka frame means moving a dozen fields from one
packed layout into ``FLOW_DTYPE``: widening counters, swapping byte order,
copying runs of bytes. numpy does that one field at a time over the whole
batch (a strided pass per field, ~30 ns a record); ``_fieldmoves.c`` takes the
records in blocks that stay in L1 cache, fills each output record from a
template and runs every move over the block (~15 ns a record); it can also
pick the source records by index (a gather fused with the moves). The plan
(which bytes go where) is built here, so the C side stays a small, checked
executor with three kinds of move:

* ``field``: a value copied verbatim, or as an integer byte-swapped and/or
  (unsigned) widened; optionally only for records whose ``when`` byte has a
  bit of ``mask`` set (IPv6 addresses in SiLK records, say);
* ``masked_byte``: one byte ANDed with a mask (``apply`` returns the OR of
  every unmasked byte, so the caller learns which bits occurred at all);
* ``byte_test``: 1 where a byte has a bit of the mask set, else 0.

Example
-------
>>> source = np.dtype({"names": ["a"], "formats": [">u2"], "offsets": [1], "itemsize": 3})
>>> target = np.dtype({"names": ["a"], "formats": ["<u4"], "offsets": [0], "itemsize": 4})
>>> out = np.zeros(2, np.uint32)
>>> FieldMoves.between(source, target).apply(b"\\x00\\x01\\x02\\x00\\x00\\x07", out)
0
>>> out.tolist()
[258, 7]
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from silkwatch.connectors._fieldmoves import move_fields

_OP_COPY, _OP_INT, _OP_SRC_BE, _OP_DST_BE, _OP_MASKED, _OP_TEST = 0, 1, 2, 4, 8, 9
ALWAYS = 0xFFFF
#: one move as ``_fieldmoves.c`` reads it (native byte order)
_MOVE = np.dtype(
    [
        ("src", "=u2"),
        ("dst", "=u2"),
        ("op", "u1"),
        ("src_size", "u1"),
        ("dst_size", "u1"),
        ("mask", "u1"),
        ("when", "=u2"),
        ("reserved", "=u2"),
    ]
)


class Move(NamedTuple):
    """One entry of a plan; build them with the functions below."""

    source: int
    target: int
    op: int
    source_size: int
    target_size: int
    mask: int = 0
    when: int = ALWAYS


def _big_endian(dtype: np.dtype) -> bool:
    return dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big")


def field(
    source: int,
    source_type: np.dtype,
    target: int,
    target_type: np.dtype,
    *,
    when: tuple[int, int] | None = None,
) -> Move:
    """Move a value: verbatim when the types match, else byte-swapped and/or widened.

    Integers may change byte order; only unsigned ones may widen (zero-extended).

    ``when`` = (source offset, mask): only for records whose byte there has a
    bit of the mask set.
    """
    source_type, target_type = np.dtype(source_type), np.dtype(target_type)
    same_bytes = source_type.kind == target_type.kind == "V"
    swapped = source_type.kind == target_type.kind and source_type.kind in "ui"
    widened = source_type.kind == target_type.kind == "u"
    if source_type == target_type or (same_bytes and source_type.itemsize == target_type.itemsize):
        op = _OP_COPY
    elif (swapped and source_type.itemsize == target_type.itemsize) or (
        widened and source_type.itemsize < target_type.itemsize
    ):
        op = (
            _OP_INT
            | (_OP_SRC_BE if _big_endian(source_type) else 0)
            | (_OP_DST_BE if _big_endian(target_type) else 0)
        )
    else:
        raise ValueError(f"cannot move a {source_type} field into a {target_type} field")
    at, mask = when if when else (ALWAYS, 0)
    return Move(source, target, op, source_type.itemsize, target_type.itemsize, mask, at)


def masked_byte(source: int, target: int, mask: int) -> Move:
    """Copy one byte with only the bits of ``mask`` kept."""
    return Move(source, target, _OP_MASKED, 1, 1, mask)


def byte_test(source: int, target: int, mask: int) -> Move:
    """Write 1 where the source byte has a bit of ``mask`` set, else 0 (a bool column)."""
    return Move(source, target, _OP_TEST, 1, 1, mask)


class FieldMoves:
    """A plan of moves from ``source_size``-byte records to ``target_size``-byte ones.

    Moves run in order, so a conditional move may overwrite what an earlier
    one wrote. Target bytes no move writes keep the template's value.
    """

    def __init__(self, source_size: int, target_size: int, moves: Iterable[Move]) -> None:
        self.source_size, self.target_size = source_size, target_size
        self._moves = np.array([(*m, 0) for m in moves], dtype=_MOVE).tobytes()

    @classmethod
    def between(cls, source: np.dtype, target: np.dtype) -> FieldMoves:
        """Moves between two structured dtypes whose fields pair by position."""
        if len(source.names) != len(target.names):
            raise ValueError("source and target must pair their fields one to one")
        return cls(
            source.itemsize,
            target.itemsize,
            (
                field(*source.fields[s][1::-1], *target.fields[t][1::-1])
                for s, t in zip(source.names, target.names, strict=True)
            ),
        )

    def apply(
        self,
        records: bytes | memoryview | np.ndarray,
        out: np.ndarray,
        template: bytes = b"",
        rows: np.ndarray | None = None,
    ) -> int:
        """Fill ``out`` (exactly one row per source record, or per ``rows``) from ``records``.

        ``template`` (``target_size`` bytes), when given, is what every output
        record holds before its fields arrive: padding, constants, defaults.
        ``rows``, when given, picks the source records by index (a gather fused
        with the moves: no intermediate copy of the picked records).
        Returns the OR of every byte the masked-byte moves read.
        """
        if out.dtype.itemsize != self.target_size or not out.flags.c_contiguous:
            raise ValueError(f"output must be contiguous {self.target_size}-byte records")
        if rows is not None:
            rows = np.ascontiguousarray(rows, dtype=np.int64)
        return move_fields(
            records, self.source_size, out, self.target_size, template, self._moves, rows
        )
