"""The SiLK reader against SiLK's own output on genuine files.

Also holds the sample paths and golden-dump parsing the other ``test_silk_*``
modules import.
"""

from __future__ import annotations

import csv
import functools
import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from silkwatch.connectors.silk import Compression, FileFormat, read_batches, read_header
from silkwatch.connectors.silk.layouts import find_layout
from silkwatch.connectors.silk.site import flowtype_id, sensor_id
from silkwatch.connectors.silk.text import (
    FIELDS,
    parse_attributes,
    parse_duration_ms,
    parse_tcp_flags,
    parse_time_ms,
)
from silkwatch.detectors.schema import FLOW_DTYPE, FlowBatch, ip_strings, parse_ip

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SILK = SHARED / "data" / "silk"
GOLDEN = SILK / "golden"

#: the six genuine SiLK 3.17.1 re-encodings of the FCCX hour out-S3_20150617.15
FCCX = sorted((SILK / "fccx").glob("*.dat"))
#: SiLK 3.19.1 rwallformats output with exact counters
FCCX_EXACT = [*FCCX, SILK / "generated" / "fccx-FT_RWAUGROUTING-v5-c1-L.dat"]
#: bytes-per-packet formats: byte counts are rounded
FCCX_BPP = [
    SILK / "generated" / f"fccx-{n}.dat" for n in ("FT_RWAUGMENTED-v4-c1-L", "FT_RWSPLIT-v5-c1-L")
]
FCCX_WEB = [
    SILK / "generated" / f"fccx-{n}.dat" for n in ("FT_RWAUGWEB-v4-c1-B", "FT_RWWWW-v5-c1-L")
]
DOF = sorted((SILK / "dof").glob("*.rw"))

_TITLE_TO_FIELD = {f.name[: f.width]: f.name for f in FIELDS.values()}


@functools.lru_cache(maxsize=2)
def read_all(path: Path) -> FlowBatch:
    """Every record of a file as one batch (cached, cases are grouped by file: do not mutate)."""
    return np.concatenate(list(read_batches(path)))


def parse_rwcut(path: Path) -> tuple[list[str], list[list[str]]]:
    """A golden rwcut dump (table or CSV) → (full field names, rows of stripped cells)."""
    lines = path.read_text().splitlines()
    if path.suffix == ".csv":
        rows = list(csv.reader(lines))
        return rows[0], rows[1:]
    rows = [[cell.strip() for cell in line.split("|")[:-1]] for line in lines]
    return [_TITLE_TO_FIELD[title] for title in rows[0]], rows[1:]


def _icmp_part(batch: FlowBatch, shift: int) -> list:
    icmp = (batch["proto"] == 1) | ((batch["proto"] == 58) & batch["ipv6"])
    part = (batch["dport"] >> shift) & 0xFF
    return [int(p) if i else None for p, i in zip(part, icmp, strict=True)]


def _ip_pairs(batch: FlowBatch, column: str) -> list[tuple[bytes, bool]]:
    return [(bytes(a), bool(v6)) for a, v6 in zip(batch[column], batch["ipv6"], strict=True)]


def golden_columns(names: list[str], rows: list[list[str]]) -> dict[str, list]:
    """The dump's values per field, parsed to what a decoded batch holds."""
    cells = dict(zip(names, zip(*rows, strict=True), strict=True))
    parsers = {
        "sIP": parse_ip,
        "dIP": parse_ip,
        "nhIP": parse_ip,
        "flags": parse_tcp_flags,
        "initialFlags": parse_tcp_flags,
        "sessionFlags": parse_tcp_flags,
        "attributes": parse_attributes,
        "sTime": parse_time_ms,
        "eTime": parse_time_ms,
        "sTime+msec": parse_time_ms,
        "eTime+msec": parse_time_ms,
        "duration": parse_duration_ms,
        "dur+msec": parse_duration_ms,
        "sensor": sensor_id,
        "iType": lambda t: int(t) if t else None,
        "iCode": lambda t: int(t) if t else None,
    }
    out = {
        name: [parsers.get(name, int)(v) for v in values]
        for name, values in cells.items()
        if name not in ("class", "type")
    }
    if "type" in cells:
        out["flowtype"] = [
            flowtype_id(c, t) for c, t in zip(cells["class"], cells["type"], strict=True)
        ]
    return out


