"""rwfilter's partitioning tests as boolean masks over whole flow batches.

Each switch of ``rwfilter`` (``--sport=0-66,8080``, ``--saddress=10.1.x.1-5``,
``--stime=2009/02/12:00-2009/02/12:05``, ``--flags-all=S/SA`` ...) is parsed
once, here, into a :class:`Check`: a function from a batch to a mask. A record
passes when every check passes (the switches are AND'ed, as in rwfilter), so
:func:`partition` is one vectorised pass per switch, never a loop over records.

Integer lists and flag pairs become lookup tables (``table[column]``), address
tests compare the two 64-bit halves of the 16-byte address column, so IPv4
records (kept IPv4-mapped) and IPv6 records are matched the way SiLK matches
them: an IPv4 wildcard or CIDR block matches ``::ffff:a.b.c.d``.

Examples
--------
>>> batch = make_batch(sip=["10.1.2.3", "10.1.9.3"], dport=[80, 443], proto=[6, 6])
>>> tests = [parse_switch("saddress", "10.1.x.1-5"), parse_switch("dport", "0-100,8080")]
>>> partition(batch, tests).tolist()
[True, False]
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.schema import FlowBatch, ip_words, make_batch  # noqa: F401 - the doctests use it

#: TCP flag letters, bit 0 (FIN) first, as rwfilter spells them
FLAG_LETTERS = "FSRPAUEC"
#: attribute letters of ``--attributes`` and their tcp_state bits
ATTRIBUTE_BITS = {"T": 0x20, "C": 0x40, "F": 0x08, "S": 0x10}

Mask = np.ndarray


class FilterArgumentError(SilkwatchError):
    """A partitioning switch whose value rwfilter would refuse."""

    reason = "bad_argument"

    def __init__(self, switch: str, value: str, why: str) -> None:
        super().__init__(f"filter: --{switch}={value}: {why}")
        self.switch, self.value = switch, value


@dataclass(frozen=True)
class Check:
    """One partitioning switch, parsed: ``mask(batch)`` is True where a record passes."""

    switch: str
    value: str
    mask: Callable[[FlowBatch], Mask]


def partition(batch: FlowBatch, tests: Sequence[Check]) -> Mask:
    """Records passing every test (all True when there is none).

    >>> partition(make_batch(proto=[6, 17]), [parse_switch("protocol", "17")]).tolist()
    [False, True]
    """
    passed = np.ones(len(batch), dtype=bool)
    for test in tests:
        passed &= test.mask(batch)
    return passed


# --- integer lists and ranges ---------------------------------------------------------


def integer_table(text: str, max_value: int) -> np.ndarray:
    """An INTEGER_LIST (``1,2,5-10,99-``) as a lookup table of ``max_value + 1`` booleans.

    >>> np.flatnonzero(integer_table("1,3-5,250-", 255)).tolist()[:6]
    [1, 3, 4, 5, 250, 251]
    """
    table = np.zeros(max_value + 1, dtype=bool)
    for item in text.split(","):
        low_text, dash, high_text = item.strip().partition("-")
        if not low_text.isdigit() or (high_text and not high_text.isdigit()):
            raise ValueError(f"{item!r} is not a number or a range of numbers")
        low = int(low_text)
        high = int(high_text) if high_text else (max_value if dash else low)
        if low > high or high > max_value:
            raise ValueError(f"{item!r} is outside 0-{max_value} or reversed")
        table[low : high + 1] = True
    return table


def decimal_range(text: str) -> tuple[float, float]:
    """A range ``MIN-MAX``, ``MIN-`` (no upper limit) or ``VALUE`` (exactly) of numbers.

    >>> decimal_range("1.5-"), decimal_range("7")
    ((1.5, inf), (7.0, 7.0))
    """
    low_text, dash, high_text = text.strip().partition("-")
    try:
        low = float(low_text)
        high = float(high_text) if high_text else (np.inf if dash else low)
    except ValueError as exc:
        raise ValueError("expected MIN-MAX, MIN- or a single value") from exc
    if not np.isfinite(low) or np.isnan(high) or (high_text and not np.isfinite(high)):
        raise ValueError("expected finite numbers")
    if low < 0 or high < low:
        raise ValueError("expected non-negative MIN <= MAX")
    return low, high


def _seconds_to_ms_range(text: str) -> tuple[int, int]:
    """A DECIMAL_RANGE of seconds as whole milliseconds, the unit durations are stored in."""
    low, high = decimal_range(text)
    return int(np.ceil(round(low * 1000, 6))), int(min(np.floor(round(high * 1000, 6)), 2**62))


# --- addresses --------------------------------------------------------------------------

_V4_MAPPED_HIGH = np.uint64(0)
_V4_MAPPED_LOW = np.uint64(0xFFFF_0000_0000)


def _cidr_words(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, ...]:
    """(high, low, high mask, low mask) of a CIDR block in the 16-byte address space."""
    if network.version == 4:
        network = ipaddress.IPv6Network(
            (int(network.network_address) | 0xFFFF_0000_0000, network.prefixlen + 96)
        )
    value, bits = int(network.network_address), int(network.netmask)
    return value >> 64, value & (2**64 - 1), bits >> 64, bits & (2**64 - 1)


def parse_cidr_list(text: str) -> list[tuple[int, ...]]:
    """An IP_OR_CIDR_LIST (``10.0.1.0/24,10.0.2.3,FF01::/16``) as masked words.

    >>> [hex(w) for w in parse_cidr_list("10.0.0.0/8")[0]]
    ['0x0', '0xffff0a000000', '0xffffffffffffffff', '0xffffffffff000000']
    """
    blocks = []
    for item in text.split(","):
        try:
            blocks.append(_cidr_words(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError as exc:
            raise ValueError(f"{item!r} is not an IP address or CIDR block") from exc
    return blocks


def _in_blocks(column: np.ndarray, blocks: Sequence[tuple[int, ...]]) -> Mask:
    high, low = ip_words(column)
    found = np.zeros(len(column), dtype=bool)
    for net_high, net_low, mask_high, mask_low in blocks:
        found |= ((high & np.uint64(mask_high)) == np.uint64(net_high)) & (
            (low & np.uint64(mask_low)) == np.uint64(net_low)
        )
    return found


def _part_table(text: str, max_value: int, base: int) -> np.ndarray:
    """One octet or hexadectet of a wildcard: ``x``, a value, a range, or a list of them."""
    if text.lower() == "x":
        return np.ones(max_value + 1, dtype=bool)
    table = np.zeros(max_value + 1, dtype=bool)
    for item in text.split(","):
        low_text, _, high_text = item.partition("-")
        low = int(low_text, base)
        high = int(high_text, base) if high_text else low
        if not 0 <= low <= high <= max_value:
            raise ValueError(f"{item!r} is outside 0-{max_value:x} or reversed")
        table[low : high + 1] = True
    return table


def _v4_parts_to_hextets(octets: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Four octet tables → the eight hexadectet tables of ``::ffff:a.b.c.d``."""
    if len(octets) != 4:
        raise ValueError("an IPv4 wildcard has four parts")
    fixed = [np.arange(65536) == value for value in (0, 0, 0, 0, 0, 0xFFFF)]
    high = np.outer(octets[0], octets[1]).reshape(-1)
    low = np.outer(octets[2], octets[3]).reshape(-1)
    return [*fixed, high, low]


