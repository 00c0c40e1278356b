"""Information elements, and one compiled decoding plan per template.

A template is a list of (element id, length, enterprise number). Its data records
all have the same layout, so a data set of N records decodes in one pass: the
plan is a ``FieldMoves`` program from the record layout into ``WIDE_DTYPE``
(``FLOW_DTYPE`` plus a few scratch columns: raw times, reverse counters, sampler
id, ICMP type/code), built once when the template arrives. The element numbers are
IANA's IPFIX registry, which NetFlow v9 shares for everything mapped here
(RFC 3954 §8, RFC 7012); reverse elements are RFC 5103's (enterprise 29305).

Integers of any length are read big-endian; lengths numpy has no type for
(reduced-size encoding: 3, 5, 6, 7 bytes) become one byte move per byte, and a
value longer than its column keeps its low-order bytes, as RFC 7011 §6.2 asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from silkwatch.connectors.fieldmoves import FieldMoves, Move
from silkwatch.connectors.fieldmoves import field as move_field
from silkwatch.detectors.schema import FLOW_DTYPE, FLOWTYPE_UNKNOWN, SENSOR_UNKNOWN

#: RFC 5103's private enterprise number for reverse information elements
REVERSE_PEN = 29305
#: an IPFIX field length that means "variable" (RFC 7011 §7)
VARLEN = 65535

_EXTRA = [
    ("t_start", "<u8", 104),  # raw start time, in the unit the template's element has
    ("t_end", "<u8", 112),
    ("rev_bytes", "<u8", 120),
    ("rev_packets", "<u8", 128),
    ("init_ms", "<u8", 136),  # systemInitTimeMilliseconds, for IPFIX sysUpTime times
    ("t_dur", "<u4", 144),  # flowDuration{Milli,Micro}seconds
    ("sampler", "<u4", 148),
    ("interval", "<u4", 152),  # samplingInterval carried in the data record itself
    ("icmp", "<u2", 156),  # type * 256 + code
    ("rev_flags", "u1", 158),
    ("rev_delta_ms", "<u4", 160),  # reverseFlowDeltaMilliseconds: reverse start - start
]
#: ``FLOW_DTYPE`` and scratch columns after it: what a template's moves fill
WIDE_DTYPE = np.dtype(
    {
        "names": [*FLOW_DTYPE.names, *(name for name, _, _ in _EXTRA)],
        "formats": [FLOW_DTYPE.fields[n][0] for n in FLOW_DTYPE.names] + [f for _, f, _ in _EXTRA],
        "offsets": [FLOW_DTYPE.fields[n][1] for n in FLOW_DTYPE.names] + [o for _, _, o in _EXTRA],
        "itemsize": 168,
    }
)
#: the move that copies the ``FLOW_DTYPE`` part of a wide record out
TO_FLOW = FieldMoves(WIDE_DTYPE.itemsize, FLOW_DTYPE.itemsize, [Move(0, 0, 0, 104, 104)])


class Time(IntEnum):
    """How a template gives a flow's start or end (one kind per template)."""

    NONE = 0
    UPTIME_MS = 1  # v5/v9 FIRST/LAST_SWITCHED: ms of sysUptime at export
    SECONDS = 2
    MILLISECONDS = 3
    NTP = 4  # dateTimeMicroseconds / dateTimeNanoseconds: NTP 32.32 fixed point
    DELTA_US = 5  # flowStart/EndDeltaMicroseconds: before the export time
    DURATION_MS = 6
    DURATION_US = 7
    SYSINIT_MS = 8  # IPFIX flowStart/EndSysUpTime: ms after systemInitTimeMilliseconds


