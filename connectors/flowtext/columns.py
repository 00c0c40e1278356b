"""Text columns → flow batch columns, parsed a whole chunk at a time.

Every function takes a list of strings (one per line, padding allowed) and
returns a numpy column, raising ``ValueError`` if any entry is bad; the chunk
driver then bisects the chunk to name the bad lines. Numbers are parsed by
numpy's C text parser over the joined column (``np.fromstring``, with a
sentinel so a bad last entry cannot pass unseen), times by ``datetime64``,
and columns with few distinct values (protocol names, flag letters) once per
distinct value: never one Python call per line on the good path, except for
IPv6 addresses.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

from silkwatch.connectors.silk.text import parse_attributes, parse_tcp_flags
from silkwatch.detectors.schema import ipv4_to_v16, parse_ip

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


def map_distinct(values: Sequence[str], convert: Callable[[str], int], dtype) -> np.ndarray:
    """Apply a per-value Python conversion once per distinct value."""
    mapping = {value: convert(value) for value in set(values)}
    return np.fromiter(map(mapping.__getitem__, values), dtype=dtype, count=len(values))


def parse_numbers(text: str, count: int, dtype) -> np.ndarray:
    """``count`` whitespace-separated decimal numbers in ``text`` → array, parsed in C."""
    with warnings.catch_warnings():
        # numpy warns (not raises) when text stops parsing early; the count below catches it
        warnings.simplefilter("ignore", DeprecationWarning)
        parsed = np.fromstring(text + " 0", dtype=dtype, sep=" ")
    if len(parsed) != count + 1:
        raise ValueError(f"not a number in {text[:40]!r}")
    return parsed[:-1]


def _unset_to_zero(values: Sequence[str], unset: str | None) -> Sequence[str]:
    if unset is None:
        return values
    return [("0" if value == unset else value) for value in values]


def uints(values: Sequence[str], dtype: str = "<u8", *, unset: str | None = None) -> np.ndarray:
    """Decimal unsigned integers; ``unset`` (e.g. Zeek's ``-``) reads as 0."""
    values = _unset_to_zero(values, unset)
    numbers = parse_numbers(" ".join(values), len(values), np.int64)
    # numpy saturates what does not fit an int64 (a 26-digit counter) to 2**63 - 1
    too_big = (numbers > np.iinfo(dtype).max) | (numbers == np.iinfo(np.int64).max)
    if (numbers < 0).any() or too_big.any():
        raise ValueError(f"integer out of range for {np.dtype(dtype).name}")
    return numbers.astype(dtype)


def _port(text: str) -> int:
    text = text.strip()
    return int(text, 16) if text.startswith("0x") else int(text or 0)


def hex_or_decimal(values: Sequence[str]) -> np.ndarray:
    """Argus ports: decimal, ``0x`` hex (ICMP type/code) or empty → int64."""
    return map_distinct(values, _port, np.int64)


def seconds_to_ms(values: Sequence[str], *, unset: str | None = None) -> np.ndarray:
    """Decimal seconds (``12.345``) → whole milliseconds, rounded to nearest."""
    values = _unset_to_zero(values, unset)
    seconds = parse_numbers(" ".join(values), len(values), np.float64)
    if not np.isfinite(seconds).all() or (seconds < 0).any():
        raise ValueError("duration is negative or not a number")
    return np.rint(seconds * 1000.0).astype(np.int64)


#: SiLK's longest duration, a 32-bit count of milliseconds (49.7 days); longer ones are capped
MAX_ELAPSED_MS = 0xFFFF_FFFF


def elapsed_ms(ms: np.ndarray) -> np.ndarray:
    """Durations as a flow stores them: capped at SiLK's maximum, never wrapped around.

    A Zeek or Argus record may last longer than SiLK can say; the ``elapsed_ms``
    column would wrap it to a short flow. Negative (an end before the start) is an error.

    >>> elapsed_ms(np.array([1500, 2**40])).tolist()
    [1500, 4294967295]
    """
    if (ms < 0).any():
        raise ValueError("the flow ends before it starts")
    return np.minimum(ms, MAX_ELAPSED_MS)


def epoch_to_ms(values: Sequence[str]) -> np.ndarray:
    """UNIX seconds with a fraction (``1434553200.013``) → ms, truncated like SiLK."""
    seconds = parse_numbers(" ".join(values), len(values), np.float64)
    if not np.isfinite(seconds).all():
        raise ValueError("time is not a number")
    # round to the microsecond first so 0.013 stored as 0.01299999 still reads 13 ms
    return np.floor(np.round(seconds * 1000.0, 3)).astype(np.int64)


def datetimes_to_ms(values: Sequence[str]) -> np.ndarray:
    """Calendar times (``2015/06/17T15:00:00.013``, ``2013/10/21 13:22:59.340835``) → ms, UTC.

    Sub-millisecond digits are truncated, as SiLK does when it stores Argus or
    Zeek times. Epoch seconds are accepted too (rwcut ``--timestamp-format=epoch``).
    """
    head = values[0].strip() if len(values) else ""
    if "-" not in head and "/" not in head:
        return epoch_to_ms(values)
    iso = [value.strip().replace("/", "-").replace(" ", "T") for value in values]
    return np.array(iso, dtype="datetime64[ms]").astype(np.int64)


def protocols(values: Sequence[str]) -> np.ndarray:
    """Protocol numbers or names (``tcp``, ``TCP``, ``ipv6-icmp``) → ``u1``."""

    def convert(text: str) -> int:
        text = text.strip().lower()
        number = int(text) if text.isdigit() else PROTOCOL_NUMBERS[text]
        if number > 255:
            raise ValueError(f"protocol {number} > 255")
        return number

    try:
        return map_distinct(values, convert, "u1")
    except KeyError as exc:
        raise ValueError(f"unknown protocol name {exc}") from None


def silk_flags(values: Sequence[str]) -> np.ndarray:
    """rwcut TCP flags: letters in any order and padding (``FS PA  ``) or an integer."""
    return map_distinct(values, parse_tcp_flags, "u1")


def attributes(values: Sequence[str]) -> np.ndarray:
    """rwcut ``attributes`` letters (``T``, ``C``, ``F``, ``S``) → tcp_state bits."""
    return map_distinct(values, parse_attributes, "u1")


def nfdump_flags(values: Sequence[str]) -> np.ndarray:
    """nfdump's positional flags (``...A.R..`` = CEUAPRSF, dot = unset) → SiLK bits."""

    def convert(text: str) -> int:
        text = text.strip()
        if len(text) != 8:
            return int(text, 0)
        return sum(1 << (7 - i) for i, char in enumerate(text) if char != ".")

    return map_distinct(values, convert, "u1")


def addresses(values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """IP text → (``V16`` column, ``ipv6`` column), IPv4 dotted quads parsed in C.

    The IPv4 entries of a chunk become one string of octets for
    :func:`parse_numbers`; only IPv6 entries go through ``ipaddress``.
    """
    is_v6 = np.fromiter((":" in value for value in values), dtype=bool, count=len(values))
    v4 = [v for v, six in zip(values, is_v6.tolist(), strict=True) if not six]
    out = np.zeros(len(values), dtype="V16")
    if v4:
        if any(value.count(".") != 3 for value in v4):
            raise ValueError("malformed IPv4 address")
        octets = parse_numbers(" ".join(v4).replace(".", " "), 4 * len(v4), np.int64)
        if (octets < 0).any() or (octets > 255).any():
            raise ValueError("IPv4 octet out of range")
        quads = octets.reshape(-1, 4)
        as_int = (quads[:, 0] << 24) | (quads[:, 1] << 16) | (quads[:, 2] << 8) | quads[:, 3]
        out[~is_v6] = ipv4_to_v16(as_int.astype(np.uint32))
    if is_v6.any():
        six = [v for v, flag in zip(values, is_v6.tolist(), strict=True) if flag]
        out[is_v6] = [parse_ip(text)[0] for text in six]
    return out, is_v6
