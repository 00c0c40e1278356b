"""Every record layout, packed independently from the spec tables, decodes to the flows packed.

No public sample file exists for most old layouts (FT_RWGENERIC v0-v4,
FT_RWFILTER, FT_RWSPLIT/NOTROUTED/ROUTED/WWW v1-v4, AUG* v1-v3, ...). Here each
one is packed per ``silk-format.md`` §7-8 with ``struct`` (one record at a
time, written apart from the reader's tables) for four flows that exercise
milliseconds, bytes-per-packet with the packet multiplier, expanded TCP flags,
ICMP, web ports and attributes; the decoded batch must give back exactly what
each layout can hold.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import numpy as np
import pytest

from silkwatch.connectors.silk import Compression, HeaderEntry, read_batches
from silkwatch.connectors.silk.header import EntryId, SilkHeader, encode_header
from silkwatch.connectors.silk.header import FileFormat as F
from silkwatch.detectors.schema import ip_strings
from tests.connectors.test_silk_reader import SILK

T0 = 1_434_553_200_000  # the packedfile hour
SENSOR, FLOWTYPE = 7, 3
WEB = {80: 0, 443: 1, 8080: 2}

# expanded TCP to a web server, UDP (with flags: who keeps them?), ICMP, a huge download
FLOWS = [
    dict(
        sip="10.0.0.1",
        dip="192.0.2.2",
        sport=40000,
        dport=443,
        proto=6,
        packets=10,
        bytes=5000,
        flags=0x1B,
        init=0x02,
        rest=0x19,
        state=0x21,
        app=443,
        stime=T0 + 1_234_567,
        elapsed=12_345,
        input=3,
        output=4,
        nhip="10.0.0.254",
    ),
    dict(
        sip="10.0.0.5",
        dip="8.8.8.8",
        sport=5353,
        dport=53,
        proto=17,
        packets=1,
        bytes=74,
        flags=0x04,
        init=0,
        rest=0,
        state=0,
        app=53,
        stime=T0 + 5,
        elapsed=0,
        input=1,
        output=2,
        nhip="10.0.0.253",
    ),
    dict(
        sip="10.0.0.6",
        dip="192.0.2.9",
        sport=0,
        dport=771,
        proto=1,
        packets=3,
        bytes=252,
        flags=0,
        init=0,
        rest=0,
        state=0x10,
        app=0,
        stime=T0 + 3_599_999,
        elapsed=1500,
        input=0,
        output=9,
        nhip="0.0.0.0",
    ),
    dict(
        sip="192.0.2.10",
        dip="10.0.0.7",
        sport=80,
        dport=33333,
        proto=6,
        packets=2_000_000,
        bytes=1_900_000_000,
        flags=0x13,
        init=0,
        rest=0,
        state=0x40,
        app=80,
        stime=T0 + 600_000,
        elapsed=1_799_999,
        input=5,
        output=6,
        nhip="10.0.0.1",
    ),
]


def ip(text: str) -> int:
    return int.from_bytes(bytes(int(part) for part in text.split(".")), "big")


def bpp(r: dict) -> int:
    whole, remainder = divmod(r["bytes"], r["packets"])
    return (whole << 6) | (remainder * 64 // r["packets"])


def pkts(r: dict) -> tuple[int, int]:
    """(20-bit packet count, packet multiplier flag)."""
    return (r["packets"], 0) if r["packets"] < 1 << 20 else (r["packets"] // 64, 1)


def prot_flags(r: dict, *, with_state: bool) -> tuple[int, int, int]:
    """(is_tcp, prot_flags byte, rest byte) as a writer fills them (§8.2)."""
    if r["proto"] != 6:
        return 0, r["proto"], r["flags"] if with_state else 0
    if with_state and r["state"] & 1:
        return 1, r["init"], r["rest"]
    return 1, r["flags"], 0


def offset_ms(r: dict) -> int:
    return r["stime"] - T0


def tfv(r: dict, *, tail: bool, web: bool = False) -> bytes:
    p, pflag = pkts(r)
    b = bpp(r)
    is_tcp, pf, rest = prot_flags(r, with_state=tail)
    w0 = (offset_ms(r) << 10) | (b >> 10)
    w1 = ((b & 0x3FF) << 22) | r["elapsed"]
    if web:
        server_is_source = r["sport"] in WEB
        code = WEB[r["sport"] if server_is_source else r["dport"]]
        w2 = p | code << 20 | server_is_source << 22 | pflag << 23 | pf << 24
    else:
        w2 = p | is_tcp << 22 | pflag << 23 | pf << 24
    packed = struct.pack("<III", w0, w1, w2)
    return packed + struct.pack("<BBH", r["state"], rest, r["app"]) if tail else packed


def tfp(r: dict, *, web: bool = False) -> bytes:
    is_tcp, pf, rest = prot_flags(r, with_state=True)
    rest = rest if is_tcp else 0
    bit22 = int(r["sport"] in WEB) if web else 0
    return struct.pack(
        "<IBB", offset_ms(r) | bit22 << 22 | is_tcp << 23 | rest << 24, pf, r["state"]
    )


def tbp(r: dict, *, with_state: bool, web: bool = False) -> bytes:
    p, pflag = pkts(r)
    off_s, off_ms = divmod(offset_ms(r), 1000)
    el_s, el_ms = divmod(r["elapsed"], 1000)
    is_tcp, pf, _ = prot_flags(r, with_state=with_state)
    if web:
        server_is_source = r["sport"] in WEB
        code = WEB[r["sport"] if server_is_source else r["dport"]]
        middle = code << 8 | server_is_source << 10
    else:
        middle = is_tcp << 10
    msec_flags = pf | middle | pflag << 11 | el_ms << 12 | off_ms << 22
    return struct.pack("<III", off_s | p << 12, el_s | bpp(r) << 12, msec_flags)


def pef_sbb(r: dict) -> bytes:
    p, pflag = pkts(r)
    pef = pflag | (r["elapsed"] // 1000) << 1 | p << 12
    return struct.pack("<II", pef, bpp(r) | (offset_ms(r) // 1000) << 20)


def client(r: dict) -> int:
    return r["dport"] if r["sport"] in WEB else r["sport"]


def ips(r: dict, *names: str) -> bytes:
    return struct.pack("<" + "I" * len(names), *(ip(r[n]) for n in names))


def ports(r: dict) -> bytes:
    return struct.pack("<HH", r["sport"], r["dport"])


S = struct.pack


def split5(r: dict) -> bytes:
    return tfv(r, tail=False) + ports(r) + ips(r, "sip", "dip")


def split34(r: dict) -> bytes:
    return ips(r, "sip", "dip") + ports(r) + tbp(r, with_state=False)


def split12(r: dict) -> bytes:
    return ips(r, "sip", "dip") + ports(r) + pef_sbb(r) + S("<BB", r["proto"], r["flags"])


def aug5(r: dict) -> bytes:
    return (
        tfp(r)
        + S("<HHHIII", r["app"], r["sport"], r["dport"], r["elapsed"], r["packets"], r["bytes"])
        + ips(r, "sip", "dip")
    )


def aug4(r: dict) -> bytes:
    return tfv(r, tail=True) + ports(r) + ips(r, "sip", "dip")


def aug123(r: dict) -> bytes:
    return (
        ips(r, "sip", "dip")
        + ports(r)
        + tbp(r, with_state=True)
        + S("<HBB", r["app"], r["state"], prot_flags(r, with_state=True)[2])
    )


def gen34(r: dict) -> bytes:
    return (
        ips(r, "sip", "dip")
        + ports(r)
        + ips(r, "nhip")
        + S(
            "<HHIIIIBBHBBBBI",
            r["input"],
            r["output"],
            r["stime"] // 1000,
            r["elapsed"] // 1000,
            r["packets"],
            r["bytes"],
            r["proto"],
            FLOWTYPE,
            SENSOR,
            r["flags"],
            r["init"],
            r["rest"],
            r["state"],
            0,
        )
    )


def gen01(r: dict) -> bytes:
    return (
        ips(r, "sip", "dip")
        + ports(r)
        + S("<BBBB", r["proto"], r["flags"], r["input"], r["output"])
        + ips(r, "nhip")
        + S("<IIIIB", r["stime"] // 1000, r["packets"], r["bytes"], r["elapsed"] // 1000, SENSOR)
    )


def filter_head(r: dict) -> bytes:
    return (
        ips(r, "sip", "dip")
        + ports(r)
        + ips(r, "nhip")
        + S("<HHII", r["input"], r["output"], r["stime"] // 1000, r["elapsed"] // 1000)
    )


def filter12(r: dict, sensor_bits: int) -> bytes:
    head = (
        ips(r, "sip", "dip")
        + ports(r)
        + S("<BBBB", r["proto"], r["flags"], r["input"], r["output"])
    )
    return (
        head
        + ips(r, "nhip")
        + S("<I", r["stime"] // 1000)
        + pef_sbb(r)[:4]
        + S("<I", bpp(r) << 12 | sensor_bits)
    )


def filter45(r: dict) -> bytes:
    p, pflag = pkts(r)
    is_tcp, pf, rest = prot_flags(r, with_state=True)
    w1 = r["stime"] % 1000 | is_tcp << 10 | pflag << 11 | p << 12
    w2 = r["elapsed"] % 1000 | bpp(r) << 12
    return filter_head(r) + S("<IIHBBHBB", w1, w2, SENSOR, FLOWTYPE, pf, r["app"], r["state"], rest)


def filter3(r: dict) -> bytes:
    p, pflag = pkts(r)
    return filter_head(r) + S(
        "<IIHBB", FLOWTYPE | pflag << 11 | p << 12, bpp(r) << 12, SENSOR, r["proto"], r["flags"]
    )


def www12(r: dict) -> bytes:
    code = WEB[r["sport"] if r["sport"] in WEB else r["dport"]]
    return (
        ips(r, "sip", "dip")
        + pef_sbb(r)
        + S("<HBB", client(r), r["flags"] & 0x3F | (r["sport"] in WEB) << 7, code << 6)
    )


def augweb5(r: dict) -> bytes:
    code = WEB[r["sport"] if r["sport"] in WEB else r["dport"]]
    return (
        tfp(r, web=True)
        + S("<HIII", r["app"], r["elapsed"] | code << 30, r["packets"], r["bytes"])
        + ips(r, "sip", "dip")
        + S("<H", client(r))
    )


PLAIN_FLAGS = ("proto", "flags")  # flags kept for every protocol
STATE = ("proto", "flags", "state")  # tcp_state byte kept: attributes and expanded flags
TCP_ONLY = ("proto", "tcp_flags")  # flags of non-TCP flows are not stored
WEB_ONLY = ("web",)  # TCP web flows only; flags of TCP kept
SECONDS = "seconds"

# format, versions, packer, what the layout keeps
CASES: list[tuple[int, tuple[int, ...], Callable[[dict], bytes], tuple[str, ...]]] = [
    (F.FT_RWSPLIT, (5,), split5, TCP_ONLY),
    (F.FT_RWSPLIT, (3, 4), split34, TCP_ONLY),
    (F.FT_RWSPLIT, (1, 2), split12, (*PLAIN_FLAGS, SECONDS)),
    (F.FT_RWNOTROUTED, (5,), lambda r: split5(r) + S("<H", r["input"]), (*TCP_ONLY, "input")),
    (F.FT_RWNOTROUTED, (3, 4), lambda r: split34(r) + S("<H", r["input"]), (*TCP_ONLY, "input")),
    (
        F.FT_RWNOTROUTED,
        (1, 2),
        lambda r: split12(r) + S("<B", r["input"]),
        (*PLAIN_FLAGS, "input", SECONDS),
    ),
    (
        F.FT_RWROUTED,
        (5,),
        lambda r: (
            tfv(r, tail=False)
            + ports(r)
            + S("<HH", r["input"], r["output"])
            + ips(r, "sip", "dip", "nhip")
        ),
        (*TCP_ONLY, "input", "output", "nhip"),
    ),
    (
        F.FT_RWROUTED,
        (3, 4),
        lambda r: split34(r) + ips(r, "nhip") + S("<HH", r["input"], r["output"]),
        (*TCP_ONLY, "input", "output", "nhip"),
    ),
    (
        F.FT_RWROUTED,
        (1, 2),
        lambda r: (
            ips(r, "sip", "dip", "nhip")
            + ports(r)
            + pef_sbb(r)
            + S("<BBBB", r["proto"], r["flags"], r["input"], r["output"])
        ),
        (*PLAIN_FLAGS, "input", "output", "nhip", SECONDS),
    ),
    (
        F.FT_RWWWW,
        (5,),
        lambda r: tfv(r, tail=False, web=True) + ips(r, "sip", "dip") + S("<H", client(r)),
        WEB_ONLY,
    ),
    (
        F.FT_RWWWW,
        (3, 4),
        lambda r: ips(r, "sip", "dip") + tbp(r, with_state=False, web=True) + S("<H", client(r)),
        WEB_ONLY,
    ),
    (F.FT_RWWWW, (1, 2), www12, (*WEB_ONLY, SECONDS)),
    (F.FT_RWAUGMENTED, (5,), aug5, (*TCP_ONLY, "state", "app")),  # TFP: no flags for non-TCP
    (F.FT_RWAUGMENTED, (4,), aug4, (*STATE, "app")),
    (F.FT_RWAUGMENTED, (1, 2, 3), aug123, (*STATE, "app")),
    (
        F.FT_RWAUGROUTING,
        (5,),
        lambda r: aug5(r) + ips(r, "nhip") + S("<HH", r["input"], r["output"]),
        (*TCP_ONLY, "state", "app", "nhip", "input", "output"),
    ),
    (
        F.FT_RWAUGROUTING,
        (4,),
        lambda r: (
            tfv(r, tail=True)
            + ports(r)
            + S("<HH", r["input"], r["output"])
            + ips(r, "sip", "dip", "nhip")
        ),
        (*STATE, "app", "nhip", "input", "output"),
    ),
    (
        F.FT_RWAUGROUTING,
        (1, 2, 3),
        lambda r: aug123(r) + ips(r, "nhip") + S("<HH", r["input"], r["output"]),
        (*STATE, "app", "nhip", "input", "output"),
    ),
    (
        F.FT_RWAUGSNMPOUT,
        (5,),
        lambda r: aug5(r) + S("<H", r["output"]),
        (*TCP_ONLY, "state", "app", "output"),
    ),
    (F.FT_RWAUGSNMPOUT, (4,), lambda r: aug4(r) + S("<H", r["output"]), (*STATE, "app", "output")),
    (
        F.FT_RWAUGSNMPOUT,
        (1, 2, 3),
        lambda r: aug123(r) + S("<H", r["output"]),
        (*STATE, "app", "output"),
    ),
    (F.FT_RWAUGWEB, (5,), augweb5, (*WEB_ONLY, "state", "app")),
    (
        F.FT_RWAUGWEB,
        (4,),
        lambda r: tfv(r, tail=True, web=True) + ips(r, "sip", "dip") + S("<H", client(r)),
        (*WEB_ONLY, "state", "app"),
    ),
    (
        F.FT_RWAUGWEB,
        (1, 2, 3),
        lambda r: (
            ips(r, "sip", "dip")
            + tbp(r, with_state=True, web=True)
            + S("<HHBB", client(r), r["app"], r["state"], prot_flags(r, with_state=True)[2])
        ),
        (*WEB_ONLY, "state", "app"),
    ),
    (
        F.FT_RWGENERIC,
        (3, 4),
        lambda r: gen34(r) + S("<HHHH", r["stime"] % 1000, r["elapsed"] % 1000, r["app"], 0),
        ("absolute", *STATE, "app", "nhip", "input", "output", "ids"),
    ),
    (F.FT_RWGENERIC, (2,), gen34, ("absolute", *STATE, "nhip", "input", "output", "ids", SECONDS)),
    (
        F.FT_RWGENERIC,
        (1,),
        gen01,
        ("absolute", *PLAIN_FLAGS, "nhip", "input", "output", "sensor", SECONDS),
    ),
    (
        F.FT_RWGENERIC,
        (0,),
        lambda r: gen01(r) + bytes(3),
        ("absolute", *PLAIN_FLAGS, "nhip", "input", "output", "sensor", SECONDS),
    ),
    (
        F.FT_RWFILTER,
        (4, 5),
        filter45,
        ("absolute", *STATE, "app", "nhip", "input", "output", "ids"),
    ),
    (
        F.FT_RWFILTER,
        (3,),
        filter3,
        ("absolute", *PLAIN_FLAGS, "nhip", "input", "output", "ids", SECONDS),
    ),
    (
        F.FT_RWFILTER,
        (2,),
        lambda r: filter12(r, SENSOR),
        ("absolute", *PLAIN_FLAGS, "nhip", "input", "output", "sensor", SECONDS),
    ),
    (
        F.FT_RWFILTER,
        (1,),
        lambda r: filter12(r, SENSOR << 6),
        ("absolute", *PLAIN_FLAGS, "nhip", "input", "output", "sensor", SECONDS),
    ),
]
PARAMS = [(fmt, v, pack, keeps) for fmt, versions, pack, keeps in CASES for v in versions]


def expected_value(r: dict, column: str, keeps: tuple[str, ...]):
    """What the layout gives back for one flow and one batch column."""
    seconds = SECONDS in keeps
    expanded = "state" in keeps and r["proto"] == 6 and r["state"] & 1
    flags_kept = "flags" in keeps or (r["proto"] == 6 and ("tcp_flags" in keeps or "web" in keeps))
    p, pflag = pkts(r)
    packets = p << 6 if pflag else p
    b = bpp(r)
    quotient, remainder = divmod((b & 63) * packets, 64)
    absolute = "absolute" in keeps
    values = {
        "sip": r["sip"],
        "dip": r["dip"],
        "sport": r["sport"],
        "dport": r["dport"],
        "proto": r["proto"],
        "packets": packets,
        "bytes": (b >> 6) * packets + quotient + (remainder >= 32),
        "stime_ms": r["stime"] - r["stime"] % 1000 if seconds else r["stime"],
        "elapsed_ms": r["elapsed"] - r["elapsed"] % 1000 if seconds else r["elapsed"],
        "flags": r["flags"] if flags_kept else 0,
        "init_flags": r["init"] if expanded else 0,
        "rest_flags": r["rest"] if expanded else 0,
        "tcp_state": r["state"] & 0x79 if "state" in keeps else 0,
        "application": r["app"] if "app" in keeps else 0,
        "nhip": r["nhip"] if "nhip" in keeps else "0.0.0.0",
        "input": r["input"] if "input" in keeps else 0,
        "output": r["output"] if "output" in keeps else 0,
        "sensor": SENSOR if not absolute or {"sensor", "ids"} & set(keeps) else 65535,
        "flowtype": FLOWTYPE if not absolute or "ids" in keeps else 255,
    }
    return values[column]


def header_for(fmt: int, version: int, rec_size: int) -> bytes:
    header = SilkHeader(
        fmt,
        version,
        rec_size,
        Compression.NONE,
        entries=(
            HeaderEntry.packedfile(T0, FLOWTYPE, SENSOR),
            HeaderEntry.text(EntryId.INVOCATION, "test"),
        ),
    )
    return encode_header(header)


@pytest.mark.parametrize(
    ("fmt", "version", "pack", "keeps"), PARAMS, ids=[f"{F(f).name}-v{v}" for f, v, _, _ in PARAMS]
)
def test_layout_decodes_what_was_packed(fmt, version, pack, keeps):
    flows = [
        r
        for r in FLOWS
        if "web" not in keeps or (r["proto"] == 6 and (r["sport"] in WEB or r["dport"] in WEB))
    ]
    records = [pack(r) for r in flows]
    assert len(set(map(len, records))) == 1
    data = header_for(fmt, version, len(records[0])) + b"".join(records)
    batch = np.concatenate(list(read_batches(io.BytesIO(data))))
    assert len(batch) == len(flows)
    for column in (
        "sport",
        "dport",
        "proto",
        "packets",
        "bytes",
        "stime_ms",
        "elapsed_ms",
        "flags",
        "init_flags",
        "rest_flags",
        "tcp_state",
        "application",
        "input",
        "output",
        "sensor",
        "flowtype",
    ):
        assert batch[column].tolist() == [expected_value(r, column, keeps) for r in flows], column
    for column in ("sip", "dip", "nhip"):
        assert ip_strings(batch[column], batch["ipv6"]) == [
            expected_value(r, column, keeps) for r in flows
        ], column


def test_ipv6routing_v2_is_v1_without_application():
    v1 = (SILK / "generated" / "v6mix.rw").read_bytes()
    v2 = v1[:14] + b"\x00\x02" + v1[16:]
    first, second = (np.concatenate(list(read_batches(io.BytesIO(d)))) for d in (v1, v2))
    assert first["application"].tolist() == [443, 0, 53, 80, 0]
    assert not second["application"].any()
    second["application"] = first["application"]
    assert (first == second).all()