#: element id → (wide column, kind) for the columns read as integers, by priority:
#: the first element of a column's list that a template has is the one used
_INT_COLUMNS: dict[str, list[int]] = {
    "bytes": [1, 85, 231, 23],  # octetDelta, octetTotal, ASA initiatorOctets, OUT_BYTES
    "packets": [2, 86, 298, 24],
    "proto": [4],
    "flags": [6],
    "sport": [7, 180, 182],  # sourceTransportPort, udp/tcp source port
    "dport": [11, 181, 183],
    "input": [10],
    "output": [14],
    "rev_bytes": [(REVERSE_PEN << 16) | 1],
    "rev_packets": [(REVERSE_PEN << 16) | 2],
    "rev_flags": [(REVERSE_PEN << 16) | 6],
    "rev_delta_ms": [(REVERSE_PEN << 16) | 21],
    "init_ms": [160],
    "sampler": [48, 302],  # samplerId / FLOW_SAMPLER_ID, selectorId
    "interval": [34],
}
_ADDRESS_COLUMNS: dict[str, tuple[int, int]] = {  # column → (IPv4 element, IPv6 element)
    "sip": (8, 27),
    "dip": (12, 28),
    "nhip": (15, 62),
}
_STARTS = {22: Time.UPTIME_MS, 150: Time.SECONDS, 152: Time.MILLISECONDS, 154: Time.NTP}
_STARTS |= {156: Time.NTP, 158: Time.DELTA_US}
_ENDS = {21: Time.UPTIME_MS, 151: Time.SECONDS, 153: Time.MILLISECONDS, 155: Time.NTP}
_ENDS |= {157: Time.NTP, 159: Time.DELTA_US, 161: Time.DURATION_MS, 162: Time.DURATION_US}
#: icmpTypeCodeIPv4/IPv6 (2 bytes); icmpType/CodeIPv4 and IPv6 (1 byte each)
_ICMP_TYPECODE = (32, 139)
_ICMP_TYPE, _ICMP_CODE = (176, 178), (177, 179)


@dataclass(frozen=True)
class FieldSpec:
    """One field of a template: element id, length in bytes, enterprise (0 = IANA)."""

    element: int
    length: int
    enterprise: int = 0

    @property
    def key(self) -> int:
        """The id this module's tables use: IANA ids as is, reverse ids tagged."""
        if self.enterprise == REVERSE_PEN:
            return (REVERSE_PEN << 16) | self.element
        return self.element if self.enterprise == 0 else -1


@dataclass
class Plan:
    """How one template's data records become wide flow records."""

    record_bytes: int  # fixed records; 0 if some field is variable-length
    moves: FieldMoves | None
    template_record: bytes
    start: Time = Time.NONE
    end: Time = Time.NONE
    ipv6: bool = False
    has_icmp: bool = False
    has_reverse: bool = False
    has_sampler: bool = False
    has_interval: bool = False
    has_init: bool = False
    #: the field lengths, for cutting variable-length records into fixed ones
    lengths: tuple[int, ...] = field(default=())
    #: what each fixed field is called in ``values_of`` (options records)
    fixed_keys: tuple[int, ...] = field(default=())

    @property
    def fixed_bytes(self) -> int:
        """Length of a record once its variable-length fields are cut out."""
        return sum(length for length in self.lengths if length != VARLEN)


def _int_moves(source: int, length: int, target: int, target_size: int) -> list[Move]:
    """Big-endian unsigned integer of ``length`` bytes → little-endian ``target_size``."""
    if length in (1, 2, 4, 8) and length <= target_size:
        return [move_field(source, np.dtype(f">u{length}"), target, np.dtype(f"<u{target_size}"))]
    keep = min(length, target_size)  # the low-order bytes: the last ones on the wire
    return [Move(source + length - 1 - i, target + i, 0, 1, 1) for i in range(keep)]


def _offset(name: str) -> int:
    return WIDE_DTYPE.fields[name][1]


def _size(name: str) -> int:
    return WIDE_DTYPE.fields[name][0].itemsize


