"""SilkWriter: exact round trips, SiLK's block and padding rules, byte-identical re-encoding."""

from __future__ import annotations

import io
import itertools
import struct

import numpy as np
import pytest

from silkwatch.connectors.silk import (
    Compression,
    FileFormat,
    HeaderEntry,
    SilkWriteError,
    SilkWriter,
    read_batches,
    read_header,
)
from silkwatch.connectors.silk.header import EntryId
from silkwatch.detectors.schema import FLOW_DTYPE, FlowBatch, empty_batch, make_batch
from tests.connectors.test_silk_reader import SILK, read_all


def canonical_flows(rows: int, *, ipv6: bool, seed: int = 7) -> FlowBatch:
    """Random flows already in the form the reader produces (so a round trip must be exact)."""
    rng = np.random.default_rng(seed)
    b = empty_batch(rows)
    for column in ("sport", "dport", "sensor", "application", "memo", "input", "output"):
        b[column] = rng.integers(0, 1 << 16, rows)
    b["stime_ms"] = rng.integers(0, 1 << 42, rows)
    b["elapsed_ms"] = rng.integers(0, 1 << 32, rows)
    b["packets"] = rng.integers(1, 1 << 32, rows)
    b["bytes"] = rng.integers(0, 1 << 32, rows)
    b["proto"] = rng.choice([1, 6, 17, 58, 89], rows)
    b["flowtype"] = rng.integers(0, 256, rows)
    b["flags"] = rng.integers(0, 256, rows)
    b["tcp_state"] = rng.choice([0, 0x08, 0x10, 0x20, 0x40, 0x78], rows)
    expanded = (b["proto"] == 6) & (rng.random(rows) < 0.5)
    b["init_flags"] = np.where(expanded, rng.integers(1, 256, rows), 0)
    b["rest_flags"] = np.where(expanded, rng.integers(0, 256, rows), 0)
    b["tcp_state"] |= expanded
    b["ipv6"] = rng.random(rows) < 0.3 if ipv6 else False
    for column in ("sip", "dip", "nhip"):
        raw = rng.integers(0, 256, (rows, 16), dtype=np.uint8)
        raw[~b["ipv6"], :10], raw[~b["ipv6"], 10:12] = 0, 0xFF
        b[column] = raw.view("V16").reshape(-1)
    icmp = (b["proto"] == 1) | ((b["proto"] == 58) & b["ipv6"])
    b["sport"][icmp] = 0  # the reader moves an ICMP type/code found in sPort to dPort
    return b


def write_bytes(batches: list[FlowBatch], **kwargs) -> bytes:
    out = io.BytesIO()
    with SilkWriter(out, **kwargs) as writer:
        for batch in batches:
            writer.write(batch)
    return out.getvalue()


def blocks(data: bytes, start: int) -> list[tuple[int, int]]:
    """(compressed, uncompressed) lengths of every block after the header."""
    sizes = []
    while start < len(data):
        compressed, uncompressed = struct.unpack_from(">II", data, start)
        sizes.append((compressed, uncompressed))
        start += 8 + compressed
    return sizes


FORMATS = [
    (FileFormat.FT_RWIPV6ROUTING, 1, True),
    (FileFormat.FT_RWIPV6ROUTING, 3, True),
    (FileFormat.FT_RWGENERIC, 5, False),
]


@pytest.mark.parametrize(("file_format", "version", "ipv6"), FORMATS)
@pytest.mark.parametrize("compression", [Compression.NONE, Compression.ZLIB])
@pytest.mark.parametrize("big_endian", [False, True])
def test_round_trip_is_exact(file_format, version, ipv6, compression, big_endian):
    flows = canonical_flows(50_000, ipv6=ipv6)
    cuts = [0, 1, 700, 744, 20_000, 50_000]  # uneven writes straddle block boundaries
    data = write_bytes(
        [flows[a:b] for a, b in itertools.pairwise(cuts)],
        file_format=file_format,
        rec_version=version,
        compression=compression,
        big_endian=big_endian,
    )
    back = np.concatenate(list(read_batches(io.BytesIO(data), rows=4096)))
    assert back.dtype == FLOW_DTYPE and len(back) == 50_000
    for column in FLOW_DTYPE.names:
        assert (back[column] == flows[column]).all(), column
    header = read_header(io.BytesIO(data))
    assert (header.file_format, header.rec_version, header.big_endian) == (
        file_format,
        version,
        big_endian,
    )


