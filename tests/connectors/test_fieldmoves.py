"""The compiled field mover: every kind of move, and the checks that guard the C code."""

from __future__ import annotations

import numpy as np
import pytest

from silkwatch.connectors.fieldmoves import FieldMoves, Move, byte_test, field, masked_byte

SOURCE = np.dtype(
    {
        "names": ["a", "b", "flags", "addr"],
        "formats": [">u2", "<u4", "u1", "V4"],
        "offsets": [0, 2, 6, 7],
        "itemsize": 11,
    }
)
TARGET = np.dtype([("a", "<u8"), ("b", ">u4"), ("flags", "u1"), ("v6", "?"), ("addr", "V4")])


def records(*rows: tuple[int, int, int, bytes]) -> bytes:
    return np.array(list(rows), dtype=SOURCE).tobytes()


def test_widen_swap_mask_test_and_conditional_copy_in_one_pass():
    moves = FieldMoves(
        SOURCE.itemsize,
        TARGET.itemsize,
        [
            field(0, ">u2", TARGET.fields["a"][1], "<u8"),
            field(2, "<u4", TARGET.fields["b"][1], ">u4"),
            masked_byte(6, TARGET.fields["flags"][1], 0x0F),
            byte_test(6, TARGET.fields["v6"][1], 0x80),
            field(7, "V4", TARGET.fields["addr"][1], "V4", when=(6, 0x80)),
        ],
    )
    template = np.zeros(1, TARGET)
    template["addr"] = b"\xee\xee\xee\xee"
    out = np.empty(3, TARGET)
    seen = moves.apply(
        records(
            (0x0102, 7, 0x83, b"\x01\x02\x03\x04"),
            (65535, 2**32 - 1, 0x10, b"\x05\x06\x07\x08"),
            (0, 0, 0x41, b"\x09\x0a\x0b\x0c"),
        ),
        out,
        template.tobytes(),
    )
    assert seen == 0x83 | 0x10 | 0x41
    assert out["a"].tolist() == [0x0102, 65535, 0]
    assert out["b"].tolist() == [7, 2**32 - 1, 0]
    assert out["flags"].tolist() == [0x03, 0x00, 0x01]
    assert out["v6"].tolist() == [True, False, False]
    assert out["addr"].tolist() == [b"\x01\x02\x03\x04", b"\xee\xee\xee\xee", b"\xee\xee\xee\xee"]


def test_between_pairs_fields_by_position_across_many_blocks():
    rows = 1000  # several 128-record blocks and a partial one
    source = np.zeros(rows, SOURCE)
    source["a"], source["b"] = np.arange(rows), np.arange(rows) * 3
    pick = ["a", "b"]
    out = np.zeros(rows, TARGET)
    FieldMoves.between(source.dtype[pick], TARGET[pick]).apply(source.tobytes(), out)
    assert out["a"].tolist() == list(range(rows))
    assert out["b"].tolist() == [3 * i for i in range(rows)]


@pytest.mark.parametrize(
    ("move", "message"),
    [
        (Move(9, 0, 0, 4, 4), "move 0 is invalid"),  # reads past the source record
        (Move(0, 15, 0, 4, 4), "move 0 is invalid"),  # writes past the target record
        (Move(0, 0, 1, 4, 2), "move 0 is invalid"),  # narrows
        (Move(0, 0, 1, 3, 4), "move 0 is invalid"),  # not an integer size
        (Move(0, 0, 0, 2, 4), "move 0 is invalid"),  # a copy that changes size
        (Move(0, 0, 8, 1, 1, 1, 3), "move 0 is invalid"),  # a conditional masked byte
        (Move(0, 0, 77, 1, 1), "move 0 is invalid"),  # an unknown op
    ],
)
def test_bad_moves_are_refused_before_any_byte_moves(move, message):
    out = np.full(1, 0xAB, TARGET)
    with pytest.raises(ValueError, match=message):
        FieldMoves(SOURCE.itemsize, TARGET.itemsize, [move]).apply(bytes(11), out)
    assert out.tobytes() == np.full(1, 0xAB, TARGET).tobytes()


def test_sizes_that_do_not_match_are_refused():
    moves = FieldMoves(SOURCE.itemsize, TARGET.itemsize, [])
    with pytest.raises(ValueError, match="not whole 11-byte records"):
        moves.apply(bytes(12), np.zeros(1, TARGET))
    with pytest.raises(ValueError, match="is not 2 records"):
        moves.apply(bytes(22), np.zeros(3, TARGET))
    with pytest.raises(ValueError, match="template is 3 bytes"):
        moves.apply(bytes(11), np.zeros(1, TARGET), b"abc")
    with pytest.raises(ValueError, match="contiguous"):
        moves.apply(bytes(22), np.zeros(4, TARGET)[::2])


def test_fields_that_cannot_move_are_refused_when_planned():
    with pytest.raises(ValueError, match="cannot move a int16 field into a int32 field"):
        field(0, "<i2", 0, "<i4")  # sign extension is not a move


def test_rows_pick_source_records_and_are_bounds_checked():
    source = np.zeros(300, SOURCE)
    source["a"] = np.arange(300)
    moves = FieldMoves.between(source.dtype[["a"]], TARGET[["a"]])
    rows = np.array([299, 0, 150] * 100)  # more than one block
    out = np.zeros(len(rows), TARGET)
    moves.apply(source.tobytes(), out, rows=rows)
    assert out["a"].tolist() == rows.tolist()
    with pytest.raises(IndexError, match="row 300 is outside 300 source records"):
        moves.apply(source.tobytes(), np.zeros(1, TARGET), rows=np.array([300]))