def compile_plan(fields: list[FieldSpec]) -> Plan:
    """Build the decoding plan of a template.

    Variable-length fields are not moved (none is a flow column); their records
    are first cut down to the fixed fields (see ``decoder``), so the plan's
    offsets are those of the fixed fields alone.

    Examples
    --------
    >>> plan = compile_plan([FieldSpec(8, 4), FieldSpec(12, 4), FieldSpec(1, 3)])
    >>> plan.record_bytes, plan.ipv6
    (11, False)
    """
    positions: dict[int, tuple[int, int]] = {}  # key → (offset among fixed fields, length)
    offset = 0
    lengths = []
    keys = []
    for spec in fields:
        lengths.append(spec.length)
        if spec.length == VARLEN:
            continue
        keys.append(spec.key)
        if spec.key >= 0 and spec.key not in positions and spec.length:
            positions[spec.key] = (offset, spec.length)
        offset += spec.length
    fixed_bytes = offset
    moves: list[Move] = []
    for column, candidates in _INT_COLUMNS.items():
        for key in candidates:
            if key in positions:
                moves += _int_moves(*positions[key], _offset(column), _size(column))
                break
    ipv6 = _ADDRESS_COLUMNS["sip"][0] not in positions and _ADDRESS_COLUMNS["sip"][1] in positions
    for column, (v4, v6) in _ADDRESS_COLUMNS.items():
        wanted, size, at = (v6, 16, 0) if ipv6 else (v4, 4, 12)
        if positions.get(wanted, (0, 0))[1] == size:
            start = positions[wanted][0]
            moves.append(Move(start, _offset(column) + at, 0, size, size))
    start = next((kind for key, kind in _STARTS.items() if key in positions), Time.NONE)
    end = next((kind for key, kind in _ENDS.items() if key in positions), Time.NONE)
    for key, kind in _STARTS.items():
        if kind == start and key in positions:
            moves += _int_moves(*positions[key], _offset("t_start"), 8)
            break
    for key, kind in _ENDS.items():
        if kind == end and key in positions:
            column = "t_dur" if kind in (Time.DURATION_MS, Time.DURATION_US) else "t_end"
            moves += _int_moves(*positions[key], _offset(column), _size(column))
            break
    has_icmp = False
    for key in _ICMP_TYPECODE:
        if key in positions:
            moves += _int_moves(*positions[key], _offset("icmp"), 2)
            has_icmp = True
            break
    else:
        for type_key, code_key in zip(_ICMP_TYPE, _ICMP_CODE, strict=True):
            if type_key in positions:
                moves += _int_moves(*positions[type_key], _offset("icmp") + 1, 1)
                if code_key in positions:
                    moves += _int_moves(*positions[code_key], _offset("icmp"), 1)
                has_icmp = True
                break
    template = empty_wide_record(ipv6)
    has_init = 160 in positions
    if has_init and start == Time.UPTIME_MS:
        start = Time.SYSINIT_MS
        end = Time.SYSINIT_MS if end == Time.UPTIME_MS else end
    return Plan(
        record_bytes=0 if VARLEN in lengths else fixed_bytes,
        moves=FieldMoves(fixed_bytes, WIDE_DTYPE.itemsize, moves) if fixed_bytes else None,
        template_record=template,
        start=start,
        end=end,
        ipv6=ipv6,
        has_icmp=has_icmp,
        has_reverse=(REVERSE_PEN << 16) | 1 in positions or (REVERSE_PEN << 16) | 2 in positions,
        has_sampler=any(key in positions for key in _INT_COLUMNS["sampler"]),
        has_interval=34 in positions,
        has_init=has_init,
        lengths=tuple(lengths),
        fixed_keys=tuple(keys),
    )


def empty_wide_record(ipv6: bool) -> bytes:
    """What every wide record holds before its fields arrive.

    Unknown sensor and flowtype, IPv4-mapped address prefixes for an IPv4
    template (its moves fill only the last four bytes), the ``ipv6`` flag for an
    IPv6 one.
    """
    record = np.zeros(1, WIDE_DTYPE)
    record["sensor"] = SENSOR_UNKNOWN
    record["flowtype"] = FLOWTYPE_UNKNOWN
    record["ipv6"] = ipv6
    if not ipv6:
        raw = record.view(np.uint8)
        for column in _ADDRESS_COLUMNS:
            raw[_offset(column) + 10 : _offset(column) + 12] = 0xFF
    return record.tobytes()


def values_of(plan: Plan, record: bytes | memoryview) -> dict[int, int]:
    """The integer fields of one fixed-layout record as ``{element key: value}``.

    For options data (sampling rates, sampler ids), which is rare enough to read
    one record at a time.

    >>> plan = compile_plan([FieldSpec(48, 1), FieldSpec(34, 4)])
    >>> values_of(plan, bytes([3, 0, 0, 0, 100]))
    {48: 3, 34: 100}
    """
    values = {}
    offset = 0
    lengths = [length for length in plan.lengths if length != VARLEN]
    for key, length in zip(plan.fixed_keys, lengths, strict=True):
        if key >= 0 and 0 < length <= 8:
            values[key] = int.from_bytes(record[offset : offset + length], "big")
        offset += length
    return values