@pytest.mark.parametrize(
    ("file_format", "rec_size", "block_bytes"),
    [(FileFormat.FT_RWIPV6ROUTING, 88, 65_472), (FileFormat.FT_RWGENERIC, 52, 65_520)],
)
def test_blocks_hold_65536_minus_remainder_bytes(file_format, rec_size, block_bytes):
    flows = canonical_flows(3000, ipv6=False)
    data = write_bytes([flows], file_format=file_format, compression=Compression.ZLIB)
    header = read_header(io.BytesIO(data))
    full, last = divmod(3000 * rec_size, block_bytes)
    assert [u for _, u in blocks(data, header.length)] == [block_bytes] * full + [last]


@pytest.mark.parametrize(
    ("entries", "rec_size", "header_length", "end_length"),
    [
        ((), 88, 88, 72),
        ([HeaderEntry.text(EntryId.INVOCATION, "handmade-by-spec-writer")], 88, 88, 40),
        (
            [
                HeaderEntry.text(EntryId.PROBENAME, "DUMMY_PROBE"),
                HeaderEntry.packedfile(1434553200000, 1, 3),
                HeaderEntry.text(
                    EntryId.INVOCATION,
                    "rwallformats --site-config-file=silk.conf FT_RWIPV6ROUTING-v1-c1-B.dat",
                ),
            ],
            52,
            156,
            17,
        ),
    ],
)
def test_header_padding_rule(entries, rec_size, header_length, end_length):
    file_format = FileFormat.FT_RWIPV6ROUTING if rec_size == 88 else FileFormat.FT_RWGENERIC
    data = write_bytes([], file_format=file_format, entries=entries)
    assert len(data) == header_length
    assert struct.unpack_from(">II", data, header_length - end_length) == (0, end_length)
    assert list(read_batches(io.BytesIO(data))) == []


@pytest.mark.parametrize(
    "name",
    [
        "fccx/FT_RWIPV6ROUTING-v1-c1-L.dat",  # zlib, little-endian, 245,340 records
        "fccx/FT_RWGENERIC-v5-c1-B.dat",  # zlib, big-endian
        "dof/FT_RWGENERIC_DOF_c3.rw",  # zlib, written by rwptoflow
        "generated/v6mix.rw",  # uncompressed, IPv6, expanded flags, attributes
        "generated/handmade.rw",
    ],
)
def test_reencoding_reproduces_silks_file_byte_for_byte(name):
    path = SILK / name
    header = read_header(path)
    data = write_bytes(
        [read_all(path)],
        file_format=header.file_format,
        rec_version=header.rec_version,
        compression=header.compression,
        big_endian=header.big_endian,
        entries=header.entries,
        silk_version=header.silk_version,
    )
    assert data == path.read_bytes()


def test_append_continues_the_file_in_its_own_format(tmp_path):
    path = tmp_path / "out-S3_20150617.15"
    flows = canonical_flows(3000, ipv6=False)
    with SilkWriter(path, file_format=FileFormat.FT_RWGENERIC, compression=Compression.ZLIB) as w:
        w.write(flows[:1000])
    with SilkWriter(path, append=True) as w:
        w.write(flows[1000:2000])
        w.flush()
        w.write(flows[2000:])
    assert (read_all.__wrapped__(path) == flows).all()
    header = read_header(path)
    assert (header.file_format, header.compression) == (FileFormat.FT_RWGENERIC, Compression.ZLIB)


@pytest.mark.parametrize(
    ("file_format", "batch", "message"),
    [
        (FileFormat.FT_RWGENERIC, make_batch(sip=["2001:db8::1"]), "IPv4 only"),
        (FileFormat.FT_RWIPV6ROUTING, make_batch(packets=[1 << 32]), "packets above 4294967295"),
        (FileFormat.FT_RWIPV6ROUTING, make_batch(input=[70_000]), "input above 65535"),
    ],
)
def test_unencodable_flows_are_refused(file_format, batch, message):
    with pytest.raises(SilkWriteError, match=message) as caught:
        write_bytes([batch], file_format=file_format)
    assert caught.value.reason == "unencodable"


@pytest.mark.parametrize(
    ("file_format", "version"),
    [(FileFormat.FT_RWSPLIT, 5), (FileFormat.FT_RWIPV6, 1), (FileFormat.FT_RWIPV6ROUTING, 2)],
)
def test_only_lossless_layouts_are_writable(file_format, version):
    with pytest.raises(
        SilkWriteError, match=f"cannot write format 0x{file_format:02X} version {version}"
    ):
        SilkWriter(io.BytesIO(), file_format=file_format, rec_version=version)