def parse_wildcard(text: str) -> list[np.ndarray]:
    """A SiLK IP wildcard (or a single address or CIDR block) as eight hexadectet tables.

    ``10.1.x.1-5``, ``10.1.2.3,5``, ``::ffff:0:aaab-ffff,aaaa,0-aaa9``, ``10.0.0.0/8``.

    >>> tables = parse_wildcard("10.1.x.1-5")
    >>> [int(t.sum()) for t in tables]
    [1, 1, 1, 1, 1, 1, 1, 1280]
    """
    text = text.strip()
    if "/" in text or not re.search(r"[x,\-]", text, re.IGNORECASE):
        words = _cidr_words(ipaddress.ip_network(text, strict=False))
        value = words[0] << 64 | words[1]
        prefix = bin(words[2] << 64 | words[3]).count("1")
        tables = []
        for index in range(8):
            shift = 112 - 16 * index
            bits = min(max(prefix - 16 * index, 0), 16)
            start = (value >> shift) & 0xFFFF
            table = np.zeros(65536, dtype=bool)
            table[start : start + (1 << (16 - bits))] = True
            tables.append(table)
        return tables
    if ":" not in text:
        octets = text.split(".")
        if len(octets) != 4:
            raise ValueError("an IPv4 wildcard has four parts")
        return _v4_parts_to_hextets([_part_table(part, 255, 10) for part in octets])
    head, _, tail = text.rpartition(":")
    parts = text.split(":")
    v4_tail = None
    if "." in tail:  # ::ffff:0.0.128-254,0-126,255,127.x
        v4_tail = _v4_parts_to_hextets([_part_table(p, 255, 10) for p in tail.split(".")])[6:]
        parts = [*head.split(":"), "", ""]
    if "" in parts[1:-1] or text.startswith("::") or text.endswith("::"):
        where = parts.index("") if parts[0] else 0
        left = [p for p in parts[:where] if p]
        right = [p for p in parts[where:] if p]
        if v4_tail is not None:
            right = right[: len(right)]
        missing = 8 - len(left) - len(right) - (2 if v4_tail is not None else 0)
        parts = left + ["0"] * missing + right
    elif v4_tail is not None:
        parts = parts[:6]
    tables = [_part_table(part, 0xFFFF, 16) for part in parts]
    if v4_tail is not None:
        tables += v4_tail
    if len(tables) != 8:
        raise ValueError("an IPv6 wildcard has eight parts")
    return tables


