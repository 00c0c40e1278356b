"""SiLK IPset files: every record version, both byte orders, compressed or not."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest

from silkwatch.connectors.silk.exceptions import SilkFormatError
from silkwatch.connectors.silk.header import Compression
from silkwatch.connectors.silk.ipset import IPSetError, read_ipset
from silkwatch.detectors.schema import make_batch
from tests.connectors.ipset_files import write_ipset

V4_BLOCKS = [
    "10.0.0.0/8",  # larger than a /24
    "192.168.1.0/24",  # exactly a /24
    "192.168.2.5/32",
    "192.168.2.7/32",  # two addresses of one /24
    "192.168.2.64/27",  # a whole bitmap word
    "192.168.2.128/26",
    "172.16.0.0/31",
    "0.0.0.0/32",
    "255.255.255.255/32",
]
V6_BLOCKS = [
    "2001:db8::/32",  # larger than a /64
    "2001:db9:0:1::/64",
    "2001:dba::5/128",  # inside a /64 with others, in one /120 bitmap
    "2001:dba::9/128",
    "2001:dba::100/120",
    "2001:dba::1:0/112",
    "::ffff:10.1.2.0/120",  # IPv4-mapped: an IPv4 record in this range is in the set
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
]


def _networks(texts):
    return [ipaddress.ip_network(t) for t in texts]


def _probes(networks) -> list:
    """Every block's first and last address and both neighbours, and some random ones."""
    rng = np.random.default_rng(3)
    kind = type(networks[0].network_address)
    top = 2 ** (32 if networks[0].version == 4 else 128) - 1
    values = set()
    for net in networks:
        first, last = int(net.network_address), int(net.broadcast_address)
        values |= {first, last, max(first - 1, 0), min(last + 1, top)}
    values |= {int(v) for v in rng.integers(0, 2**32, 200, dtype=np.uint64)}
    values |= {0x20010DB8 << 96 | int(v) for v in rng.integers(0, 2**32, 100, dtype=np.uint64)}
    return sorted(kind(v & top) for v in values)


def _column(addresses) -> np.ndarray:
    mapped = [
        a if a.version == 6 else ipaddress.IPv6Address(0xFFFF << 32 | int(a)) for a in addresses
    ]
    return np.frombuffer(b"".join(a.packed for a in mapped), "V16")


@pytest.mark.parametrize("compression", [Compression.NONE, Compression.ZLIB])
@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize(("family", "version"), [(4, 2), (4, 3), (4, 4), (6, 3), (6, 4), (6, 5)])
def test_every_layout_holds_what_was_written(tmp_path, family, version, big_endian, compression):
    networks = _networks(V4_BLOCKS if family == 4 else V6_BLOCKS)
    path = write_ipset(
        tmp_path / "s.set", networks, version, big_endian=big_endian, compression=compression
    )
    ipset = read_ipset(path)
    probes = _probes(networks)
    expected = [any(p in net for net in networks) for p in probes]
    assert ipset.contains(_column(probes)).tolist() == expected
    assert sum(expected) > 10 and not all(expected)


def test_ipv4_records_against_an_ipv6_set_and_mapped_addresses(tmp_path):
    ipset = read_ipset(write_ipset(tmp_path / "v6.set", _networks(V6_BLOCKS), 3))
    batch = make_batch(sip=["10.1.2.3", "10.1.3.3", "::ffff:10.1.2.9", "2001:db8::1"])
    assert ipset.contains(batch["sip"]).tolist() == [True, False, True, True]
    v4 = read_ipset(write_ipset(tmp_path / "v4.set", _networks(V4_BLOCKS), 2))
    assert v4.contains(batch["sip"]).tolist() == [True, True, True, False]


def test_empty_sets(tmp_path):
    for version in (2, 3, 4):
        ipset = read_ipset(write_ipset(tmp_path / f"{version}.set", [], version))
        assert len(ipset) == 0
        assert ipset.contains(make_batch(sip=["10.0.0.1"])["sip"]).tolist() == [False]


def test_classc_blocks_become_runs(tmp_path):
    ipset = read_ipset(write_ipset(tmp_path / "c.set", _networks(V4_BLOCKS), 2))
    # 10/8 is 65,536 full /24s, each its own run; 192.168.2.x holds four runs
    assert len(ipset) == 65536 + 1 + 4 + 3


@pytest.mark.parametrize(
    ("version", "cut", "message"),
    [
        (2, 5, "offset .*: truncated /24 block"),
        (4, 3, "offset .*: truncated"),
        (3, 7, "radix IPset of .* bytes, not"),
        (5, 4, "offset .*: truncated"),
    ],
)
def test_truncated_files_are_one_line(tmp_path, version, cut, message):
    networks = _networks(V6_BLOCKS if version == 5 else V4_BLOCKS[1:])
    path = write_ipset(tmp_path / "t.set", networks, version)
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(IPSetError, match=message) as info:
        read_ipset(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_bad_prefix_byte_and_not_an_ipset(tmp_path):
    path = write_ipset(tmp_path / "p.set", _networks(["10.0.0.0/8"]), 4)
    raw = bytearray(path.read_bytes())
    raw[-1] = 40  # a /40 of an IPv4 address
    path.write_bytes(bytes(raw))
    with pytest.raises(IPSetError, match="unexpected prefix value 40"):
        read_ipset(path)
    from silkwatch.connectors.silk import SilkWriter

    with SilkWriter(tmp_path / "flows.rw") as writer:
        writer.write(make_batch(sip=["10.0.0.1"]))
    with pytest.raises(SilkFormatError, match="not an IPset file"):
        read_ipset(tmp_path / "flows.rw")


def test_slash64_states_are_checked(tmp_path):
    path = write_ipset(tmp_path / "s.set", _networks(["2001:dba::100/120"]), 5)
    raw = path.read_bytes()
    # the high half (0x82) then its low half: drop the low half, leaving a dangling 0x82
    path.write_bytes(raw[:-9])
    with pytest.raises(IPSetError, match="high half without low halves"):
        read_ipset(path)
    path.write_bytes(raw[:-18] + raw[-9:])  # a low half with no high half before it
    with pytest.raises(IPSetError, match="unexpected prefix value 120"):
        read_ipset(path)


def test_overlapping_blocks_are_one_line(tmp_path):
    path = write_ipset(tmp_path / "o.set", _networks(["10.0.0.0/8", "10.1.0.0/16"]), 3)
    with pytest.raises(IPSetError, match=r"o\.set offset \d+: blocks overlap"):
        read_ipset(path)
