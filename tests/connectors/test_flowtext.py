"""Text flow importers on the real sample files: exact counts, exact first records.

Expected values were read off the files themselves (the source line is quoted
beside each row), and totals were checked with awk: bytes and packets of every
flow file are conserved when bidirectional records are split.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
import pytest

from silkwatch.connectors.flows import read_flows
from silkwatch.connectors.flowtext import (
    FlowTextError,
    ReadSummary,
    sniff_format,
    stop_on_malformed,
)
from silkwatch.connectors.flowtext.policy import allow_bad_lines
from silkwatch.detectors.schema import ip_strings

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
REAL = SHARED / "data" / "real" / "flows"
SILK = SHARED / "data" / "silk"
GOLDEN = SILK / "golden"

FIELDS = ("sport", "dport", "proto", "packets", "bytes", "stime_ms", "elapsed_ms", "flags")


def read_all(path: Path | str, **kwargs) -> tuple[np.ndarray, ReadSummary]:
    summary = ReadSummary(str(path), "?")
    batches = list(read_flows(path, summary=summary, **kwargs))
    return (np.concatenate(batches) if batches else np.zeros(0)), summary


def first(batch: np.ndarray) -> tuple:
    row = batch[:1]
    return (
        ip_strings(row["sip"], row["ipv6"])[0],
        ip_strings(row["dip"], row["ipv6"])[0],
        *row[list(FIELDS)].tolist()[0],
    )


# (file, format, source records, flows, bytes, packets, first flow)
REAL_FILES = [
    # 2013/10/21 13:22:59.340835,3596.604980,tcp,147.32.83.53,60686,->,147.32.80.88,5222,PA_PA,
    #   ..,448,49634
    # no SrcBytes: one flow per record with the totals; 18 ARP records are not flows
    (
        "ctu-normal-2013-10-21_capture-1.binetflow",
        "argus",
        2380,
        2380,
        98_502_819,
        98_956,
        ("147.32.83.53", "147.32.80.88", 60686, 5222, 6, 448, 49634, 1382361779340, 3596605, 24),
    ),
    # 2013/12/17 22:09:19.500617,1281.885498,tcp,81.95.182.31,40890,..,10.0.0.46,44850,PA_PA,0,0,
    #   124890,148005382,146054307: forward carries SrcBytes, packets split in proportion
    (
        "ctu-normal-7-2013-13-07.binetflow",
        "argus",
        9797,
        12177,
        409_655_375,
        471_237,
        (
            "81.95.182.31",
            "10.0.0.46",
            40890,
            44850,
            6,
            123244,
            146054307,
            1387318159500,
            1281885,
            24,
        ),
    ),
    # nfdump -o json: 2018-01-12T15:37:30.942, 147.32.80.119:52324 -> .82.62:902, SYN, 1 pkt 60 B
    (
        "slips-test1-portscan.nfdump",
        "nfcapd",
        4593,
        4593,
        241_025,
        4_652,
        ("147.32.80.119", "147.32.82.62", 52324, 902, 6, 1, 60, 1515771450942, 0, 2),
    ),
    # 19.981745 .. fd2d:..:aec8 56464 fd2d:ab8c:225::1 53 udp dns 0.136721 34 50 SF .. 1 82 1 98
    (
        "stratosphere-001-njrat-labeled-conn.log",
        "zeek",
        992,
        1431,
        1_085_168,
        3_225,
        (
            "fd2d:ab8c:225:0:81d3:fd3e:7f62:aec8",
            "fd2d:ab8c:225::1",
            56464,
            53,
            17,
            1,
            82,
            19981,
            137,
            0,
        ),
    ),
    # 1655071198.444458 .. 147.32.81.167 62771 40.74.108.123 443 tcp ssl 1.135424 .. ShADdaFf
    #   14 1016
    (
        "stratosphere-008-mixed-conn.log.labeled",
        "zeek",
        5663,
        7154,
        17_020_653,
        56_463,
        ("147.32.81.167", "40.74.108.123", 62771, 443, 6, 14, 1016, 1655071198444, 1135, 0x13),
    ),
    # 1655157610.743948 .. 167.94.146.67 27620 147.32.83.234 2052 tcp - 0.000001 .. S0 .. S 2 88 0 0
    (
        "stratosphere-010-mixed-conn.log.labeled",
        "zeek",
        5347,
        7269,
        1_176_752_989,
        2_189_856,
        ("167.94.146.67", "147.32.83.234", 27620, 2052, 6, 2, 88, 1655157610743, 0, 2),
    ),
    # 1655935176.726357 .. 195.169.125.251 8 147.32.83.161 0 icmp: echo request, dPort 8*256+0
    (
        "stratosphere-012-mixed-conn.log.labeled",
        "zeek",
        4740,
        6280,
        251_317_526,
        346_246,
        ("195.169.125.251", "147.32.83.161", 0, 2048, 1, 2, 64, 1655935176726, 0, 0),
    ),
]


@pytest.mark.parametrize(
    ("name", "fmt", "records", "flows", "bytes_", "packets", "head"),
    REAL_FILES,
    ids=[row[0] for row in REAL_FILES],
)
def test_real_flow_files(name, fmt, records, flows, bytes_, packets, head):
    batch, summary = read_all(REAL / name)
    assert summary.format == fmt
    assert (summary.records, summary.flows, len(batch)) == (records, flows, flows)
    assert (summary.skipped, int(batch["bytes"].sum()), int(batch["packets"].sum())) == (
        0,
        bytes_,
        packets,
    )
    assert first(batch) == head


def test_zeek_reverse_flow_follows_its_record():
    # 008 line 9: resp side 40.74.108.123:443 sent 16 packets, 1226 IP bytes; history h, a, f
    batch, _ = read_all(REAL / "stratosphere-008-mixed-conn.log.labeled")
    assert first(batch[1:]) == (
        "40.74.108.123",
        "147.32.81.167",
        443,
        62771,
        6,
        16,
        1226,
        1655071198444,
        1135,
        0x13,
    )


def test_argus_skips_arp_but_counts_it():
    _, summary = read_all(REAL / "ctu-normal-2013-10-21_capture-1.binetflow")
    assert (summary.lines, summary.non_ip, summary.skipped) == (2398, 18, 0)


def test_argus_icmp_type_code_and_reverse_bytes():
    # 2013/12/17 22:09:19.528451,483.502747,icmp,209.85.251.178,0x000b,->,10.0.0.46,0x0000,TXD,..,
    #   479,87178,87178: time exceeded (type 11, code 0), no reverse flow (SrcBytes == TotBytes)
    batch, _ = read_all(REAL / "ctu-normal-7-2013-13-07.binetflow")
    assert first(batch[4:]) == (
        "209.85.251.178",
        "10.0.0.46",
        0,
        11 * 256,
        1,
        479,
        87178,
        1387318159528,
        483503,
        0,
    )


# golden rwcut dumps: (file, flows, first record incl. sensor, flowtype, tcp_state)
GOLDEN_FILES = [
    (
        "dof.rwcut.txt",
        1434,
        ("10.254.157.208", "74.125.28.139", 60268, 443, 6, 1, 40, 1428995965332, 0, 17),
        (65535, 0, 0),
    ),
    (
        "fccx-augweb-head10.rwcut.txt",
        10,
        ("192.168.40.20", "10.0.40.54", 88, 0, 6, 4, 373, 1434553200013, 6, 30),
        (3, 1, 0),
    ),
    (
        "fccx-out-S3-20150617.15-head25.rwcut.txt",
        25,
        ("192.168.40.20", "10.0.40.54", 88, 60339, 6, 4, 373, 1434553200013, 6, 30),
        (3, 1, 0),
    ),
    (
        "fccx-out-S3-20150617.15-head25-epoch.csv",
        25,
        ("192.168.40.20", "10.0.40.54", 88, 60339, 6, 4, 373, 1434553200013, 6, 30),
        (3, 1, 0),
    ),
    (
        "fccx-out-S3-20150617.15-tail5.rwcut.txt",
        5,
        ("192.168.40.100", "10.0.50.12", 8005, 3093, 6, 1154, 506481, 1434555704533, 1798608, 24),
        (3, 1, 0),
    ),
    # 2001:db8::1 → 2001:db8::2 FS PA, initial S, session F PA, attribute F (0x08) + EXPANDED
    (
        "v6mix.rwcut.txt",
        5,
        ("2001:db8::1", "2001:db8::2", 51515, 443, 6, 12, 4800, 1434553262345, 12345, 27),
        (0, 3, 0x09),
    ),
    (
        "v6mix-FT_RWIPV6-v2-c0-B.rwcut.txt",
        5,
        ("2001:db8::1", "2001:db8::2", 51515, 443, 6, 12, 4800, 1434553262345, 12345, 27),
        (0, 3, 0x09),
    ),
    (
        "v6mix-FT_RWIPV6ROUTING-v3-c1-B.rwcut.txt",
        5,
        ("2001:db8::1", "2001:db8::2", 51515, 443, 6, 12, 4800, 1434553262345, 12345, 27),
        (0, 3, 0x09),
    ),
    # 10.0.0.5 → 192.0.2.9 ICMP type 3 code 3 (dPort 771), attribute T (0x20)
    (
        "v6mix-FT_RWAUGMENTED-v4-c0-L.rwcut.txt",
        4,
        ("10.0.0.5", "192.0.2.9", 0, 771, 1, 3, 252, 1434553320001, 1500, 0),
        (0, 3, 0x20),
    ),
    (
        "v6mix-FT_RWAUGROUTING-v5-c0-L.rwcut.txt",
        4,
        ("10.0.0.5", "192.0.2.9", 0, 771, 1, 3, 252, 1434553320001, 1500, 0),
        (0, 3, 0x20),
    ),
    (
        "v6mix-FT_RWSPLIT-v5-c0-L.rwcut.txt",
        4,
        ("10.0.0.5", "192.0.2.9", 0, 771, 1, 3, 252, 1434553320001, 1500, 0),
        (0, 3, 0),
    ),
    # 192.0.2.10:80 → 10.0.0.7 2,000,000 packets 1.9 GB, initial S, session FS A, attribute C
    (
        "v6mix-FT_RWAUGWEB-v5-c0-B.rwcut.txt",
        2,
        ("192.0.2.10", "10.0.0.7", 80, 33333, 6, 2000000, 1900000000, 1434553800000, 1799999, 19),
        (0, 3, 0x41),
    ),
]


@pytest.mark.parametrize(
    ("name", "flows", "head", "site"), GOLDEN_FILES, ids=[row[0] for row in GOLDEN_FILES]
)
def test_golden_rwcut_dumps(name, flows, head, site):
    batch, summary = read_all(GOLDEN / name)
    assert (summary.format, len(batch), summary.skipped) == ("rwcut", flows, 0)
    assert first(batch) == head
    assert batch[["sensor", "flowtype", "tcp_state"]][0].tolist() == site


def test_dof_totals_match_silk():
    # silk/README.md: dof/FT_RWGENERIC_DOF_c0.rw sum(bytes)=564310, sum(packets)=1434
    batch, _ = read_all(GOLDEN / "dof.rwcut.txt")
    assert (int(batch["bytes"].sum()), int(batch["packets"].sum())) == (564_310, 1_434)


FCCX = "fccx/FT_RWIPV6ROUTING-v1-c1-L.dat"
BASIC = ["sip", "dip", "ipv6", "sport", "dport", "proto", "packets", "bytes", "flags"]
BASIC += ["stime_ms", "elapsed_ms", "sensor", "flowtype"]
ALL_FIELDS = [*BASIC, "input", "output", "nhip", "init_flags", "rest_flags", "tcp_state"]
ALL_FIELDS += ["application"]
V6MIX = [
    f"v6mix-{fmt}"
    for fmt in (
        "FT_RWAUGMENTED-v4-c0-L",
        "FT_RWAUGROUTING-v5-c0-L",
        "FT_RWAUGWEB-v5-c0-B",
        "FT_RWIPV6-v2-c0-B",
        "FT_RWIPV6ROUTING-v3-c1-B",
        "FT_RWSPLIT-v5-c0-L",
    )
]
# (golden dump, SiLK file it was cut from, which of its records, fields the dump shows)
GOLDEN_SOURCES = [
    ("dof.rwcut.txt", "dof/FT_RWGENERIC_DOF_c0.rw", slice(None), BASIC),
    ("fccx-out-S3-20150617.15-head25.rwcut.txt", FCCX, slice(0, 25), BASIC),
    ("fccx-out-S3-20150617.15-head25-epoch.csv", FCCX, slice(0, 25), ALL_FIELDS),
    ("fccx-out-S3-20150617.15-tail5.rwcut.txt", FCCX, slice(-5, None), BASIC),
    ("fccx-augweb-head10.rwcut.txt", "generated/fccx-FT_RWAUGWEB-v4-c1-B.dat", slice(0, 10), BASIC),
    ("v6mix.rwcut.txt", "generated/v6mix.rw", slice(None), ALL_FIELDS),
    *[(f"{name}.rwcut.txt", f"generated/{name}.dat", slice(None), ALL_FIELDS) for name in V6MIX],
]


@functools.cache
def silk_records(source: str) -> np.ndarray:
    """A SiLK file read once per test session (the FCCX hour serves three dumps)."""
    from silkwatch.connectors.silk import read_batches

    return np.concatenate(list(read_batches(SILK / source)))


@pytest.mark.parametrize(
    ("dump", "source", "rows", "fields"), GOLDEN_SOURCES, ids=[row[0] for row in GOLDEN_SOURCES]
)
def test_golden_dump_equals_silk_binary(dump, source, rows, fields):
    pytest.importorskip("silkwatch.connectors.silk", reason="the SiLK binary reader is not in yet")
    binary = silk_records(source)[rows]
    text, _ = read_all(GOLDEN / dump)
    assert len(text) == len(binary)
    for field in fields:
        assert text[field].tolist() == binary[field].tolist(), field


SNIFFED = [
    *[(REAL / row[0], row[1]) for row in REAL_FILES],
    *[(GOLDEN / row[0], "rwcut") for row in GOLDEN_FILES],
]


@pytest.mark.parametrize(("path", "fmt"), SNIFFED, ids=[p.name for p, _ in SNIFFED])
def test_sniffing_picks_the_format(path, fmt):
    if fmt == "nfcapd":
        assert path.read_bytes()[:2] == b"\x0c\xa5"
        return
    head = path.read_text(errors="replace").splitlines()[:5]
    assert sniff_format(head) == fmt


def test_nfdump_csv_text_to_the_second(tmp_path):
    nfdump = pytest.importorskip("shutil").which("nfdump")
    if nfdump is None:
        pytest.skip("nfdump is not installed (apt-get install -y nfdump)")
    import subprocess

    csv = tmp_path / "portscan.csv"
    with csv.open("w") as out:
        subprocess.run(
            [nfdump, "-r", str(REAL / "slips-test1-portscan.nfdump"), "-o", "csv"],
            stdout=out,
            check=True,
            env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
        )
    batch, summary = read_all(csv)
    # -o csv prints whole seconds and a "Summary" footer that is not data
    assert (summary.format, summary.flows, summary.skipped) == ("nfdump", 4593, 0)
    assert first(batch) == (
        "147.32.80.119",
        "147.32.82.62",
        52324,
        902,
        6,
        1,
        60,
        1515771450000,
        0,
        2,
    )
    assert int(batch["bytes"].sum()) == 241_025


ZEEK = REAL / "stratosphere-008-mixed-conn.log.labeled"


def corrupted_zeek(tmp_path: Path) -> Path:
    """The first 12 lines of the 008 log with line 10 (bytes) and 11 (fields) broken."""
    lines = ZEEK.read_text().splitlines(keepends=True)[:12]
    fields = lines[9].split("\t")
    fields[17] = "x"  # orig_ip_bytes
    lines[9] = "\t".join(fields)
    lines[10] = "\t".join(lines[10].split("\t")[:5]) + "\n"
    path = tmp_path / "bad-conn.log"
    path.write_text("".join(lines))
    return path


def test_malformed_lines_are_counted_with_their_line_numbers(tmp_path, capsys):
    batch, summary = read_all(corrupted_zeek(tmp_path), on_error=allow_bad_lines(2))
    assert (summary.lines, summary.records, summary.skipped) == (4, 2, 2)
    assert [(e.line, e.reason) for e in summary.errors] == [(10, "malformed_line")] * 1 + [
        (11, "malformed_line")
    ]
    assert "line 11: 5 fields, expected 23" in str(summary.errors[1])
    assert first(batch)[:2] == ("147.32.81.167", "40.74.108.123")
    # the count is printed whatever the log level
    assert capsys.readouterr().err.endswith("bad-conn.log: skipped 2 malformed lines (zeek)\n")


def test_strict_policy_stops_at_the_first_bad_line(tmp_path):
    path = corrupted_zeek(tmp_path)
    for policy in ({}, {"on_error": stop_on_malformed}):  # strict is the default
        with pytest.raises(FlowTextError, match=r"bad-conn.log line 10: "):
            read_all(path, **policy)


def test_skip_bad_lines_allows_that_many_then_stops(tmp_path):
    path = corrupted_zeek(tmp_path)
    with pytest.raises(FlowTextError, match=r"bad-conn.log line 11: 5 fields, expected 23"):
        read_all(path, on_error=allow_bad_lines(1))


def test_unknown_text_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello world\n")
    with pytest.raises(FlowTextError, match=r"notes.txt line 1: not a flow format"):
        read_all(path)


def test_gzipped_text_and_forced_format(tmp_path):
    import gzip

    packed = tmp_path / "conn.log.gz"
    packed.write_bytes(gzip.compress(ZEEK.read_bytes()))
    batch, summary = read_all(packed, format="zeek", rows=1000)
    assert (summary.format, len(batch)) == ("zeek", 7154)


def test_batches_never_exceed_rows():
    # 500 records make up to 1,000 flows: the chunk is cut into 500 + the rest
    sizes = [len(b) for b in read_flows(REAL / "stratosphere-001-njrat-labeled-conn.log", rows=500)]
    assert sizes == [500, 270, 500, 161]


def test_stdin_dash(monkeypatch):
    data = (GOLDEN / "fccx-out-S3-20150617.15-tail5.rwcut.txt").read_bytes()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
    batch, summary = read_all("-")
    assert (summary.format, len(batch)) == ("rwcut", 5)


def test_read_flows_sniffs_silk_binary_and_delegates():
    pytest.importorskip("silkwatch.connectors.silk", reason="the SiLK binary reader is not in yet")
    binary = np.concatenate(list(read_flows(SILK / "dof" / "FT_RWGENERIC_DOF_c3.rw", rows=1000)))
    text, _ = read_all(GOLDEN / "dof.rwcut.txt")
    assert len(binary) == 1434
    assert binary[BASIC].tolist() == text[BASIC].tolist()


ARGUS_HEADER = (
    "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,TotPkts,TotBytes,SrcBytes\n"
)


@pytest.mark.parametrize(
    ("packets", "total", "source", "expected"),
    [
        # (forward packets, bytes), (reverse packets, bytes) or None
        (10, 1000, 1000, [(10, 1000)]),  # nothing came back: no reverse flow
        (10, 1000, 250, [(2, 250), (8, 750)]),  # packets follow the byte share, rounded
        (10, 1000, 1, [(1, 1), (9, 999)]),  # a side that sent bytes keeps one packet
        (2, 1000, 999, [(1, 999), (1, 1)]),
        (1, 100, 60, [(1, 100)]),  # one packet cannot go both ways: bytes stay forward
        (3, 0, 0, [(3, 0)]),
    ],
)
def test_argus_split_conserves_packets_and_bytes(tmp_path, packets, total, source, expected):
    path = tmp_path / "one.binetflow"
    path.write_text(
        ARGUS_HEADER
        + f"2013/12/17 22:09:19.5,1.0,tcp,10.0.0.1,1234,   ->,10.0.0.2,80,S_SA,{packets},"
        f"{total},{source}\n"
    )
    batch, _ = read_all(path)
    assert list(zip(batch["packets"].tolist(), batch["bytes"].tolist(), strict=True)) == expected


def test_one_bad_line_in_a_big_chunk_costs_only_that_record(tmp_path):
    lines = ZEEK.read_text().splitlines(keepends=True)
    fields = lines[2999].split("\t")  # line 3000
    reply_flows = int(fields[18]) > 0  # resp_pkts
    fields[4] = "300.1.2.3"  # id.resp_h
    lines[2999] = "\t".join(fields)
    path = tmp_path / "one-bad.log"
    path.write_text("".join(lines))
    batch, summary = read_all(path, on_error=allow_bad_lines(1))
    assert [(e.line, e.detail) for e in summary.errors] == [(3000, "IPv4 octet out of range")]
    assert (summary.records, summary.skipped) == (5662, 1)
    assert len(batch) == 7154 - 1 - reply_flows


def test_empty_input_holds_no_flows(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("")
    assert list(read_flows(path)) == []
