"""Country of each flow address, from a MaxMind-format (``.mmdb``) database.

The default database is the GeoLite2-City file shipped by the
``maxminddb-geolite2`` package (July 2018: old, but offline and always there);
``--geoip PATH`` or ``CountryDB(path)`` takes a newer GeoLite2/GeoIP2 Country or
City file. Lookups are vectorised the only way a per-address tree walk can be:
each *distinct* address of a batch is looked up once and the answers are spread
back over the rows with ``np.unique``'s inverse index.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import maxminddb
import numpy as np

from detectors.exceptions import SilkwatchError

logger = logging.getLogger(__name__)

#: the code of an address no database entry covers (SiLK's ``rwip2cc`` prints the same)
UNKNOWN = "--"


class GeoIPError(SilkwatchError):
    """A Geo-IP database that cannot be opened or read."""

    reason = "geoip_database"

    def __init__(self, path: Path | str, detail: str) -> None:
        self.path = path
        super().__init__(f"geoip: {path}: {detail}")


def default_database_path() -> Path:
    """The GeoLite2 database file that the ``maxminddb-geolite2`` package ships."""
    from _maxminddb_geolite2 import geolite2_database

    return Path(geolite2_database())


class CountryDB:
    """Two-letter country codes (ISO 3166-1 alpha-2) for 16-byte flow addresses.

    :param path: a MaxMind ``.mmdb`` Country or City database.
        Default - the GeoLite2 file of the ``maxminddb-geolite2`` package.

    Examples
    --------
    >>> from detectors.schema import parse_ips
    >>> addresses, ipv6 = parse_ips(["8.8.8.8", "10.0.0.1", "8.8.8.8"])
    >>> CountryDB().country_codes(addresses, ipv6).tolist()
    ['US', '--', 'US']
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_database_path()
        try:
            self._reader = maxminddb.open_database(str(self.path))
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise GeoIPError(self.path, f"not a readable MaxMind database ({exc})") from exc

    def close(self) -> None:
        """Release the database file."""
        self._reader.close()

    def __enter__(self) -> CountryDB:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def country_code(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
        """The country of one address: where it is located, else where it is registered."""
        try:
            record = self._reader.get(address)
        except maxminddb.InvalidDatabaseError as exc:
            raise GeoIPError(self.path, f"corrupt record for {address} ({exc})") from exc
        if not isinstance(record, dict):
            return UNKNOWN
        for key in ("country", "registered_country"):
            code = record.get(key, {}).get("iso_code")
            if code:
                return str(code)
        return UNKNOWN

    def country_codes(self, addresses: np.ndarray, ipv6: np.ndarray) -> np.ndarray:
        """The country code of every 16-byte address (``"--"`` when unknown).

        :param addresses: a ``V16`` address column (IPv4 kept IPv4-mapped).
        :param ipv6: whether each address is IPv6.
        :returns: a ``<U2`` array, one code per row.
        """
        if not len(addresses):
            return np.zeros(0, dtype="<U2")
        # An IPv4 and an IPv6 row with the same 16 bytes stay apart: key on both.
        keys = np.empty(len(addresses), dtype=[("a", "V16"), ("v6", "?")])
        keys["a"], keys["v6"] = addresses, ipv6
        distinct, inverse = np.unique(keys, return_inverse=True)
        codes = np.array(
            [
                self.country_code(_address(bytes(raw), bool(v6)))
                for raw, v6 in zip(distinct["a"].tolist(), distinct["v6"].tolist(), strict=True)
            ],
            dtype="<U2",
        )
        return codes[inverse]


def _address(raw: bytes, ipv6: bool) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """16 network-order bytes as the address object the database expects."""
    address = ipaddress.IPv6Address(raw)
    if not ipv6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