def _match_wildcard(column: np.ndarray, tables: Sequence[np.ndarray]) -> Mask:
    hextets = np.ascontiguousarray(column).view(">u2").reshape(-1, 8)
    found = np.ones(len(column), dtype=bool)
    for index, table in enumerate(tables):
        if table.all():
            continue
        found &= table[hextets[:, index]]
    return found


# --- times ------------------------------------------------------------------------------

_DATE = re.compile(
    r"^(\d{4})/(\d{1,2})/(\d{1,2})(?:[:T](\d{1,2})(?::(\d{1,2})(?::(\d{1,2})(?:\.(\d+))?)?)?)?$"
)
_EPOCH = re.compile(r"^(\d+)(?:\.(\d+))?$")
_UNIT_MS = (None, None, 86_400_000, 3_600_000, 60_000, 1000, 1)


def parse_time_bound(text: str, *, end: bool) -> int:
    """One end of a TIME_WINDOW as epoch milliseconds (UTC), SiLK's way.

    A start fills what is not given with zeros; an end with the last millisecond
    of the precision given (``2003/01/31:23`` → ``23:59:59.999``). Epoch seconds:
    an end without milliseconds gets ``.999``.

    >>> parse_time_bound("2009/02/12:00", end=True), parse_time_bound("1234396800", end=False)
    (1234400399999, 1234396800000)
    """
    text = text.strip()
    epoch = _EPOCH.match(text)
    if epoch:
        whole, fraction = int(epoch[1]), epoch[2]
        if fraction is None:
            return whole * 1000 + (999 if end else 0)
        return whole * 1000 + int((fraction + "000")[:3])
    match = _DATE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not YYYY/MM/DD[:HH[:MM[:SS[.sss]]]] or epoch seconds")
    year, month, day, hour, minute, second, fraction = match.groups()
    moment = datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
        tzinfo=UTC,
    )  # fmt: skip
    ms = int(moment.timestamp()) * 1000
    if fraction is not None:
        return ms + int((fraction + "000")[:3])
    given = 3 + sum(part is not None for part in (hour, minute, second))
    return ms + (_UNIT_MS[given - 1] - 1 if end else 0)


def parse_time_window(text: str) -> tuple[int, int]:
    """A TIME_WINDOW ``START[-END]`` as inclusive epoch milliseconds.

    Without an end, the window is the one millisecond of the start, as rwfilter.

    >>> parse_time_window("2003/01/31:23-2003/01/31:23")
    (1044054000000, 1044057599999)
    """
    start_text, _, end_text = text.strip().partition("-")
    start = parse_time_bound(start_text, end=False)
    end = parse_time_bound(end_text, end=True) if end_text else start
    if end < start:
        raise ValueError("the window ends before it starts")
    return start, end


# --- TCP flags and attributes -------------------------------------------------------------


def _letters(text: str, alphabet: dict[str, int]) -> int:
    value = 0
    for letter in text.upper():
        if letter not in alphabet:
            raise ValueError(f"unknown letter {letter!r}")
        value |= alphabet[letter]
    return value


_FLAG_BITS = {letter: 1 << bit for bit, letter in enumerate(FLAG_LETTERS)}


def high_mask_table(text: str, alphabet: dict[str, int] | None = None) -> np.ndarray:
    """A HIGH_MASK list (``S/SA,SA/SA``, ``/F``) as a table of the 256 byte values that pass.

    >>> np.flatnonzero(high_mask_table("S/SA")).tolist()[:4]
    [2, 3, 6, 7]
    """
    alphabet = alphabet or _FLAG_BITS
    table = np.zeros(256, dtype=bool)
    values = np.arange(256)
    for pair in text.split(","):
        high_text, slash, mask_text = pair.strip().partition("/")
        if not slash or not mask_text:
            raise ValueError(f"{pair!r} is not HIGH/MASK")
        high, mask = _letters(high_text, alphabet), _letters(mask_text, alphabet)
        if high & ~mask:
            raise ValueError(f"in {pair!r} HIGH is not a subset of MASK")
        table |= (values & mask) == high
    return table