def batch_columns(batch: FlowBatch, names: list[str]) -> dict[str, list]:
    """The same view of a decoded batch, for field-by-field comparison."""
    stime = batch["stime_ms"].astype(np.int64)
    etime = (stime + batch["elapsed_ms"]).tolist()
    derived = {
        "sIP": lambda: _ip_pairs(batch, "sip"),
        "dIP": lambda: _ip_pairs(batch, "dip"),
        "nhIP": lambda: _ip_pairs(batch, "nhip"),
        "sPort": lambda: batch["sport"].tolist(),
        "dPort": lambda: batch["dport"].tolist(),
        "protocol": lambda: batch["proto"].tolist(),
        "packets": lambda: batch["packets"].tolist(),
        "bytes": lambda: batch["bytes"].tolist(),
        "flags": lambda: batch["flags"].tolist(),
        "initialFlags": lambda: batch["init_flags"].tolist(),
        "sessionFlags": lambda: batch["rest_flags"].tolist(),
        "attributes": lambda: (batch["tcp_state"] & 0x78).tolist(),
        "sTime": stime.tolist,
        "sTime+msec": stime.tolist,
        "eTime": lambda: etime,
        "eTime+msec": lambda: etime,
        "duration": lambda: batch["elapsed_ms"].tolist(),
        "dur+msec": lambda: batch["elapsed_ms"].tolist(),
        "sensor": lambda: batch["sensor"].tolist(),
        "in": lambda: batch["input"].tolist(),
        "out": lambda: batch["output"].tolist(),
        "application": lambda: batch["application"].tolist(),
        "iType": lambda: _icmp_part(batch, 8),
        "iCode": lambda: _icmp_part(batch, 0),
        "flowtype": lambda: batch["flowtype"].tolist(),
    }
    return {name: derived[name]() for name in names}


# --------------------------------------------------------------------------- golden dumps

GOLDEN_CASES = [
    *[
        (f"fccx-out-S3-20150617.15-{dump}", p, rows)
        for p in FCCX_EXACT
        for dump, rows in (
            ("head25.rwcut.txt", slice(0, 25)),
            ("head25-epoch.csv", slice(0, 25)),
            ("tail5.rwcut.txt", slice(-5, None)),
        )
    ],
    (
        "fccx-augweb-head10.rwcut.txt",
        SILK / "generated" / "fccx-FT_RWAUGWEB-v4-c1-B.dat",
        slice(0, 10),
    ),
    *[("dof.rwcut.txt", p, slice(None)) for p in DOF],
    ("v6mix.rwcut.txt", SILK / "generated" / "v6mix.rw", slice(None)),
    ("v6mix.rwcut.txt", SILK / "generated" / "handmade.rw", slice(None)),
    *[
        (f"{p.stem}.rwcut.txt", p, slice(None))
        for p in sorted((SILK / "generated").glob("v6mix-*.dat"))
    ],
]


@pytest.mark.parametrize(
    ("dump", "source", "rows"),
    GOLDEN_CASES,
    ids=[f"{d}:{s.name}" for d, s, _ in GOLDEN_CASES],
)
def test_every_record_equals_rwcut_field_by_field(dump, source, rows):
    names, cells = parse_rwcut(GOLDEN / dump)
    expected = golden_columns(names, cells)
    decoded = read_all(source)[rows]
    assert len(decoded) == len(cells)
    actual = batch_columns(decoded, list(expected))
    for name in expected:
        assert actual[name] == expected[name], name


