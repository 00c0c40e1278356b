"""Country of each flow address, from a MaxMind ``.mmdb`` or SiLK's ``country_codes.pmap``.

The default database is the GeoLite2-City file shipped by the
``maxminddb-geolite2`` package (July 2018: old, but offline and always there);
``CountryDB(path)`` takes a newer GeoLite2/GeoIP2 Country or City file, and
``SilkCountryMap(path)`` the prefix map a SiLK site already made with
``rwgeoip2ccmap``; ``open_country_db(path)`` picks by the file's magic number.

Each *distinct* address of a batch is looked up once and the answers are spread
back over the rows with ``np.unique``'s inverse index; the SiLK map walks its
tree for all distinct addresses at once, one bit per step.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import maxminddb
import numpy as np

from silkwatch.connectors.silk.exceptions import SilkFormatError
from silkwatch.connectors.silk.header import SilkHeader, parse_header
from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.keyindex import KeyIndex
from silkwatch.detectors.schema import ip_words

#: addresses whose country ``CountryDB`` remembers across batches (a City record
#: takes ~100 µs to decode; most destinations recur batch after batch)
CACHE_ADDRESSES = 200_000

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


class _Closing:
    """``with`` support for the lookups below."""

    def close(self) -> None:
        """Release what the lookup holds open."""

    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class CountryDB(_Closing):
    """Two-letter country codes (ISO 3166-1 alpha-2) for 16-byte flow addresses.

    :param path: a MaxMind ``.mmdb`` Country or City database.
        Default - the GeoLite2 file of the ``maxminddb-geolite2`` package.

    Examples
    --------
    >>> from silkwatch.detectors.schema import parse_ips
    >>> addresses, ipv6 = parse_ips(["8.8.8.8", "10.0.0.1", "8.8.8.8"])
    >>> CountryDB().country_codes(addresses, ipv6).tolist()
    ['US', '--', 'US']
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_database_path()
        self._forget()
        try:
            self._reader = maxminddb.open_database(str(self.path))
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise GeoIPError(self.path, f"not a readable MaxMind database ({exc})") from exc

    def close(self) -> None:
        """Release the database file."""
        self._reader.close()

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

        Each address is looked up in the database once (up to ``CACHE_ADDRESSES``),
        then found by the key index with the whole batch at once: a worker's frames
        hold a few thousand addresses each, one dictionary lookup apiece cost 4 %
        of a busy worker.

        :param addresses: a ``V16`` address column (IPv4 kept IPv4-mapped).
        :param ipv6: whether each address is IPv6.
        :returns: a ``<U2`` array, one code per row.
        """
        if not len(addresses):
            return np.zeros(0, dtype="<U2")
        flag = np.asarray(ipv6, dtype=bool)
        keys = np.stack([*ip_words(addresses), flag.astype(np.uint64)], axis=1)
        slots = self._known.find(keys)
        missing = np.flatnonzero(slots < 0)
        if len(missing):
            if len(self._known) + len(missing) > CACHE_ADDRESSES:
                self._forget()  # crude but bounded; a steady working set refills it
                missing = np.arange(len(keys))
            held = len(self._known)
            slots[missing] = added = self._known.slots(keys[missing])
            where = np.empty(len(self._known) - held, dtype=np.intp)
            where[added - held] = missing  # a row of each new (address, is IPv6)
            looked_up = [
                self.country_code(_address(bytes(raw), v6))
                for raw, v6 in zip(addresses[where].tolist(), flag[where].tolist(), strict=True)
            ]
            self._codes = np.concatenate([self._codes, np.array(looked_up, dtype="<U2")])
        return self._codes[slots]

    def _forget(self) -> None:
        """No address known: each is looked up once more (an IPv4 and an IPv6 row with the
        same 16 bytes are told apart by the third word)."""
        self._known, self._codes = KeyIndex(3), np.zeros(0, dtype="<U2")


def _distinct(addresses: np.ndarray, ipv6: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (address, is IPv6) pairs and each row's index into them.

    An IPv4 and an IPv6 row with the same 16 bytes stay apart: key on both.
    IPv4 rows (IPv4-mapped: high word 0) are told apart by their low word alone,
    one ``np.unique`` on ``uint64``; the other rows, usually few, by a
    ``lexsort`` on both words and the flag.
    """
    high, low = ip_words(addresses)
    flag = np.asarray(ipv6, dtype=bool)
    fast = (high == 0) & ~flag
    inverse = np.empty(len(flag), dtype=np.intp)
    low_v4, inverse[fast] = np.unique(low[fast], return_inverse=True)
    slow = np.flatnonzero(~fast)
    order = slow[np.lexsort((flag[slow], low[slow], high[slow]))]
    change = np.ones(len(order), dtype=bool)
    change[1:] = (
        (high[order][1:] != high[order][:-1])
        | (low[order][1:] != low[order][:-1])
        | (flag[order][1:] != flag[order][:-1])
    )
    inverse[order] = len(low_v4) + np.cumsum(change) - 1
    first = order[change]
    words = np.concatenate(
        [
            np.stack([np.zeros_like(low_v4), low_v4], axis=1),
            np.stack([high[first], low[first]], axis=1),
        ]
    )
    distinct = np.empty(len(words), dtype=[("a", "V16"), ("v6", "?")])
    distinct["a"] = words.astype(">u8").view("V16").reshape(-1)
    distinct["v6"] = np.concatenate([np.zeros(len(low_v4), dtype=bool), flag[first]])
    return distinct, inverse


