"""rwfilter's partitioning switches against their meaning in SiLK's rwfilter(1) manual."""

from __future__ import annotations

import numpy as np
import pytest

from silkwatch.detectors.flowfilter import (
    FilterArgumentError,
    high_mask_table,
    integer_table,
    parse_switch,
    parse_time_window,
    parse_wildcard,
    partition,
    pass_limit,
)
from silkwatch.detectors.schema import make_batch

T0 = 1_234_396_800_000  # 2009/02/12T00:00:00 UTC

FLOWS = make_batch(
    sip=["10.1.2.1", "10.1.9.5", "10.1.2.6", "192.168.1.1", "2001:db8::5", "::ffff:10.1.3.3"],
    dip=["10.0.0.1", "8.8.8.8", "172.16.0.1", "10.0.0.9", "2001:db8::1", "10.0.0.2"],
    nhip=["0.0.0.0", "0.0.0.0", "1.2.3.4", "0.0.0.0", "::", "0.0.0.0"],
    sport=[1024, 80, 53, 68, 0, 443],
    dport=[80, 1024, 53, 67, 0x0300 + 3, 8080],
    proto=[6, 6, 17, 17, 58, 6],
    packets=[10, 1, 2, 3, 4, 5],
    bytes=[400, 40, 120, 1000, 240, 1500],
    stime_ms=[T0, T0 + 3_600_000, T0 + 300_000, T0 - 1, T0 + 86_399_999, T0 + 60_000],
    elapsed_ms=[1500, 0, 60_000, 2, 1000, 3_599_999],
    flags=[0x02, 0x12, 0, 0, 0, 0x11],
    init_flags=[0x02, 0x02, 0, 0, 0, 0x02],
    rest_flags=[0x10, 0x10, 0, 0, 0, 0x11],
    sensor=[0, 1, 2, 3, 4, 14],
    flowtype=[0, 1, 2, 3, 0, 255],
    tcp_state=[0x20, 0x40, 0x60, 0, 0, 0x08],
)
FLOWS["ipv6"] = [False, False, False, False, True, True]


