"""Whole-column text cells (connectors/silk/text.py) and site names (siteconfig.py)."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from silkwatch.connectors.silk.siteconfig import TWOWAY, load_site_config, parse_site_config
from silkwatch.connectors.silk.text import (
    TableStyle,
    int_cells,
    ip_cells,
    ipv6_cells,
    milli_cells,
    parse_timestamp_format,
    render_table,
    time_cells,
)
from silkwatch.detectors.schema import parse_ips


def test_ipv6_cells_are_glibc_inet_ntop():
    rng = np.random.default_rng(7)
    groups = rng.integers(0, 3, (5000, 8)).astype(">u2")  # many zero runs of every length
    groups[::7, :5] = 0
    groups[::7, 5] = 0xFFFF  # IPv4-mapped
    groups[::11, :6] = 0  # IPv4-compatible
    column = groups.view("V16").reshape(-1)
    expected = [socket.inet_ntop(socket.AF_INET6, bytes(raw)).encode() for raw in column.tolist()]
    assert ipv6_cells(column).tolist() == expected


@pytest.mark.parametrize(
    ("policy", "ip_format", "expected"),
    [
        ("mix", "canonical", [b"10.200.209.131", b"2001:db8::1", b"::ffff:10.0.0.1"]),
        ("force", "canonical", [b"::ffff:10.200.209.131", b"2001:db8::1", b"::ffff:10.0.0.1"]),
        (
            "mix",
            "zero-padded",
            [
                b"010.200.209.131",
                b"2001:0db8:0000:0000:0000:0000:0000:0001",
                b"0000:0000:0000:0000:0000:ffff:0a00:0001",
            ],
        ),
        (
            "mix",
            "decimal",
            [b"180932995", b"42540766411282592856903984951653826561", b"281470849515521"],
        ),
    ],
)
def test_ip_cells_follow_policy_and_format(policy, ip_format, expected):
    column, ipv6 = parse_ips(["10.200.209.131", "2001:db8::1", "::ffff:10.0.0.1"])
    ipv6[2] = True  # an IPv6 record holding a mapped address prints as SiLK does
    assert ip_cells(column, ipv6, policy=policy, ip_format=ip_format).tolist() == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("default", b"2009/02/12T00:00:02.696"),
        ("iso", b"2009-02-12 00:00:02.696"),
        ("m/d/y", b"02/12/2009 00:00:02.696"),
        ("epoch", b"1234396802.696"),
        ("default,no-msec", b"2009/02/12T00:00:02"),
        ("m/d/y,no-msec,utc", b"02/12/2009 00:00:02"),
        ("epoch,no-msec", b"1234396802"),
    ],
)
def test_time_cells(spec, expected):
    style, msec = parse_timestamp_format(spec)
    assert time_cells(np.array([1234396802696]), style, msec=msec).tolist() == [expected]


def test_milli_and_int_cells():
    assert milli_cells(np.array([0, 49, 1799810])).tolist() == [b"0.000", b"0.049", b"1799.810"]
    assert int_cells(np.array([0, 18446744073709551615], np.uint64)).tolist() == [
        b"0",
        b"18446744073709551615",
    ]


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        (TableStyle(), "sPort|   Records|\n   80|         7|\n65535|12345678901|\n"),
        (TableStyle(columns=False), "sPort|Records|\n80|7|\n65535|12345678901|\n"),
        (
            TableStyle(columns=False, separator=b",", final_separator=False),
            "sPort,Records\n80,7\n65535,12345678901\n",
        ),
        (TableStyle(titles=False), "   80|         7|\n65535|12345678901|\n"),
    ],
)
def test_render_table_styles(style, expected):
    ports = int_cells(np.array([80, 65535]))
    records = int_cells(np.array([7, 12345678901]))  # wider than its column: not cut
    assert render_table(["sPort", "Records"], [ports, records], [5, 10], style).decode() == expected


def test_titles_are_cut_to_the_column_width():
    cells = [int_cells(np.array([6]))]
    assert render_table(["protocol"], cells, [3]).decode() == "pro|\n  6|\n"


SITE = """
sensor 0 S0
sensor 1 alpha  "a description"
class all
    type 0 in in
    type 1 out out
end class
class other
    type 5 weird wd
end class
"""


def test_site_config_names_and_unknown_ids():
    site = parse_site_config(SITE)
    assert site.sensor_names(np.array([1, 0, 9, 65535])).tolist() == [b"alpha", b"S0", b"9", b"?"]
    assert site.class_names(np.array([0, 5, 255])).tolist() == [b"all", b"other", b"?"]
    assert site.type_names(np.array([1, 5, 255, 7])).tolist() == [b"out", b"weird", b"255", b"7"]
    assert site.sensor_width == 5


def test_site_config_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "silk.conf"
    path.write_text(SITE)
    monkeypatch.setenv("SILK_CONFIG_FILE", str(path))
    assert load_site_config().sensors == {0: "S0", 1: "alpha"}
    monkeypatch.delenv("SILK_CONFIG_FILE")
    monkeypatch.delenv("SILK_DATA_ROOTDIR", raising=False)
    assert load_site_config() is TWOWAY
    assert TWOWAY.sensor_names(np.array([3, 300])).tolist() == [b"S3", b"S300"]