def test_the_golden_cases_cover_every_sample_file():
    covered = {source for _, source, _ in GOLDEN_CASES} | set(FCCX_BPP) | set(FCCX_WEB)
    assert covered == set((SILK / "fccx").glob("*")) | set((SILK / "dof").glob("*")) | set(
        p for p in (SILK / "generated").glob("*") if p.suffix in (".dat", ".rw")
    )


@pytest.mark.parametrize("source", sorted({s for _, s, _ in GOLDEN_CASES}), ids=lambda p: p.name)
@pytest.mark.parametrize("columns", [("sip", "bytes"), ("stime_ms", "dport"), ("nhip", "flags")])
def test_decoding_some_columns_gives_exactly_those_of_a_full_decode(source, columns):
    full = read_all(source)
    some = np.concatenate(list(read_batches(source, columns=frozenset(columns))))
    for name in columns:
        assert some[name].tobytes() == full[name].tobytes(), name
    assert some["ipv6"].tolist() == full["ipv6"].tolist()


def test_columns_not_asked_for_keep_their_defaults():
    path = SILK / "fccx" / "FT_RWIPV6ROUTING-v1-c1-L.dat"
    some = np.concatenate(list(read_batches(path, columns=frozenset({"sip", "bytes"}))))
    assert int(some["bytes"].sum()) == 422_463_836  # the README's byte total
    assert not some["packets"].any() and not some["elapsed_ms"].any()
    assert set(ip_strings(some["dip"], some["ipv6"])) == {"0.0.0.0"}


COUNTED = frozenset({"stime_ms", "elapsed_ms", "bytes", "packets"})  # what count reads


@pytest.mark.parametrize("source", sorted({s for _, s, _ in GOLDEN_CASES}), ids=lambda p: p.name)
def test_in_place_batches_hold_the_decoded_values(source):
    full = read_all(source)
    batches = list(read_batches(source, rows=1000, columns=COUNTED, in_place=True))
    some = np.concatenate(batches)
    for name in COUNTED:
        assert some[name].tolist() == full[name].tolist(), name
    header = read_header(source)
    layout = find_layout(header.file_format, header.rec_version)
    if layout.in_place(header.big_endian, COUNTED) is not None:  # views of the records
        view = batches[0]
        assert set(view.dtype.names) == COUNTED and view.dtype.itemsize == header.rec_size
        assert not view.flags.writeable and not view.flags.owndata
    else:
        assert some.dtype == FLOW_DTYPE


def test_in_place_reads_the_formats_silk_writes_by_default():
    """rwIPv6Routing (v1, v3) and rwGeneric v5 in this machine's byte order, any compression;
    not the bit-packed, hour-packed or other-endian ones."""
    found = {}
    for source in sorted({s for _, s, _ in GOLDEN_CASES}):
        header = read_header(source)
        layout = find_layout(header.file_format, header.rec_version)
        found[source.name] = layout.in_place(header.big_endian, COUNTED) is not None
    assert sorted(name for name, yes in found.items() if yes) == [
        "FT_RWGENERIC_DOF_c0.rw",
        "FT_RWGENERIC_DOF_c1.rw",
        "FT_RWGENERIC_DOF_c2.rw",
        "FT_RWGENERIC_DOF_c3.rw",
        "FT_RWIPV6ROUTING-v1-c1-L.dat",
        "FT_RWIPV6ROUTING-v3-c3-L.dat",
        "handmade.rw",
        "v6mix.rw",
    ]
    assert find_layout(FileFormat.FT_RWGENERIC, 5).in_place(False, COUNTED) is not None
    assert find_layout(FileFormat.FT_RWGENERIC, 5).in_place(False, COUNTED | {"sport"}) is None


# --------------------------------------------------------------------------- README invariants

RECORD_0 = ("192.168.40.20", "10.0.40.54", 88, 60339, 6, 4, 373, 30, 1434553200013, 6)
RECORD_1 = ("192.168.20.58", "128.63.2.53", 29070, 53, 17, 1, 74, 0, 1434553200025, 0)
LAST = ("192.168.60.254", "10.0.40.74", 56718, 9907, 17, 4233, 4915612, 0, 1434556448954, 1799810)