@pytest.mark.parametrize(
    ("switch", "value", "expected"),
    [
        # addresses: single, CIDR, wildcard; IPv4 tests match IPv4-mapped IPv6 records
        ("saddress", "10.1.2.1", [1, 0, 0, 0, 0, 0]),
        ("saddress", "10.1.x.1-5", [1, 1, 0, 0, 0, 1]),
        ("saddress", "10.1.2,9.1,5", [1, 1, 0, 0, 0, 0]),
        ("saddress", "10.0.0.0/8", [1, 1, 1, 0, 0, 1]),
        ("saddress", "2001:db8::x", [0, 0, 0, 0, 1, 0]),
        ("saddress", "::ffff:0.0.0.0/96", [1, 1, 1, 1, 0, 1]),
        ("not-saddress", "10.1.x.x", [0, 0, 0, 1, 1, 0]),
        ("daddress", "10.0.0.1-2", [1, 0, 0, 0, 0, 1]),
        ("any-address", "8.8.8.8", [0, 1, 0, 0, 0, 0]),
        ("not-any-address", "10.x.x.x", [0, 0, 0, 0, 1, 0]),
        ("next-hop-id", "1.2.3.4", [0, 0, 1, 0, 0, 0]),
        ("scidr", "10.1.2.0/24,192.168.1.1", [1, 0, 1, 1, 0, 0]),
        ("dcidr", "2001:db8::/32", [0, 0, 0, 0, 1, 0]),
        ("not-dcidr", "10.0.0.0/8", [0, 1, 1, 0, 1, 0]),
        ("any-cidr", "172.16.0.0/12,192.168.0.0/16", [0, 0, 1, 1, 0, 0]),
        ("not-any-cidr", "10.0.0.0/8", [0, 0, 0, 0, 1, 0]),
        ("nhcidr", "0.0.0.0/32", [1, 1, 0, 1, 0, 1]),
        ("not-nhcidr", "0.0.0.0/32", [0, 0, 1, 0, 1, 0]),
        # ports and protocol: INTEGER_LIST with ranges and open upper ends
        ("sport", "0-66,69-1023", [0, 1, 1, 0, 1, 1]),
        ("dport", "1024-", [0, 1, 0, 0, 0, 1]),
        ("aport", "53,67-68", [0, 0, 1, 1, 0, 0]),
        ("protocol", "6,17", [1, 1, 1, 1, 0, 1]),
        ("protocol", "50-", [0, 0, 0, 0, 1, 0]),
        # ICMP type/code read from dPort, only for ICMP (1) or ICMPv6 (58 on IPv6)
        ("icmp-type", "3", [0, 0, 0, 0, 1, 0]),
        ("icmp-code", "3", [0, 0, 0, 0, 1, 0]),
        ("icmp-code", "0", [0, 0, 0, 0, 0, 0]),
        # times: days fill to 00:00:00.000 / 23:59:59.999, one time is one millisecond
        ("stime", "2009/02/12", [1, 0, 0, 0, 0, 0]),
        ("stime", "2009/02/12-2009/02/12", [1, 1, 1, 0, 1, 1]),
        ("stime", "2009/02/12:00-2009/02/12:00", [1, 0, 1, 0, 0, 1]),
        ("stime", "2009/02/12T00:01-2009/02/12:01", [0, 1, 1, 0, 0, 1]),
        ("stime", "1234396800-1234400399", [1, 0, 1, 0, 0, 1]),
        ("etime", "2009/02/12:00:01:00-2009/02/12:00:59", [0, 0, 1, 0, 0, 0]),
        ("etime", "2009/02/12:00:06-2009/02/12:00:06", [0, 0, 1, 0, 0, 0]),
        ("active-time", "2009/02/12:00:00:00.001", [1, 0, 0, 1, 0, 0]),
        ("active-time", "2009/02/12:00:00:00.002", [1, 0, 0, 0, 0, 0]),
        ("active-time", "2009/02/11:23:59:59.999", [0, 0, 0, 1, 0, 0]),
        ("active-time", "2009/02/12:00:30-2009/02/12:00:31", [0, 0, 0, 0, 0, 1]),
        # volumes: MIN-MAX, MIN-, exact
        ("duration", "1.5", [1, 0, 0, 0, 0, 0]),
        ("duration", "1-", [1, 0, 1, 0, 1, 1]),
        ("duration", "0-0.002", [0, 1, 0, 1, 0, 0]),
        ("bytes", "400", [1, 0, 0, 0, 0, 0]),
        ("bytes", "100-1000", [1, 0, 1, 1, 1, 0]),
        ("packets", "3-", [1, 0, 0, 1, 1, 1]),
        ("bytes-per-packet", "40-60", [1, 1, 1, 0, 1, 0]),
        ("bytes-per-packet", "300.5-", [0, 0, 0, 1, 0, 0]),
        ("bytes-per-packet", "300", [0, 0, 0, 0, 0, 1]),
        # TCP flags: HIGH/MASK pairs, any pair passes
        ("flags-all", "S/SA", [1, 0, 0, 0, 0, 0]),
        ("flags-all", "S/S,F/F", [1, 1, 0, 0, 0, 1]),
        ("flags-all", "/F", [1, 1, 1, 1, 1, 0]),
        ("flags-initial", "S/SA", [1, 1, 0, 0, 0, 1]),
        ("flags-session", "A/FA", [1, 1, 0, 0, 0, 0]),
        ("tcp-flags", "SF", [1, 1, 0, 0, 0, 1]),
        ("ack-flag", "1", [0, 1, 0, 0, 0, 1]),
        ("syn-flag", "0", [0, 0, 1, 1, 1, 1]),
        ("attributes", "T/T", [1, 0, 1, 0, 0, 0]),
        ("attributes", "C/TC", [0, 1, 0, 0, 0, 0]),
        ("ip-version", "4", [1, 1, 1, 1, 0, 0]),
        ("ip-version", "6", [0, 0, 0, 0, 1, 1]),
        ("ip-version", "4,6", [1, 1, 1, 1, 1, 1]),
    ],
)
def test_switch_passes_what_the_manual_says(switch, value, expected):
    assert parse_switch(switch, value).mask(FLOWS).astype(int).tolist() == expected


