"""Geo-IP: exact countries from the shipped GeoLite2 file, one lookup per distinct address."""

from __future__ import annotations

import numpy as np
import pytest

from silkwatch.connectors.geoip import (
    FT_PREFIXMAP,
    UNKNOWN,
    CountryDB,
    GeoIPError,
    SilkCountryMap,
    default_database_path,
    open_country_db,
)
from silkwatch.connectors.silk.header import SilkHeader, encode_header
from silkwatch.detectors.schema import make_batch, parse_ips


@pytest.fixture(scope="module")
def db():
    with CountryDB() as database:
        yield database


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("8.8.8.8", "US"),
        ("81.2.69.160", "GB"),
        ("193.0.6.139", "NL"),
        ("202.12.27.33", "JP"),
        ("1.1.1.1", "AU"),
        ("2001:4860:4860::8888", "US"),
        ("10.0.0.1", UNKNOWN),  # private: in no database
        ("203.0.113.1", UNKNOWN),  # documentation range
        ("::ffff:8.8.8.8", "US"),  # given as IPv6 text, still the mapped IPv4 address
    ],
)
def test_country_of_one_address(db, address, expected):
    addresses, ipv6 = parse_ips([address])
    assert db.country_codes(addresses, ipv6).tolist() == [expected]


def test_empty_column(db):
    codes = db.country_codes(np.zeros(0, "V16"), np.zeros(0, bool))
    assert codes.dtype == np.dtype("<U2") and codes.shape == (0,)


class CountingDB(CountryDB):
    """Counts the per-address lookups, to prove each distinct address is looked up once."""

    calls = 0

    def country_code(self, address):
        self.calls += 1
        return super().country_code(address)


def test_each_distinct_address_is_looked_up_once():
    batch = make_batch(dip=["8.8.8.8", "10.0.0.1", "81.2.69.160"] * 400 + ["2001:4860:4860::8888"])
    with CountingDB() as db:
        codes = db.country_codes(batch["dip"], batch["ipv6"])
        assert db.calls == 4
    assert codes[:3].tolist() == ["US", "--", "GB"]
    assert np.unique(codes, return_counts=True)[1].tolist() == [400, 400, 401]


def test_known_addresses_are_bounded_and_looked_up_again_after(monkeypatch):
    """Past ``CACHE_ADDRESSES`` the known addresses are forgotten, never grown without end;
    an IPv4 row and an IPv6 row of the same 16 bytes stay two addresses."""
    monkeypatch.setattr("silkwatch.connectors.geoip.CACHE_ADDRESSES", 3)
    first = make_batch(dip=["8.8.8.8", "81.2.69.160"] * 5)
    second = make_batch(dip=["8.8.8.8", "1.1.1.1", "202.12.27.33"])
    mapped = make_batch(dip=["::ffff:8.8.8.8"])
    mapped["ipv6"] = True
    with CountingDB() as db:
        assert db.country_codes(first["dip"], first["ipv6"]).tolist() == ["US", "GB"] * 5
        assert db.calls == 2
        assert db.country_codes(second["dip"], second["ipv6"]).tolist() == ["US", "AU", "JP"]
        assert db.calls == 5  # 2 known + 2 new > 3: forgotten, the three looked up afresh
        assert db.country_codes(first["dip"][:2], first["ipv6"][:2]).tolist() == ["US", "GB"]
        assert db.calls == 7  # 3 known + 1 new > 3 again: both looked up
        assert db.country_codes(mapped["dip"], mapped["ipv6"]).tolist() == ["US"]
        assert db.calls == 8  # the same 16 bytes as IPv6: another address


def test_database_by_path_is_the_same_database():
    addresses, ipv6 = parse_ips(["81.2.69.160"])
    with CountryDB(default_database_path()) as db:
        assert db.country_codes(addresses, ipv6).tolist() == ["GB"]


def test_unreadable_database_names_the_file(tmp_path):
    bad = tmp_path / "not-a-database.mmdb"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(GeoIPError, match=r"geoip: .*not-a-database\.mmdb: not a readable") as info:
        CountryDB(bad)
    assert info.value.reason == "geoip_database"


def pmap_bytes(version: int, nodes: list[tuple[int, int]], *, big_endian: bool = False) -> bytes:
    """A country code prefix map as SiLK's skprefixmap.c lays it out (header, count, nodes)."""
    header = SilkHeader(
        file_format=FT_PREFIXMAP, rec_version=version, rec_size=1, big_endian=big_endian
    )
    order = ">" if big_endian else "<"
    body = np.array(nodes, dtype=f"{order}u4").tobytes()
    return encode_header(header) + np.array([len(nodes)], dtype=f"{order}u4").tobytes() + body


def leaf(code: str) -> int:
    return 0x80000000 | (ord(code[0]) << 8) | ord(code[1])


#: IPv4 tree: 0/2 → us, 64/2 → gb, 128/1 → "--" (SiLK's unknown)
V4_NODES = [(1, leaf("--")), (leaf("us"), leaf("gb"))]


@pytest.mark.parametrize("big_endian", [False, True])
def test_silk_ipv4_country_map(tmp_path, big_endian):
    path = tmp_path / "country_codes.pmap"
    path.write_bytes(pmap_bytes(1, V4_NODES, big_endian=big_endian))
    addresses, ipv6 = parse_ips(["8.8.8.8", "81.2.69.160", "200.1.1.1", "2001:db8::1", "8.8.8.8"])
    with open_country_db(path) as db:
        assert isinstance(db, SilkCountryMap) and db.bits == 32
        # an IPv6 address has no country in an IPv4 map
        assert db.country_codes(addresses, ipv6).tolist() == ["US", "GB", "--", "--", "US"]


def test_silk_ipv6_country_map_looks_up_ipv4_as_mapped(tmp_path):
    # 128 levels: node i (i < 127) sends bit 127-i = 0 to node i+1 and 1 to "de"; so
    # every address except :: is DE; ::/128 itself reaches node 127 → left "jp", right "fr"
    nodes = [(i + 1, leaf("de")) for i in range(127)] + [(leaf("jp"), leaf("fr"))]
    path = tmp_path / "v6.pmap"
    path.write_bytes(pmap_bytes(5, nodes))
    addresses, ipv6 = parse_ips(["::", "::1", "10.0.0.1", "2001:db8::"])
    assert SilkCountryMap(path).country_codes(addresses, ipv6).tolist() == ["JP", "FR", "DE", "DE"]


@pytest.mark.parametrize(
    ("version", "nodes", "message"),
    [
        (2, V4_NODES, "prefix map version 2 is not a country code map"),
        (1, [(5, leaf("us"))], "tree node points past the end of the tree"),
    ],
)
def test_bad_silk_map(tmp_path, version, nodes, message):
    path = tmp_path / "bad.pmap"
    path.write_bytes(pmap_bytes(version, nodes))
    with pytest.raises(GeoIPError, match=message):
        SilkCountryMap(path)


def test_truncated_silk_map_names_the_offset(tmp_path):
    path = tmp_path / "short.pmap"
    path.write_bytes(pmap_bytes(1, V4_NODES)[:-4])
    with pytest.raises(GeoIPError, match=r"short\.pmap: offset 28: 1 of 2 tree nodes"):
        SilkCountryMap(path)


def test_open_country_db_picks_maxmind_for_mmdb():
    with open_country_db(default_database_path()) as db:
        assert isinstance(db, CountryDB)