# --- the switches ---------------------------------------------------------------------------


def _column_in(column: str, table: np.ndarray) -> Callable[[FlowBatch], Mask]:
    return lambda batch: table[batch[column]]


def _either_in(first: str, second: str, table: np.ndarray) -> Callable[[FlowBatch], Mask]:
    return lambda batch: table[batch[first]] | table[batch[second]]


def _icmp(batch: FlowBatch) -> Mask:
    proto = batch["proto"]
    return (proto == 1) | ((proto == 58) & batch["ipv6"])


def _icmp_part(shift: int, table: np.ndarray) -> Callable[[FlowBatch], Mask]:
    return lambda batch: _icmp(batch) & table[(batch["dport"] >> shift) & 0xFF]


def _in_range(values: Callable[[FlowBatch], np.ndarray], low: float, high: float):
    def mask(batch: FlowBatch) -> Mask:
        column = values(batch)
        return (column >= low) & (column <= high)

    return mask


def _end_ms(batch: FlowBatch) -> np.ndarray:
    return batch["stime_ms"] + batch["elapsed_ms"].astype(np.int64)


def _bytes_per_packet(batch: FlowBatch) -> np.ndarray:
    packets = batch["packets"].astype(np.float64)
    return np.divide(
        batch["bytes"].astype(np.float64), packets, out=np.zeros(len(batch)), where=packets > 0
    )


def _address_test(kind: str, columns: tuple[str, ...], text: str, negate: bool):
    if kind == "cidr":
        blocks = parse_cidr_list(text)

        def matches(column: np.ndarray) -> Mask:
            return _in_blocks(column, blocks)
    else:
        tables = parse_wildcard(text)

        def matches(column: np.ndarray) -> Mask:
            return _match_wildcard(column, tables)

    def mask(batch: FlowBatch) -> Mask:
        found = matches(ipv4_mapped(batch, columns[0]))
        for column in columns[1:]:
            found |= matches(ipv4_mapped(batch, column))
        return ~found if negate else found

    return mask


def ipv4_mapped(batch: FlowBatch, column: str) -> np.ndarray:
    """An address column with every IPv4 record's address IPv4-mapped (``::ffff:a.b.c.d``).

    SiLK files decode that way; a column a text reader left zero (the next hop of a
    Zeek flow) reads ``::`` and would not match ``0.0.0.0``.

    >>> b = make_batch(sip=["10.0.0.1"])
    >>> ipv4_mapped(b, "nhip").view(">u2")[5:].tolist()
    [65535, 0, 0]
    >>> parse_switch("nhcidr", "0.0.0.0/32").mask(b).tolist()
    [True]
    """
    addresses = np.ascontiguousarray(batch[column]).view(">u2").reshape(-1, 8)
    v4 = ~batch["ipv6"]
    if not v4.any() or (addresses[v4, 5] == 0xFFFF).all():
        return addresses.reshape(-1).view("V16")
    addresses = addresses.copy()
    addresses[v4, :5] = 0
    addresses[v4, 5] = 0xFFFF
    return addresses.reshape(-1).view("V16")


#: address switches: name → (cidr | address, columns)
_ADDRESS_SWITCHES = {
    "scidr": ("cidr", ("sip",)),
    "dcidr": ("cidr", ("dip",)),
    "any-cidr": ("cidr", ("sip", "dip")),
    "nhcidr": ("cidr", ("nhip",)),
    "saddress": ("address", ("sip",)),
    "daddress": ("address", ("dip",)),
    "any-address": ("address", ("sip", "dip")),
    "next-hop-id": ("address", ("nhip",)),
}
_PORT_SWITCHES = {"sport": "sport", "dport": "dport", "application": "application"}
_INDEX_SWITCHES = {"input-index": "input", "output-index": "output"}
_TIME_SWITCHES = {
    "stime": lambda batch: batch["stime_ms"],
    "etime": _end_ms,
}
_FLAG_SWITCHES = {
    "flags-all": "flags",
    "flags-initial": "init_flags",
    "flags-session": "rest_flags",
}
_LEGACY_FLAGS = {f"{name}-flag": letter for letter, name in zip("ASFRPUEC", (
    "ack", "syn", "fin", "rst", "psh", "urg", "ece", "cwr"), strict=True)}  # fmt: skip