@pytest.mark.parametrize(
    ("switch", "value", "message"),
    [
        ("sport", "70000", "--sport=70000: '70000' is outside 0-65535 or reversed"),
        ("protocol", "17-6", "--protocol=17-6: '17-6' is outside 0-255 or reversed"),
        ("dport", "http", "--dport=http: 'http' is not a number or a range of numbers"),
        ("flags-all", "SA/S", "--flags-all=SA/S: in 'SA/S' HIGH is not a subset of MASK"),
        ("flags-all", "S", "--flags-all=S: 'S' is not HIGH/MASK"),
        ("flags-all", "X/X", "--flags-all=X/X: unknown letter 'X'"),
        ("stime", "2009-02-12", "--stime=2009-02-12: '02-12' is not YYYY/MM/DD[:HH[:MM"),
        ("stime", "2009/02/13-2009/02/12", "the window ends before it starts"),
        ("bytes", "10-5", "--bytes=10-5: expected non-negative MIN <= MAX"),
        ("scidr", "10.0.0.300", "--scidr=10.0.0.300: '10.0.0.300' is not an IP address"),
        ("saddress", "10.1.x", "--saddress=10.1.x: an IPv4 wildcard has four parts"),
        ("ip-version", "5", "--ip-version=5: expected 4, 6 or 4,6"),
        ("not-sport", "80", "--not-sport=80: only address switches have a --not- form"),
        ("duration", "1e400", "--duration=1e400: expected finite numbers"),
        ("bytes-per-packet", "nan", "--bytes-per-packet=nan: expected finite numbers"),
        ("saddress", "::ffff:0.0.x", "--saddress=::ffff:0.0.x: an IPv4 wildcard has four parts"),
        ("stime", "2009/02/30", "--stime=2009/02/30: day is out of range for month"),
    ],
)
def test_bad_values_are_one_line_naming_the_switch(switch, value, message):
    with pytest.raises(FilterArgumentError) as caught:
        parse_switch(switch, value)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.reason == "bad_argument"


def test_switches_are_anded():
    tests = [parse_switch("protocol", "6"), parse_switch("dport", "80,8080")]
    assert partition(FLOWS, tests).astype(int).tolist() == [1, 0, 0, 0, 0, 1]
    assert partition(FLOWS, []).all()
    assert partition(FLOWS[:0], tests).tolist() == []


def test_manual_wildcards_are_one_set():
    """The five spellings of ::ffff:0:0/112 in rwfilter(1) are the same addresses."""
    spellings = [
        "::ffff:0:0/112",
        "::ffff:0:x",
        "::ffff:0:aaab-ffff,aaaa,0-aaa9",
        "::ffff:0.0.0.0/112",
        "::ffff:0.0.128-254,0-126,255,127.x",
    ]
    first = parse_wildcard(spellings[0])
    for spelling in spellings[1:]:
        assert all((a == b).all() for a, b in zip(first, parse_wildcard(spelling), strict=True))


def test_time_windows_fill_like_silk():
    # "2003/01/31:23-2003/01/31:23" becomes 23:00:00.000-23:59:59.999
    assert parse_time_window("2003/01/31:23-2003/01/31:23") == (1044054000000, 1044057599999)
    # epoch seconds: the end gets .999 unless milliseconds are given
    assert parse_time_window("1044054000-1044057599") == (1044054000000, 1044057599999)
    assert parse_time_window("1044054000.5-1044057599.25") == (1044054000500, 1044057599250)
    # a single time is a window of one millisecond
    assert parse_time_window("2003/01/31:23:45:00.123") == (1044056700123, 1044056700123)


def test_integer_lists_and_flag_tables():
    assert np.flatnonzero(integer_table("1,3-4,65534-", 65535)).tolist() == [1, 3, 4, 65534, 65535]
    # S/SA: SYN on and ACK off, the other bits free
    table = high_mask_table("S/SA")
    assert table[0x02] and table[0x03] and not table[0x12] and not table[0x00]


@pytest.mark.parametrize(
    ("passed", "already", "limit", "expected"),
    [
        ([0, 1, 1, 1], 0, None, 4),
        ([0, 1, 1, 1], 0, 2, 3),
        ([0, 1, 1, 1], 1, 2, 2),
        ([0, 1, 1, 1], 2, 2, 0),
        ([1, 0, 0, 0], 0, 5, 4),
        ([], 0, 5, 0),
    ],
)
def test_pass_limit_reads_up_to_the_last_wanted_pass(passed, already, limit, expected):
    assert pass_limit(np.array(passed, dtype=bool), already, limit) == expected
