"""Text columns → flow batch columns, vectorised over a chunk of lines.

Every function takes a 1-D array of strings (one per line) and returns a numpy
column, raising ``ValueError`` if any entry is bad; the chunk driver then
retries line by line to name the bad line. Conversions run in numpy's C loops
(``astype``, ``datetime64``) or over the few distinct values of a column
(protocol names, flag letters), never per line in Python on the good path.
"""

from __future__ import annotations

import numpy as np

from connectors.silk.text import parse_attributes, parse_tcp_flags
from detectors.schema import ipv4_to_v16, parse_ip

#: protocol names as Argus, Zeek and nfdump print them (lower case) → IP protocol number
PROTOCOL_NUMBERS = {
    "icmp": 1,
    "igmp": 2,
    "ipv4": 4,
    "ipnip": 4,
    "tcp": 6,
    "egp": 8,
    "udp": 17,
    "ipv6": 41,
    "rsvp": 46,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "icmp6": 58,
    "ipv6-icmp": 58,
    "icmpv6": 58,
    "ospf": 89,
    "pim": 103,
    "vrrp": 112,
    "l2tp": 115,
    "sctp": 132,
    "udplite": 136,
}


def map_distinct(column: np.ndarray, convert, dtype) -> np.ndarray:
    """Apply a per-value Python conversion once per distinct value."""
    distinct, inverse = np.unique(column, return_inverse=True)
    return np.array([convert(str(value)) for value in distinct], dtype=dtype)[inverse]


def uints(column: np.ndarray, dtype: str = "<u8", *, unset: str | None = None) -> np.ndarray:
    """Decimal unsigned integers; ``unset`` (e.g. Zeek's ``-``) reads as 0."""
    column = np.char.strip(column)
    if unset is not None:
        column = np.where(column == unset, "0", column)
    values = column.astype(np.int64)
    if (values < 0).any() or (values > np.iinfo(dtype).max).any():
        raise ValueError(f"integer out of range for {np.dtype(dtype).name}")
    return values.astype(dtype)


def hex_or_decimal(column: np.ndarray) -> np.ndarray:
    """Argus ports: decimal, ``0x`` hex (ICMP type/code) or empty (non-IP) → int64."""
    column = np.char.strip(column)
    is_hex = np.char.startswith(column, "0x")
    out = np.zeros(len(column), dtype=np.int64)
    decimal = ~is_hex & (column != "")
    out[decimal] = column[decimal].astype(np.int64)
    if is_hex.any():
        out[is_hex] = [int(text, 16) for text in column[is_hex].tolist()]
    return out


def seconds_to_ms(column: np.ndarray, *, unset: str | None = None) -> np.ndarray:
    """Decimal seconds (``12.345``) → whole milliseconds, rounded to nearest."""
    column = np.char.strip(column)
    if unset is not None:
        column = np.where(column == unset, "0", column)
    seconds = column.astype(np.float64)
    if not np.isfinite(seconds).all() or (seconds < 0).any():
        raise ValueError("duration is negative or not a number")
    return np.rint(seconds * 1000.0).astype(np.int64)


def epoch_to_ms(column: np.ndarray) -> np.ndarray:
    """UNIX seconds with a fraction (``1434553200.013``) → ms, truncated like SiLK."""
    seconds = np.char.strip(column).astype(np.float64)
    if not np.isfinite(seconds).all():
        raise ValueError("time is not a number")
    # round to the microsecond first so 0.013 stored as 0.01299999 still reads 13 ms
    return np.floor(np.round(seconds * 1000.0, 3)).astype(np.int64)


def datetimes_to_ms(column: np.ndarray) -> np.ndarray:
    """Calendar times (``2015/06/17T15:00:00.013``, ``2013/10/21 13:22:59.340835``) → ms, UTC.

    Sub-millisecond digits are truncated, as SiLK does when it stores Argus or
    Zeek times. An epoch number is accepted too (rwcut ``--timestamp-format=epoch``).
    """
    column = np.char.strip(column)
    if len(column) and "-" not in column[0] and "/" not in column[0]:
        return epoch_to_ms(column)
    iso = np.char.replace(np.char.replace(column, "/", "-"), " ", "T")
    return iso.astype("datetime64[ms]").astype(np.int64)


def protocols(column: np.ndarray) -> np.ndarray:
    """Protocol numbers or names (``tcp``, ``TCP``, ``ipv6-icmp``) → ``u1``."""

    def convert(text: str) -> int:
        text = text.strip().lower()
        number = int(text) if text.isdigit() else PROTOCOL_NUMBERS[text]
        if number > 255:
            raise ValueError(f"protocol {number} > 255")
        return number

    try:
        return map_distinct(column, convert, "u1")
    except KeyError as exc:
        raise ValueError(f"unknown protocol name {exc}") from None


def silk_flags(column: np.ndarray) -> np.ndarray:
    """rwcut TCP flags: letters in any order and padding (``FS PA  ``) or an integer."""
    return map_distinct(column, parse_tcp_flags, "u1")


def attributes(column: np.ndarray) -> np.ndarray:
    """rwcut ``attributes`` letters (``T``, ``C``, ``F``, ``S``) → tcp_state bits."""
    return map_distinct(column, parse_attributes, "u1")


def nfdump_flags(column: np.ndarray) -> np.ndarray:
    """nfdump's positional flags (``...A.R..`` = CEUAPRSF, dot = unset) → SiLK bits."""

    def convert(text: str) -> int:
        text = text.strip()
        if len(text) != 8:
            return int(text, 0)
        return sum(1 << (7 - i) for i, char in enumerate(text) if char != ".")

    return map_distinct(column, convert, "u1")


def addresses(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IP text → (``V16`` column, ``ipv6`` column), IPv4 dotted quads on a numpy fast path.

    A chunk of pure IPv4 is split into octets in one ``str.split`` and
    converted by numpy; only IPv6 (or odd) entries go through ``ipaddress``.
    """
    column = np.char.strip(column)
    out = np.zeros(len(column), dtype="V16")
    is_v6 = np.char.find(column, ":") >= 0
    v4 = column[~is_v6]
    if len(v4):
        parts = ".".join(v4.tolist()).split(".")
        if len(parts) != 4 * len(v4):
            raise ValueError("malformed IPv4 address")
        octets = np.array(parts).astype(np.int64).reshape(-1, 4)
        if (octets < 0).any() or (octets > 255).any():
            raise ValueError("IPv4 octet out of range")
        as_int = (octets[:, 0] << 24) | (octets[:, 1] << 16) | (octets[:, 2] << 8) | octets[:, 3]
        out[~is_v6] = ipv4_to_v16(as_int.astype(np.uint32))
    if is_v6.any():
        out[is_v6] = [parse_ip(text)[0] for text in column[is_v6].tolist()]
    return out, is_v6
