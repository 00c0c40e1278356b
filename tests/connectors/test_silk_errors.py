"""Damaged input: one clear SilkFormatError with file and offset, good records first.

The property tests mutate and truncate genuine SiLK files and check that the
reader never raises anything else, never hangs and never allocates from an
untrusted length beyond the 1 MiB cap.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from silkwatch.cli import main
from silkwatch.connectors.silk import SilkFormatError, read_batches, read_header
from silkwatch.connectors.silk.exceptions import (
    SilkBlockError,
    SilkHeaderError,
    SilkTruncatedError,
    SilkUnsupportedError,
)
from tests.connectors.test_silk_reader import DOF, FCCX, SILK

HANDMADE = (SILK / "generated" / "handmade.rw").read_bytes()  # 88-byte header, 5 records of 88
FCCX_V1 = SILK / "fccx" / "FT_RWIPV6ROUTING-v1-c1-L.dat"  # header 264, blocks of 744 records


def block_offsets(data: bytes, start: int, count: int) -> list[int]:
    """Offsets of the first ``count`` compressed blocks."""
    offsets = []
    while len(offsets) < count and start < len(data):
        offsets.append(start)
        start += 8 + struct.unpack_from(">I", data, start)[0]
    return offsets


def small_sample(path: Path, max_blocks: int = 3) -> bytes:
    """A genuine file cut after a few whole blocks, so fuzzing stays fast."""
    data = path.read_bytes()
    header = read_header(path)
    if header.compression == 0:
        return data[: header.length + 200 * header.rec_size]
    offsets = block_offsets(data, header.length, max_blocks + 1)
    return data[: offsets[max_blocks]] if len(offsets) > max_blocks else data


FV1 = FCCX_V1.read_bytes()
BLOCK = block_offsets(FV1, 264, 6)


def patched(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


CASES = [
    # name, bytes, error class, offset, message part, records delivered first
    ("wrong magic", b"\x00" * 100, SilkHeaderError, 0, "not a SiLK file", 0),
    ("empty", b"", SilkHeaderError, 0, "not a SiLK file (magic missing)", 0),
    ("legacy header", patched(HANDMADE, 6, b"\x05"), SilkUnsupportedError, 6, "legacy", 0),
    ("unknown format", patched(HANDMADE, 5, b"\x21"), SilkUnsupportedError, 5, "format 0x21", 0),
    (
        "unknown version",
        patched(HANDMADE, 14, b"\x00\x09"),
        SilkUnsupportedError,
        5,
        "version 9",
        0,
    ),
    ("unknown codec", patched(HANDMADE, 7, b"\x07"), SilkUnsupportedError, 7, "method 7", 0),
    (
        "rec_size mismatch",
        patched(HANDMADE, 12, b"\x00\x58"[::-1]),
        SilkHeaderError,
        12,
        "record size 22528",
        0,
    ),
    (
        "truncated header",
        HANDMADE[:10],
        SilkTruncatedError,
        10,
        "truncated header (10 of 16 bytes)",
        0,
    ),
    (
        "truncated entry",
        HANDMADE[:30],
        SilkTruncatedError,
        30,
        "truncated header entry 1 (14 of 24 bytes)",
        0,
    ),
    (
        "entry length < 8",
        patched(HANDMADE, 20, b"\x00\x00\x00\x03"),
        SilkHeaderError,
        16,
        "absurd length 3",
        0,
    ),
    (
        "entry over 1 MiB",
        patched(HANDMADE, 20, b"\x7f\x00\x00\x00"),
        SilkHeaderError,
        16,
        "absurd length",
        0,
    ),
    (
        "packedfile length",
        patched(HANDMADE, 20, b"\x00\x00\x00\x20"),
        SilkHeaderError,
        16,
        "not 24",
        0,
    ),
    (
        "truncated record",
        HANDMADE[: 88 + 2 * 88 + 52],
        SilkTruncatedError,
        264,
        "truncated record (52 of 88 bytes)",
        2,
    ),
    (
        "truncated block",
        FV1[: BLOCK[4] + 100],
        SilkTruncatedError,
        BLOCK[4],
        "truncated compressed block (92 of",
        4 * 744,
    ),
    (
        "truncated block header",
        FV1[: BLOCK[2] + 5],
        SilkTruncatedError,
        BLOCK[2],
        "truncated block header (5 of 8",
        2 * 744,
    ),
    (
        "corrupt block",
        patched(FV1, BLOCK[2] + 40, b"\xff" * 16),
        SilkBlockError,
        BLOCK[2],
        "fails to decompress",
        2 * 744,
    ),
    (
        "absurd block",
        patched(FV1, BLOCK[3] + 4, b"\x00\x20\x00\x00"),
        SilkBlockError,
        BLOCK[3],
        "absurd block lengths",
        3 * 744,
    ),
    (
        "partial records in block",
        patched(FV1, BLOCK[1] + 4, b"\x00\x00\x10\x00"),
        SilkBlockError,
        BLOCK[1],
        "not whole 88-byte records",
        744,
    ),
    (
        "wrong uncompressed length",
        patched(FV1, BLOCK[1] + 4, b"\x00\x00\xff\x68"),
        SilkBlockError,
        BLOCK[1],
        "fails to decompress",
        744,
    ),
]


@pytest.mark.parametrize(
    ("name", "data", "error", "offset", "detail", "delivered"), CASES, ids=[c[0] for c in CASES]
)
def test_damage_is_reported_after_the_good_records(name, data, error, offset, detail, delivered):
    got = []
    with pytest.raises(error) as caught:
        for batch in read_batches(io.BytesIO(data), rows=1000):
            got.append(len(batch))
    assert sum(got) == delivered
    assert caught.value.offset == offset
    assert detail in caught.value.detail
    assert str(caught.value).startswith(f"silk: <stream> offset {offset}: ")


def test_truncated_file_message_names_the_file(tmp_path):
    path = tmp_path / "day.rw"
    path.write_bytes(HANDMADE[: 88 + 2 * 88 + 52])
    with pytest.raises(SilkTruncatedError) as caught:
        list(read_batches(path))
    assert str(caught.value) == f"silk: {path} offset 264: truncated record (52 of 88 bytes)"
    assert caught.value.reason == "truncated_record"


def test_cli_prints_the_good_records_then_one_error_line(tmp_path, capsys):
    path = tmp_path / "day.rw"
    path.write_bytes(HANDMADE[: 88 + 2 * 88 + 52])
    status = main(["cut", str(path), "--fields=sIP,bytes", "--format=csv"])
    out, err = capsys.readouterr()
    assert status == 1
    assert out == "sIP,bytes\n2001:db8::1,4800\n10.0.0.5,252\n"
    assert err == f"silkwatch: error: silk: {path} offset 264: truncated record (52 of 88 bytes)\n"


def test_missing_codec_names_the_package(monkeypatch):
    from silkwatch.connectors.silk import codecs

    monkeypatch.setattr(codecs, "package", lambda name: None)  # as if not installed
    with pytest.raises(
        SilkUnsupportedError, match=r"unsupported compression method 2 \(install lzokay\)"
    ):
        list(read_batches(DOF[0]))


# --------------------------------------------------------------------------- fuzzing

SAMPLES = [small_sample(p) for p in [*DOF, *FCCX]] + [
    (SILK / "generated" / name).read_bytes()
    for name in (
        "v6mix.rw",
        "v6mix-FT_RWAUGWEB-v5-c0-B.dat",
        "v6mix-FT_RWSPLIT-v5-c0-L.dat",
        "v6mix-FT_RWIPV6-v2-c0-B.dat",
    )
]
MAX_ALLOCATION = 8 << 20  # a couple of 1 MiB blocks plus small batches; never "what the file says"
FUZZ = settings(max_examples=120, deadline=5000, suppress_health_check=[HealthCheck.too_slow])


def read_damaged(data: bytes) -> int:
    """Read everything; return the records delivered (raising only SilkFormatError)."""
    tracemalloc.start()
    try:
        delivered = 0
        try:
            for batch in read_batches(io.BytesIO(data), rows=512):
                assert len(batch) <= 512
                delivered += len(batch)
        except SilkFormatError:
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_ALLOCATION
    return delivered


@pytest.mark.timeout(60)
@FUZZ
@given(which=st.integers(0, len(SAMPLES) - 1), cut=st.floats(0, 1))
def test_truncated_files_raise_only_silk_format_error(which, cut):
    sample = SAMPLES[which]
    read_damaged(sample[: int(len(sample) * cut)])


@pytest.mark.timeout(60)
@FUZZ
@given(
    which=st.integers(0, len(SAMPLES) - 1),
    edits=st.lists(
        st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=4)), min_size=1, max_size=6
    ),
)
def test_mutated_files_raise_only_silk_format_error(which, edits):
    data = bytearray(SAMPLES[which])
    for where, value in edits:
        at = int(where * (len(data) - 1))
        data[at : at + len(value)] = value
    read_damaged(bytes(data))


@pytest.mark.timeout(60)
@FUZZ
@given(
    which=st.integers(0, len(SAMPLES) - 1),
    header_byte=st.integers(0, 63),
    value=st.integers(0, 255),
)
def test_mutated_headers_raise_only_silk_format_error(which, header_byte, value):
    data = bytearray(SAMPLES[which])
    data[min(header_byte, len(data) - 1)] = value
    read_damaged(bytes(data))


def test_fuzz_samples_decode_cleanly():
    assert [read_damaged(s) > 0 for s in SAMPLES] == [True] * len(SAMPLES)
    assert np.all([len(s) < 80_000 for s in SAMPLES])
