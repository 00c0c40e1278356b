"""Geo-IP: exact countries from the shipped GeoLite2 file, one lookup per distinct address."""

from __future__ import annotations

import numpy as np
import pytest

from connectors.geoip import UNKNOWN, CountryDB, GeoIPError, default_database_path
from detectors.schema import make_batch, parse_ips


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