def _row(batch: FlowBatch, i: int) -> tuple:
    """(sIP, dIP, sPort, dPort, proto, packets, bytes, flags, sTime ms, duration ms) of record i."""
    one = batch[[i]]
    columns = ("sport", "dport", "proto", "packets", "bytes", "flags", "stime_ms", "elapsed_ms")
    return (
        *ip_strings(one["sip"], one["ipv6"]),
        *ip_strings(one["dip"], one["ipv6"]),
        *(int(one[c][0]) for c in columns),
    )


@pytest.mark.parametrize("path", FCCX_EXACT + FCCX_BPP, ids=lambda p: p.name)
def test_fccx_hour_invariants(path):
    b = read_all(path)
    assert len(b) == 245_340
    assert set(b["sensor"].tolist()) == {3} and set(b["flowtype"].tolist()) == {1}
    assert not b["ipv6"].any()
    for column in ("tcp_state", "init_flags", "rest_flags", "application", "input", "output"):
        assert not b[column].any(), column
    assert set(b["nhip"].tolist()) == {bytes(10) + b"\xff\xff" + bytes(4)}
    assert (int(b["stime_ms"].min()), int(b["stime_ms"].max())) == (1434553200013, 1434556799850)
    assert int(b["elapsed_ms"].max()) == 1_800_184
    protocols, counts = np.unique(b["proto"], return_counts=True)
    assert dict(zip(protocols.tolist(), counts.tolist(), strict=True)) == {
        1: 1588,
        6: 36_923,
        17: 206_825,
        89: 4,
    }
    assert int(b["packets"].sum()) == 2_196_699
    assert _row(b, 0) == RECORD_0
    assert _row(b, 1) == RECORD_1
    exact = path in FCCX_EXACT
    assert int(b["bytes"].sum()) == (422_463_836 if exact else 422_453_378)
    assert _row(b, -1) == (LAST if exact else (*LAST[:6], 4_915_571, *LAST[7:]))


@pytest.mark.parametrize("path", FCCX_WEB, ids=lambda p: p.name)
def test_web_formats_keep_the_tcp_records_with_server_port_lost(path):
    b = read_all(path)
    assert (len(b), int(b["bytes"].sum()), int(b["packets"].sum())) == (
        36_923,
        383_487_436,
        1_933_572,
    )
    assert set(b["proto"].tolist()) == {6} and not b["dport"].any()
    assert _row(b, -1) == (
        "192.168.40.100",
        "10.0.50.12",
        8005,
        0,
        6,
        1154,
        506_480,
        24,
        1434555704533,
        1798608,
    )


@pytest.mark.parametrize("path", DOF, ids=lambda p: p.name)
def test_rwptoflow_files(path):
    b = read_all(path)
    assert (len(b), int(b["bytes"].sum()), int(b["packets"].sum())) == (1434, 564_310, 1434)
    assert set(b["sensor"].tolist()) == {65535} and set(b["flowtype"].tolist()) == {0}


# --------------------------------------------------------------------------- headers