#: every switch ``parse_switch`` knows (without the ``not-`` forms of the address ones)
SWITCHES = (
    *_ADDRESS_SWITCHES,
    *_PORT_SWITCHES,
    "aport",
    "protocol",
    "icmp-type",
    "icmp-code",
    *_INDEX_SWITCHES,
    "any-index",
    "stime",
    "etime",
    "active-time",
    "duration",
    "bytes",
    "packets",
    "bytes-per-packet",
    *_FLAG_SWITCHES,
    "tcp-flags",
    *_LEGACY_FLAGS,
    "attributes",
    "ip-version",
)


def _switch_mask(switch: str, text: str) -> Callable[[FlowBatch], Mask]:
    """The mask function of one switch (raises ValueError on a bad value)."""
    negate = switch.startswith("not-")
    name = switch[4:] if negate else switch
    if name in _ADDRESS_SWITCHES:
        kind, columns = _ADDRESS_SWITCHES[name]
        return _address_test(kind, columns, text, negate)
    if negate:
        raise ValueError("only address switches have a --not- form")
    if name in _PORT_SWITCHES:
        return _column_in(_PORT_SWITCHES[name], integer_table(text, 65535))
    if name == "aport":
        return _either_in("sport", "dport", integer_table(text, 65535))
    if name == "protocol":
        return _column_in("proto", integer_table(text, 255))
    if name in ("icmp-type", "icmp-code"):
        return _icmp_part(8 if name == "icmp-type" else 0, integer_table(text, 255))
    if name in _INDEX_SWITCHES:
        return _column_in(_INDEX_SWITCHES[name], integer_table(text, 65535))
    if name == "any-index":
        table = integer_table(text, 65535)
        return lambda batch: (
            table[np.minimum(batch["input"], 65535)] | table[np.minimum(batch["output"], 65535)]
        )
    if name in _TIME_SWITCHES:
        return _in_range(_TIME_SWITCHES[name], *parse_time_window(text))
    if name == "active-time":
        start, end = parse_time_window(text)
        return lambda batch: (batch["stime_ms"] <= end) & (_end_ms(batch) >= start)
    if name == "duration":
        return _in_range(lambda batch: batch["elapsed_ms"], *_seconds_to_ms_range(text))
    if name in ("bytes", "packets"):
        low, high = decimal_range(text)
        return _in_range(lambda batch: batch[name], np.ceil(low), np.floor(high))
    if name == "bytes-per-packet":
        return _in_range(_bytes_per_packet, *decimal_range(text))
    if name in _FLAG_SWITCHES:
        return _column_in(_FLAG_SWITCHES[name], high_mask_table(text))
    if name == "tcp-flags":
        bits = _letters(text, _FLAG_BITS)
        return lambda batch: (batch["flags"] & bits) != 0
    if name in _LEGACY_FLAGS:
        if text not in ("0", "1"):
            raise ValueError("expected 0 or 1")
        bit = _FLAG_BITS[_LEGACY_FLAGS[name]]
        return lambda batch: ((batch["flags"] & bit) != 0) == (text == "1")
    if name == "attributes":
        return _column_in("tcp_state", high_mask_table(text, ATTRIBUTE_BITS))
    if name == "ip-version":
        table = integer_table(text, 6)
        if table[[0, 1, 2, 3, 5]].any():
            raise ValueError("expected 4, 6 or 4,6")
        return lambda batch: np.where(batch["ipv6"], table[6], table[4])
    raise ValueError("not a partitioning switch")


def parse_switch(switch: str, text: str) -> Check:
    """One ``--SWITCH=VALUE`` of rwfilter as a :class:`Check`.

    >>> test = parse_switch("not-dcidr", "192.168.0.0/16")
    >>> test.mask(make_batch(dip=["192.168.4.4", "8.8.8.8"])).tolist()
    [False, True]
    """
    try:
        return Check(switch, text, _switch_mask(switch, text))
    except (ValueError, IndexError, OverflowError) as exc:  # what a malformed value raises
        raise FilterArgumentError(switch, text, str(exc)) from exc


def pass_limit(passed: Mask, already: int, limit: int | None) -> int:
    """How many records of a batch to read before the ``limit``-th pass (``--max-pass-records``).

    ``already`` records passed in earlier batches; the whole batch when the limit is not
    reached in it.

    >>> pass_limit(np.array([False, True, True, True]), already=1, limit=3)
    3
    """
    if limit is None:
        return len(passed)
    left = limit - already
    if left <= 0:
        return 0
    hits = np.flatnonzero(passed)
    return len(passed) if len(hits) < left else int(hits[left - 1]) + 1
