"""The flow-batch frame: exact bytes on the wire and lossless round trips."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from silkwatch.connectors.kafka.frame import FrameError, decode_frame, encode_frame
from silkwatch.detectors.schema import make_batch


def ipv4_batch(rows: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    batch = make_batch(
        sip=[f"10.{i % 256}.{i // 256 % 256}.1" for i in range(rows)],
        dip=[f"192.0.2.{i % 256}" for i in range(rows)],
        nhip=["198.51.100.7"] * rows,
    )
    for name in ("stime_ms", "packets", "bytes", "elapsed_ms", "sport", "dport", "proto"):
        info = np.iinfo(batch.dtype[name])
        batch[name] = rng.integers(info.min, info.max, rows, endpoint=True, dtype=info.dtype)
    batch["sensor"], batch["flowtype"], batch["tcp_state"] = 3, 1, 0x08
    return batch


def test_compact_layout_bytes_are_the_documented_ones():
    batch = make_batch(
        stime_ms=[1_434_553_200_123],
        packets=[5],
        bytes=[1_500],
        sip=["10.1.2.3"],
        dip=["192.0.2.9"],
        nhip=["0.0.0.1"],
        elapsed_ms=[250],
        sport=[50_000],
        dport=[443],
        proto=[6],
        sensor=[3],
        flags=[0x1B],
    )
    frame = encode_frame(batch)
    assert frame[:16] == struct.pack("<4sBBHII", b"SWFB", 1, 2, 0, 1, 64)
    stime, packets, nbytes, sip, dip, nhip = struct.unpack_from("<qQQIII", frame, 16)
    assert (stime, packets, nbytes) == (1_434_553_200_123, 5, 1_500)
    assert (sip, dip, nhip) == (0x0A010203, 0xC0000209, 1)  # host-order u32 (docs/frame.md)
    assert struct.unpack_from("<IIIHH", frame, 16 + 36) == (250, 0, 0, 50_000, 443)
    assert len(frame) == 16 + 64


@pytest.mark.parametrize("rows", [1, 129, 10_000])  # within, across and over many blocks
def test_ipv4_round_trip_is_exact(rows):
    batch = ipv4_batch(rows)
    assert len(encode_frame(batch)) == 16 + 64 * rows
    assert decode_frame(encode_frame(batch)).tobytes() == batch.tobytes()


def test_ipv6_batches_travel_in_the_full_layout():
    batch = make_batch(sip=["2001:db8::1", "10.0.0.1"], bytes=[7, 9])
    frame = encode_frame(batch)
    assert frame[5] == 1 and len(frame) == 16 + 2 * 104
    assert decode_frame(frame).tobytes() == batch.tobytes()


def test_a_truncated_frame_is_refused_with_its_sizes():
    frame = encode_frame(ipv4_batch(3))
    with pytest.raises(FrameError, match=r"length 207 does not match 3 records \(208 bytes\)"):
        decode_frame(frame[:-1])


def test_a_frame_of_picked_rows_equals_the_frame_of_those_rows():
    batch = ipv4_batch(1_000)
    rows = np.random.default_rng(5).permutation(1_000)[:300]
    assert encode_frame(batch, rows) == encode_frame(batch[rows])
    mixed = make_batch(sip=["2001:db8::1", "10.0.0.1", "10.0.0.2"], bytes=[1, 2, 3])
    assert encode_frame(mixed, np.array([1, 2])) == encode_frame(mixed[[1, 2]])  # compact
    assert encode_frame(mixed, np.array([2, 0])) == encode_frame(mixed[[2, 0]])  # full


def test_rows_outside_the_batch_are_refused():
    with pytest.raises(IndexError, match="3 is out"):
        encode_frame(ipv4_batch(3), np.array([0, 3]))