def _address(raw: bytes, ipv6: bool) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """16 network-order bytes as the address object the database expects."""
    address = ipaddress.IPv6Address(raw)
    if not ipv6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


#: SiLK file format id of prefix maps (``silk_files.h``)
FT_PREFIXMAP = 0x25
#: prefix map record versions that hold country codes: 1 = IPv4 keys, 5 = IPv6 keys
_COUNTRY_MAP_BITS = {1: 32, 5: 128}
_LEAF_BIT = 0x80000000
_SILK_MAGIC = b"\xde\xad\xbe\xef"


class SilkCountryMap(_Closing):
    """Country codes from SiLK's country code prefix map (``country_codes.pmap``).

    The file (``skprefixmap.c`` in SiLK) is a SiLK header (format
    ``FT_PREFIXMAP``, record version 1 for IPv4 or 5 for IPv6 keys, no
    compression), a ``uint32`` node count, then that many nodes of two
    ``uint32`` (left, right) in the header's byte order. Walking from node 0, the
    key's most significant bit picks left (0) or right (1), then the next bit,
    until a child has its high bit set: that is a leaf whose low 31 bits are the
    country code, two ASCII letters as ``(c1 << 8) | c2`` (lower case). IPv4
    flows are looked up in an IPv6 map by their IPv4-mapped address, as SiLK does.

    :param path: a ``country_codes.pmap`` made by ``rwgeoip2ccmap``.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            with self.path.open("rb") as stream:
                header = parse_header(stream.read, str(self.path))
                data = stream.read()
        except OSError as exc:
            raise GeoIPError(self.path, f"cannot read ({exc.strerror})") from exc
        except SilkFormatError as exc:
            raise GeoIPError(self.path, f"not a SiLK prefix map ({exc})") from exc
        self.bits = self._check(header)
        order = ">" if header.big_endian else "<"
        if len(data) < 4:
            raise GeoIPError(self.path, f"offset {header.length}: no node count")
        (count,) = np.frombuffer(data[:4], dtype=f"{order}u4")
        nodes = np.frombuffer(data[4:], dtype=f"{order}u4", count=-1)
        if count < 1 or len(nodes) < 2 * int(count):
            raise GeoIPError(
                self.path,
                f"offset {header.length + 4}: {len(nodes) // 2} of {count} tree nodes",
            )
        tree = nodes[: 2 * int(count)].reshape(-1, 2).astype(np.uint32)
        inner = tree[(tree & _LEAF_BIT) == 0]
        if inner.size and int(inner.max()) >= count:
            raise GeoIPError(self.path, "tree node points past the end of the tree")
        self._tree = tree

    def _check(self, header: SilkHeader) -> int:
        if header.file_format != FT_PREFIXMAP:
            raise GeoIPError(
                self.path, f"SiLK file of format {header.format_name}, not a prefix map"
            )
        if header.rec_version not in _COUNTRY_MAP_BITS:
            raise GeoIPError(
                self.path,
                f"prefix map version {header.rec_version} is not a country code map "
                "(versions 1 and 5 are)",
            )
        if header.compression:
            raise GeoIPError(self.path, f"compressed prefix map (method {header.compression})")
        return _COUNTRY_MAP_BITS[header.rec_version]

    def _lookup(self, high: np.ndarray, low: np.ndarray) -> np.ndarray:
        """Leaf values for keys given as (high, low) ``uint64`` words, all walked at once."""
        node = np.zeros(len(high), dtype=np.int64)
        value = np.zeros(len(high), dtype=np.uint32)
        walking = np.ones(len(high), dtype=bool)
        for depth in range(self.bits):
            if not walking.any():
                break
            position = self.bits - 1 - depth  # bit index within the key, MSB first
            word, shift = (high, position - 64) if position >= 64 else (low, position)
            bit = ((word[walking] >> np.uint64(shift)) & np.uint64(1)).astype(np.intp)
            child = self._tree[node[walking], bit]
            leaf = (child & _LEAF_BIT) != 0
            index = np.flatnonzero(walking)
            value[index[leaf]] = child[leaf] & ~np.uint32(_LEAF_BIT)
            node[index[~leaf]] = child[~leaf]
            walking[index[leaf]] = False
        return value

    def country_codes(self, addresses: np.ndarray, ipv6: np.ndarray) -> np.ndarray:
        """The country code of every 16-byte address (``"--"`` when unknown)."""
        if not len(addresses):
            return np.zeros(0, dtype="<U2")
        distinct, inverse = _distinct(addresses, ipv6)
        high, low = ip_words(distinct["a"])
        usable = np.ones(len(distinct), dtype=bool)
        if self.bits == 32:
            # an IPv4 map answers IPv4 (and IPv4-mapped) addresses only
            usable = high == 0
            usable &= (low >> np.uint64(32)) == np.uint64(0xFFFF)
            high, low = np.zeros_like(high), low & np.uint64(0xFFFFFFFF)
        values = self._lookup(high[usable], low[usable])
        codes = np.full(len(distinct), UNKNOWN, dtype="<U2")
        codes[usable] = [_country_text(int(v)) for v in values]
        return codes[inverse]


def _country_text(value: int) -> str:
    """A leaf value as an upper-case code; ``--`` for SiLK's unknown and invalid codes.

    Examples
    --------
    >>> _country_text((ord("u") << 8) | ord("s")), _country_text(0x2D2D), _country_text(32383)
    ('US', '--', '--')
    """
    first, second = value >> 8, value & 0xFF
    if not (0x20 <= first <= 0x7E and 0x20 <= second <= 0x7E):
        return UNKNOWN
    text = (chr(first) + chr(second)).upper()
    return text if text.isalnum() else UNKNOWN


def open_country_db(path: Path | str | None = None) -> CountryDB | SilkCountryMap:
    """A SiLK ``country_codes.pmap`` or a MaxMind database, told apart by the magic number.

    :param path: the file. Default - the GeoLite2 file of ``maxminddb-geolite2``.
    """
    if path is None:
        return CountryDB()
    try:
        with Path(path).open("rb") as stream:
            magic = stream.read(4)
    except OSError as exc:
        raise GeoIPError(path, f"cannot read ({exc.strerror})") from exc
    return SilkCountryMap(path) if magic == _SILK_MAGIC else CountryDB(path)
