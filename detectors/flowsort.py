"""rwsort's sort keys: the order of a flow batch by fields, in one ``np.lexsort``.

Field names and numbers are rwsort's (``--fields=stime,10,1-5``; names case
insensitive). Addresses sort as 128-bit numbers with IPv4 kept IPv4-mapped, so a
mixed file orders as SiLK orders it; sensors and class/type by their ids. The
sort is stable: records with equal keys keep their input order (SiLK leaves that
order unspecified), and ``--reverse`` reverses the keys, not the ties.

Examples
--------
>>> batch = make_batch(dport=[80, 22, 80], bytes=[5, 9, 1])
>>> sort_order(batch, parse_sort_fields("dport,bytes")).tolist()
[1, 2, 0]
>>> sort_order(batch, parse_sort_fields("4"), reverse=True).tolist()
[0, 2, 1]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from silkwatch.detectors.schema import FlowBatch, ip_words, make_batch  # noqa: F401 - the doctests use it

KeyColumns = Callable[[FlowBatch], list[np.ndarray]]


def _column(name: str) -> KeyColumns:
    return lambda batch: [batch[name]]


def _address(name: str) -> KeyColumns:
    return lambda batch: list(ip_words(batch[name]))


def _icmp_part(shift: int) -> KeyColumns:
    def key(batch: FlowBatch) -> list[np.ndarray]:
        icmp = (batch["proto"] == 1) | ((batch["proto"] == 58) & batch["ipv6"])
        return [np.where(icmp, (batch["dport"] >> shift) & 0xFF, 0)]

    return key


def _end_ms(batch: FlowBatch) -> list[np.ndarray]:
    return [batch["stime_ms"] + batch["elapsed_ms"].astype(np.int64)]


#: rwsort field → (numbers, names) and the columns it sorts by, most significant first
_FIELDS: list[tuple[tuple[int, ...], tuple[str, ...], KeyColumns]] = [
    ((1,), ("sip",), _address("sip")),
    ((2,), ("dip",), _address("dip")),
    ((3,), ("sport",), _column("sport")),
    ((4,), ("dport",), _column("dport")),
    ((5,), ("protocol", "proto"), _column("proto")),
    ((6,), ("packets", "pkts"), _column("packets")),
    ((7,), ("bytes",), _column("bytes")),
    ((8,), ("flags",), _column("flags")),
    ((9, 22), ("stime", "stime+msec"), _column("stime_ms")),
    ((10, 24), ("duration", "dur+msec"), _column("elapsed_ms")),
    ((11, 23), ("etime", "etime+msec"), _end_ms),
    ((12,), ("sensor",), _column("sensor")),
    ((13,), ("in",), _column("input")),
    ((14,), ("out",), _column("output")),
    ((15,), ("nhip",), _address("nhip")),
    ((20, 21), ("class", "type"), _column("flowtype")),
    ((25,), ("icmptypecode",), lambda b: _icmp_part(8)(b) + _icmp_part(0)(b)),
    ((), ("itype",), _icmp_part(8)),
    ((), ("icode",), _icmp_part(0)),
    ((26,), ("initialflags",), _column("init_flags")),
    ((27,), ("sessionflags",), _column("rest_flags")),
    ((28,), ("attributes",), _column("tcp_state")),
    ((29,), ("application",), _column("application")),
]
_BY_NUMBER = {number: key for numbers, _, key in _FIELDS for number in numbers}
_BY_NAME = {name: key for _, names, key in _FIELDS for name in names}


def parse_sort_fields(text: str) -> list[KeyColumns]:
    """``--fields=stime,10,1-5`` → key functions, primary first (ValueError if unknown).

    >>> len(parse_sort_fields("stime,10,1-5"))
    7
    """
    keys: list[KeyColumns] = []
    for item in text.split(","):
        item = item.strip()
        low, dash, high = item.partition("-")
        if low.isdigit() and (not dash or high.isdigit()):
            numbers = range(int(low), int(high or low) + 1)
            if not numbers:
                raise ValueError(f"the range {item!r} is reversed")
            missing = [n for n in numbers if n not in _BY_NUMBER]
            if missing:
                raise ValueError(f"no sort field number {missing[0]}")
            keys.extend(_BY_NUMBER[n] for n in numbers)
            continue
        key = _BY_NAME.get(item.lower())
        if key is None:
            matches = [name for name in _BY_NAME if name.startswith(item.lower())]
            if len({id(_BY_NAME[name]) for name in matches}) != 1:
                raise ValueError(f"unknown or ambiguous sort field {item!r}")
            key = _BY_NAME[matches[0]]
        keys.append(key)
    if not keys:
        raise ValueError("no sort field given")
    return keys


def sort_order(
    batch: FlowBatch, keys: Sequence[KeyColumns], *, reverse: bool = False
) -> np.ndarray:
    """Row indices that sort ``batch`` by ``keys`` (stable; ``reverse``: largest first)."""
    columns = [column for key in keys for column in key(batch)]
    if reverse:
        # a stable descending sort: ascending on the complement keeps ties in input order
        columns = [_descending(column) for column in columns]
    return np.lexsort(columns[::-1]) if columns else np.arange(len(batch))


def _descending(column: np.ndarray) -> np.ndarray:
    if column.dtype.kind == "u":
        return np.iinfo(column.dtype).max - column
    return -column.astype(np.int64)