HEADERS = [
    # file, format, version, big endian, compression, silk version, rec size, header length
    (
        "dof/FT_RWGENERIC_DOF_c0.rw",
        FileFormat.FT_RWIPV6ROUTING,
        1,
        False,
        Compression.LZO1X,
        3019001,
        88,
        88,
    ),
    (
        "dof/FT_RWGENERIC_DOF_c2.rw",
        FileFormat.FT_RWIPV6ROUTING,
        1,
        False,
        Compression.SNAPPY,
        3019001,
        88,
        176,
    ),
    (
        "fccx/FT_RWGENERIC-v5-c1-B.dat",
        FileFormat.FT_RWGENERIC,
        5,
        True,
        Compression.ZLIB,
        3017001,
        52,
        156,
    ),
    (
        "fccx/FT_RWIPV6-v2-c1-L.dat",
        FileFormat.FT_RWIPV6,
        2,
        False,
        Compression.ZLIB,
        3017001,
        56,
        224,
    ),
    (
        "fccx/FT_RWIPV6ROUTING-v3-c3-L.dat",
        FileFormat.FT_RWIPV6ROUTING,
        3,
        False,
        Compression.SNAPPY,
        3017001,
        100,
        300,
    ),
    (
        "generated/fccx-FT_RWAUGWEB-v4-c1-B.dat",
        FileFormat.FT_RWAUGWEB,
        4,
        True,
        Compression.ZLIB,
        3019001,
        26,
        78,
    ),
    (
        "generated/handmade.rw",
        FileFormat.FT_RWIPV6ROUTING,
        1,
        False,
        Compression.NONE,
        3019001,
        88,
        88,
    ),
]


@pytest.mark.parametrize("row", HEADERS, ids=[h[0] for h in HEADERS])
def test_header_fields(row):
    name, fmt, version, big, compression, silk_version, rec_size, length = row
    h = read_header(SILK / name)
    assert (h.file_format, h.rec_version, h.big_endian, h.compression) == (
        fmt,
        version,
        big,
        compression,
    )
    assert (h.silk_version, h.rec_size, h.length, h.file_version) == (
        silk_version,
        rec_size,
        length,
        16,
    )


def test_header_entries_of_an_rwallformats_file():
    h = read_header(SILK / "fccx" / "FT_RWGENERIC-v5-c1-B.dat")
    assert [e.entry_id for e in h.entries] == [4, 1, 2]
    assert h.probename == "DUMMY_PROBE"
    assert (h.packedfile.start_ms, h.packedfile.flowtype, h.packedfile.sensor) == (
        1434553200000,
        1,
        3,
    )
    assert h.invocations == [
        "rwallformats --site-config-file=silk.conf FT_RWIPV6ROUTING-v1-c1-B.dat"
    ]
    assert h.annotations == [] and h.byte_order == "big" and h.format_name == "FT_RWGENERIC"


def test_header_of_a_file_without_packedfile():
    h = read_header(SILK / "dof" / "FT_RWGENERIC_DOF_c1.rw")
    assert h.packedfile is None and h.probename is None
    assert h.invocations == ["rwptoflow --compression-method=lzo dof-short-capture.pcapng"]


# --------------------------------------------------------------------------- sources and batching


def test_batches_are_bounded_and_split_equals_whole():
    path = SILK / "fccx" / "FT_RWIPV6ROUTING-v1-c1-L.dat"
    sizes = [len(b) for b in read_batches(path, rows=1000)]
    assert sizes == [1000] * 245 + [340]
    assert (np.concatenate(list(read_batches(path, rows=1000))) == read_all(path)).all()


def test_read_batches_is_lazy():
    batches = read_batches(SILK / "fccx" / "FT_RWIPV6ROUTING-v1-c1-L.dat", rows=10)
    assert len(next(batches)) == 10
    batches.close()


def test_file_object_and_gzip_sources(tmp_path):
    path = SILK / "fccx" / "FT_RWIPV6-v1-c1-B.dat"
    expected = read_all(path)
    zipped = tmp_path / "hour.rw.gz"
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    assert (read_all(zipped) == expected).all()
    with open(path, "rb") as stream:
        assert (np.concatenate(list(read_batches(stream))) == expected).all()


def test_stdin_pipe(tmp_path):
    script = (
        "from silkwatch.connectors.silk import read_batches; print(sum(map(len, "
        "read_batches('-'))))"
    )
    data = (SILK / "fccx" / "FT_RWIPV6ROUTING-v1-c2-B.dat").read_bytes()
    done = subprocess.run(
        [sys.executable, "-c", script], input=data, capture_output=True, check=True
    )
    assert done.stdout.decode().strip() == "245340"
