"""FT_FLOWCAP (flowcap spool files): records packed as SiLK's flowcapio.c packs them."""

from __future__ import annotations

import struct

import pytest

from silkwatch.connectors.silk import read_batches
from silkwatch.connectors.silk.header import FileFormat, HeaderEntry, SilkHeader, encode_header
from silkwatch.detectors.schema import ip_strings

SIP, DIP = 0x0A000001, 0xC0A80102  # 10.0.0.1, 192.168.1.2


def frac(stime_msec: int, elapsed_msec: int) -> bytes:
    """flowcapio's hand-packed (always big-endian) 10-bit milliseconds of start and duration."""
    return bytes(
        [
            stime_msec >> 2 & 0xFF,
            (stime_msec & 3) << 6 | (elapsed_msec >> 4 & 0x3F),
            elapsed_msec << 4 & 0xFF,
        ]
    )


def packets(count: int, order: str) -> bytes:
    return count.to_bytes(3, "little" if order == "<" else "big")


def record_v5(order: str, *, state: int, first: int, rest: int, app: int = 80) -> bytes:
    head = struct.pack(
        order + "IIIIHHHHHH", SIP, DIP, 123456, 1434553200, 1799, 61000, 443, app, 7, 9
    )
    return head + packets(70000, order) + bytes([6, rest, first, state]) + frac(13, 810)


def record_v3(order: str, *, hash_: int | None = None) -> bytes:
    head = struct.pack(order + "IIIIHHHH", SIP, DIP, 5000, 1434553200, 2, 53, 1024, 53)
    body = head + bytes([3, 4]) + packets(12, order) + bytes([17, 0, 0, 0]) + frac(999, 5)
    return body + (struct.pack(order + "I", hash_) if hash_ is not None else b"")


def record_v2(order: str) -> bytes:
    head = struct.pack(order + "IIIIHHH", SIP, DIP, 840, 1434553200, 10, 3, 771)
    return head + bytes([1, 2]) + packets(10, order) + bytes([1, 0x12, 0])


def flowcap_file(tmp_path, version: int, records: bytes, size: int, order: str):
    header = SilkHeader(
        file_format=FileFormat.FT_FLOWCAP,
        rec_version=version,
        rec_size=size,
        big_endian=order == ">",
        entries=(HeaderEntry.text(4, "probe-one"),),
    )
    path = tmp_path / f"flowcap-v{version}.dat"
    path.write_bytes(encode_header(header) + records)
    (batch,) = list(read_batches(path))
    return batch


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("version", [5, 6])
def test_flowcap_v5_v6(tmp_path, order, version):
    records = record_v5(order, state=0x01, first=0x02, rest=0x18) + record_v5(
        order, state=0x00, first=0x00, rest=0x1B
    )
    b = flowcap_file(tmp_path, version, records, 38, order)
    assert ip_strings(b["sip"], b["ipv6"]) == ["10.0.0.1"] * 2
    assert ip_strings(b["dip"], b["ipv6"]) == ["192.168.1.2"] * 2
    assert b["stime_ms"].tolist() == [1434553200013] * 2
    assert b["elapsed_ms"].tolist() == [1799810] * 2
    assert b["packets"].tolist() == [70000] * 2 and b["bytes"].tolist() == [123456] * 2
    assert b["sport"].tolist() == [61000] * 2 and b["dport"].tolist() == [443] * 2
    assert b["input"].tolist() == [7] * 2 and b["output"].tolist() == [9] * 2
    assert b["application"].tolist() == ([80] * 2 if version == 5 else [0] * 2)
    assert b["proto"].tolist() == [6, 6]
    # expanded: flags = session | initial; otherwise one flags byte
    assert b["flags"].tolist() == [0x1A, 0x1B]
    assert b["init_flags"].tolist() == [0x02, 0] and b["rest_flags"].tolist() == [0x18, 0]
    assert b["sensor"].tolist() == [65535] * 2  # no packedfile entry: unknown, as SiLK


@pytest.mark.parametrize("order", ["<", ">"])
def test_flowcap_v3_v4(tmp_path, order):
    b3 = flowcap_file(tmp_path, 3, record_v3(order), 36, order)
    assert b3["stime_ms"].tolist() == [1434553200999] and b3["elapsed_ms"].tolist() == [2005]
    assert b3["packets"].tolist() == [12] and b3["proto"].tolist() == [17]
    assert (b3["input"].tolist(), b3["output"].tolist()) == ([3], [4])
    assert b3["application"].tolist() == [53]
    b4 = flowcap_file(tmp_path, 4, record_v3(order, hash_=0x01020304), 40, order)
    assert ip_strings(b4["nhip"], b4["ipv6"]) == ["1.2.3.4"]  # the payload hash, as SiLK


@pytest.mark.parametrize("order", ["<", ">"])
def test_flowcap_v2(tmp_path, order):
    b = flowcap_file(tmp_path, 2, record_v2(order), 30, order)
    assert b["stime_ms"].tolist() == [1434553200000] and b["elapsed_ms"].tolist() == [10000]
    assert b["dport"].tolist() == [771] and b["packets"].tolist() == [10]
    assert b["proto"].tolist() == [1] and b["flags"].tolist() == [0x12]
    assert (b["input"].tolist(), b["output"].tolist()) == ([1], [2])
