"""rwuniq / rwstats group-by on flow batches, streamable and exact.

Records are grouped by a tuple of SiLK key fields (``sIP``, ``dPort``,
``protocol``...) and each group ("bin", in SiLK's words) gets aggregate
values: record count, byte and packet sums, earliest sTime, latest eTime and
exact distinct counts. The state follows the quix triple plus ``merge``
(``empty / update / merge / result``) so a file, a pipe or a Kafka partition
is processed batch by batch and partial states from several workers add up
to the very numbers of one pass over everything.

Grouping never loops over records in Python: each key field becomes one or
two ``uint64`` words (IPs through :func:`~silkwatch.detectors.schema.ip_words`, or one
32-bit word when a batch holds only IPv4), the words are shifted to their
minimum and packed into as few 64-bit words as their value ranges allow, then
grouped by a ``bincount`` over a compact key space, a hash table over one
word, or ``np.lexsort`` on several words. Groups come
out sorted by key, which is rwuniq's ``--sort-output`` order (IPv4 before
IPv6, as SiLK sorts IPv4-mapped addresses).

Distinct counts stay exact across batches because the state keeps the sorted
unique (bin, value) pairs rather than a count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.grouping import group_rows, key_words
from silkwatch.detectors.schema import (
    FLOWTYPE_UNKNOWN,
    FlowBatch,
    empty_batch,
    ip_words,
)

#: SiLK key field → (title, FLOW_DTYPE column); sTime/eTime/duration are whole
#: seconds and class is derived from the flowtype, as rwuniq prints them.
KEY_FIELDS: dict[str, tuple[str, str]] = {
    "sip": ("sIP", "sip"),
    "dip": ("dIP", "dip"),
    "sport": ("sPort", "sport"),
    "dport": ("dPort", "dport"),
    "protocol": ("protocol", "proto"),
    "packets": ("packets", "packets"),
    "bytes": ("bytes", "bytes"),
    "flags": ("flags", "flags"),
    "stime": ("sTime", "stime_ms"),
    "duration": ("duration", "elapsed_ms"),
    "etime": ("eTime", "stime_ms"),
    "sensor": ("sensor", "sensor"),
    "class": ("class", "flowtype"),
    "type": ("type", "flowtype"),
    "in": ("in", "input"),
    "out": ("out", "output"),
    "nhip": ("nhIP", "nhip"),
    "application": ("application", "application"),
    "itype": ("iType", "dport"),
    "icode": ("iCode", "dport"),
    # the times in milliseconds (rwuniq --bin-time below a second)
    "stime_ms": ("sTime", "stime_ms"),
    "etime_ms": ("eTime", "stime_ms"),
    "duration_ms": ("duration", "elapsed_ms"),
    # the flowrate plug-in's fields (rates in thousandths, see flowrate_milli)
    "pckts/sec": ("pckts/sec", "packets"),
    "bytes/sec": ("bytes/sec", "bytes"),
    "bytes/packet": ("bytes/packet", "bytes"),
    "payload-bytes": ("payload-bytes", "bytes"),
    "payload-rate": ("payload-rate", "bytes"),
}
#: the int-ext-fields plug-in's keys: the internal and external side of in/out flows
INT_EXT_FIELDS = {
    "ext-ip": ("ext-ip", "sip"),
    "ext-port": ("ext-port", "sport"),
    "int-ip": ("int-ip", "sip"),
    "int-port": ("int-port", "sport"),
}
KEY_FIELDS.update(INT_EXT_FIELDS)
#: flowtypes whose source is external (twoway all/in, all/inweb) and internal (out, outweb)
INCOMING_FLOWTYPES = (0, 2)
OUTGOING_FLOWTYPES = (1, 3)
#: key fields computed by the flowrate plug-in's formulas, and the columns they read
FLOWRATE_FIELDS = frozenset(
    {"pckts/sec", "bytes/sec", "bytes/packet", "payload-bytes", "payload-rate"}
)
_FLOWRATE_INPUTS = {"packets", "bytes", "elapsed_ms", "proto", "ipv6"}
#: iType / iCode key of a record that is not ICMP (SiLK's: printed empty when the
#: protocol key says the bin is not ICMP)
NOT_ICMP = 0
_ALIASES = {
    "proto": "protocol",
    "pkts": "packets",
    "dur": "duration",
    "nexthopip": "nhip",
    "stime+msec": "stime_ms",
    "etime+msec": "etime_ms",
    "dur+msec": "duration_ms",
}
#: rwuniq/rwstats field numbers (rwcut's)
FIELD_NUMBERS = {
    1: "sip",
    2: "dip",
    3: "sport",
    4: "dport",
    5: "protocol",
    6: "packets",
    7: "bytes",
    8: "flags",
    9: "stime",
    10: "duration",
    11: "etime",
    12: "sensor",
    13: "in",
    14: "out",
    15: "nhip",
    19: "application",
    20: "class",
    21: "type",
    22: "stime_ms",
    23: "etime_ms",
    24: "duration_ms",
    25: "itype",
    26: "icode",
}
IP_FIELDS = frozenset({"sip", "dip", "nhip", "ext-ip", "int-ip"})
TIME_FIELDS = frozenset({"stime", "etime"})

#: SiLK value name → title; ``distinct:FIELD`` (and ``sIP-Distinct``) work for any key field
VALUE_TITLES: dict[str, str] = {
    "records": "Records",
    "bytes": "Bytes",
    "packets": "Packets",
    "stime-earliest": "sTime-Earliest",
    "etime-latest": "eTime-Latest",
}
#: values whose rwstats percentage is taken of the sum over all bins
SUMMABLE_VALUES = frozenset({"records", "bytes", "packets"})


class GroupByError(SilkwatchError, ValueError):
    """An unknown ``--fields`` / ``--values`` name, or a value that cannot rank bins."""

    reason = "bad_group_spec"


def parse_fields(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """SiLK key field names (case-insensitive, comma-separated) → canonical names.

    Examples
    --------
    >>> parse_fields("sIP,Proto,dPort")
    ('sip', 'protocol', 'dport')
    """
    names = text.split(",") if isinstance(text, str) else list(text)
    fields: tuple[str, ...] = ()
    for name in (n.strip() for n in names if n.strip()):
        low, dash, high = name.partition("-")
        if low.isdigit() and (not dash or high.isdigit()):
            numbers = range(int(low), int(high or low) + 1)
            if any(n not in FIELD_NUMBERS for n in numbers):
                raise GroupByError(f"group-by: no field numbered in {name!r}")
            fields += tuple(FIELD_NUMBERS[n] for n in numbers)
        elif name.lower() == "icmptypecode":
            fields += ("itype", "icode")
        else:
            fields += (_field_name(name),)
    if not fields:
        raise GroupByError("group-by: --fields needs at least one key field")
    if len(set(fields)) != len(fields):
        raise GroupByError(f"group-by: a key field is repeated in {','.join(names)}")
    return fields


def parse_values(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """SiLK value names → canonical names (``sIP-Distinct`` becomes ``distinct:sip``).

    Examples
    --------
    >>> parse_values("Records,sIP-Distinct,distinct:dPort,bytes")
    ('records', 'distinct:sip', 'distinct:dport', 'bytes')
    """
    names = text.split(",") if isinstance(text, str) else list(text)
    values = []
    for name in (n.strip() for n in names if n.strip()):
        lower = name.lower()
        if lower in VALUE_TITLES:
            values.append(lower)
        elif lower == "flows":
            values.append("records")
        elif lower.startswith("distinct:"):
            values.append("distinct:" + _field_name(name.split(":", 1)[1]))
        elif lower.endswith("-distinct"):
            values.append("distinct:" + _field_name(name[: -len("-distinct")]))
        else:
            known = ", ".join([*VALUE_TITLES.values(), "sIP-Distinct", "distinct:FIELD"])
            raise GroupByError(f"group-by: unknown value {name!r}; choose from {known}")
    return tuple(values) or ("records",)


def value_title(value: str) -> str:
    """The column title SiLK prints for a value (``distinct:sip`` → ``sIP-Distinct``)."""
    if value.startswith("distinct:"):
        return KEY_FIELDS[value.split(":", 1)[1]][0] + "-Distinct"
    return VALUE_TITLES[value]


def _field_name(name: str) -> str:
    lower = name.strip().lower()
    lower = _ALIASES.get(lower, lower)
    if lower not in KEY_FIELDS:
        raise GroupByError(
            f"group-by: unknown field {name.strip()!r}; choose from "
            + ", ".join(title for title, _ in KEY_FIELDS.values())
        )
    return lower


def is_ipv6(column: np.ndarray) -> np.ndarray:
    """Which 16-byte addresses of a key column are IPv6 (not IPv4-mapped).

    A group key keeps only the address, not the record's ``ipv6`` flag, so the
    family is read back from the bytes, as SiLK does for mixed output.

    Examples
    --------
    >>> from silkwatch.detectors.schema import parse_ips
    >>> is_ipv6(parse_ips(["10.0.0.1", "2001:db8::1", "::"])[0]).tolist()
    [False, True, True]
    """
    high, low = ip_words(column)
    return (high != 0) | ((low >> np.uint64(32)) != 0xFFFF)


@dataclass(frozen=True)
class GroupState:
    """Partial group-by result: what a table stores and what :func:`merge` adds.

    ``keys`` holds one array per key field with one row per bin, sorted by
    key; ``aggregates`` the per-bin sums/extremes the values need;
    ``distinct`` per field the sorted unique (bin index, value words) pairs.
    """

    fields: tuple[str, ...]
    values: tuple[str, ...]
    keys: dict[str, np.ndarray]
    records: np.ndarray  # int64 per bin
    aggregates: dict[str, np.ndarray] = field(default_factory=dict)
    distinct: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)


@dataclass(frozen=True)
class GroupTable:
    """Final bins: key columns and value columns in the order asked for.

    ``totals`` holds, per value, what rwstats divides by: the sum over all
    bins for records/bytes/packets, the number of distinct values over the
    whole input for distinct counts.
    """

    fields: tuple[str, ...]
    values: tuple[str, ...]
    keys: dict[str, np.ndarray]
    columns: dict[str, np.ndarray]
    totals: dict[str, int]
    input_records: int

    def __len__(self) -> int:
        return len(next(iter(self.keys.values())))

    def take(self, rows: np.ndarray) -> GroupTable:
        """The same table restricted to (and ordered by) ``rows``."""
        return GroupTable(
            self.fields,
            self.values,
            {name: column[rows] for name, column in self.keys.items()},
            {name: column[rows] for name, column in self.columns.items()},
            self.totals,
            self.input_records,
        )


def empty(fields: str | tuple[str, ...], values: str | tuple[str, ...] = "records") -> GroupState:
    """An empty state grouping by ``fields`` and computing ``values`` (SiLK names).

    Examples
    --------
    >>> s = empty("sIP,dPort", "bytes,dIP-Distinct")
    >>> s.fields, s.values, len(s)
    (('sip', 'dport'), ('bytes', 'distinct:dip'), 0)
    """
    key_fields, value_names = parse_fields(fields), parse_values(values)
    return _batch_state(key_fields, value_names, empty_batch(0))


def columns_read(state: GroupState) -> frozenset[str]:
    """The batch columns grouping by ``state``'s fields and values reads.

    Examples
    --------
    >>> sorted(columns_read(empty("sip", "bytes,etime-latest")))
    ['bytes', 'elapsed_ms', 'sip', 'stime_ms']
    """
    fields = [*state.fields, *(v.split(":", 1)[1] for v in state.values if ":" in v)]
    columns = {KEY_FIELDS[name][1] for name in fields}
    columns |= {"elapsed_ms"} if {"etime", "etime_ms"} & set(fields) else set()
    columns |= {"proto", "ipv6"} if {"itype", "icode"} & set(fields) else set()
    columns |= _FLOWRATE_INPUTS if FLOWRATE_FIELDS & set(fields) else set()
    if INT_EXT_FIELDS.keys() & set(fields):
        columns |= {"flowtype", "sip", "dip", "sport", "dport", "ipv6", "proto"}
    for value in state.values:
        columns |= _AGGREGATE_INPUTS.get(_AGGREGATE_OF.get(value, ""), set())
    return frozenset(columns)


def update(state: GroupState, batch: FlowBatch) -> GroupState:
    """``state`` with the flows of ``batch`` added; neither argument is modified.

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> dips = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    >>> b = make_batch(proto=[6, 17, 6], bytes=[100, 50, 7], dip=dips)
    >>> t = result(update(empty("protocol", "records,bytes,dIP-Distinct"), b))
    >>> t.keys["protocol"].tolist(), t.columns["bytes"].tolist(), t.columns["distinct:dip"].tolist()
    ([6, 17], [107, 50], [2, 1])
    """
    return merge(state, _batch_state(state.fields, state.values, batch))


def merge(a: GroupState, b: GroupState, *more: GroupState) -> GroupState:
    """Partial states added together, as if their batches had been one.

    Merging many states at once costs one grouping pass instead of one per pair.

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> s = empty("dPort", "records,sIP-Distinct")
    >>> x = update(s, make_batch(dport=[53, 53], sip=["10.0.0.1", "10.0.0.2"]))
    >>> y = update(s, make_batch(dport=[53, 80], sip=["10.0.0.2", "10.0.0.9"]))
    >>> t = result(merge(x, y))
    >>> t.keys["dport"].tolist(), t.columns["records"].tolist(), t.columns["distinct:sip"].tolist()
    ([53, 80], [3, 1], [2, 1])
    """
    states = [s for s in (a, b, *more) if len(s)] or [a]
    if len(states) == 1:
        return states[0]
    if any((s.fields, s.values) != (a.fields, a.values) for s in states):
        raise GroupByError("group-by: cannot merge states with different fields or values")
    keys = {name: np.concatenate([s.keys[name] for s in states]) for name in a.fields}
    inverse, first, bins, _ = group_rows([w for name in a.fields for w in key_words(keys[name])])
    aggregates = {}
    for name in a.aggregates:
        joined = np.concatenate([s.aggregates[name] for s in states])
        aggregates[name] = _reduce(name, inverse, joined, bins)
    offsets = np.cumsum([0] + [len(s) for s in states])
    distinct = {}
    for name in a.distinct:
        owners = np.concatenate(
            [inverse[offsets[i] + s.distinct[name][0]] for i, s in enumerate(states)]
        )
        words = np.concatenate([s.distinct[name][1] for s in states])
        distinct[name] = _unique_pairs(owners, words)
    return GroupState(
        a.fields,
        a.values,
        {name: column[first] for name, column in keys.items()},
        _sum_exact(inverse, np.concatenate([s.records for s in states]), bins).astype(np.int64),
        aggregates,
        distinct,
    )


def result(state: GroupState) -> GroupTable:
    """The bins with their values, sorted by key (rwuniq ``--sort-output``)."""
    columns, totals = {}, {"records": int(state.records.sum())}
    for value in state.values:
        if value == "records":
            columns[value] = state.records
        elif value.startswith("distinct:"):
            owners, words = state.distinct[value]
            columns[value] = np.bincount(owners, minlength=len(state)).astype(np.int64)
            totals[value] = group_rows(list(words.T)).count if len(words) else 0
        else:
            columns[value] = state.aggregates[_AGGREGATE_OF[value]]
            if value in SUMMABLE_VALUES:
                totals[value] = int(columns[value].sum(dtype=np.uint64))
    return GroupTable(
        state.fields, state.values, state.keys, columns, totals, int(state.records.sum())
    )


@dataclass(frozen=True)
class TopBins:
    """rwstats' answer: the chosen bins in rank order and their percentages.

    ``percent`` is each bin's share of ``total`` and ``cumulative_percent``
    its running sum (NaN for values that have no total, such as times);
    ``threshold`` is the absolute cut-off used by ``--percentage`` or
    ``--threshold`` (``None`` for ``--count``).
    """

    table: GroupTable
    value: str
    bins: int  # bins in the whole input
    total: int | None
    percent: np.ndarray
    cumulative_percent: np.ndarray
    threshold: int | None
    bottom: bool


def top(
    table: GroupTable,
    value: str | None = None,
    *,
    count: int | None = None,
    percentage: float | None = None,
    threshold: float | None = None,
    bottom: bool = False,
) -> TopBins:
    """The top (or bottom) bins by ``value``, limited as rwstats does.

    Exactly one of ``count`` (N bins), ``percentage`` (bins holding at least
    P % of the total; the cut-off is truncated to an integer like SiLK's) or
    ``threshold`` (bins with value >= X, or <= X with ``bottom``) may be given;
    none means every bin. Ties are ranked by key, which is one of the orders
    rwstats may print.

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> b = make_batch(dport=[53, 53, 53, 80, 443, 443], bytes=[1, 1, 1, 10, 2, 2])
    >>> t = top(result(update(empty("dPort", "records"), b)), count=2)
    >>> t.table.keys["dport"].tolist(), t.percent.round(2).tolist(), t.total
    ([53, 443], [50.0, 33.33], 6)
    """
    value = parse_values(value)[0] if value else table.values[0]
    if value not in table.columns:
        raise GroupByError(f"rwstats: value {value_title(value)!r} is not among --values")
    if sum(limit is not None for limit in (count, percentage, threshold)) > 1:
        raise GroupByError("rwstats: give only one of --count, --percentage, --threshold")
    column = table.columns[value]
    rank_key = column if bottom else ~column  # ~ reverses integer order exactly
    total = table.totals.get(value)
    cut = None
    if percentage is not None:
        if total is None:
            raise GroupByError(f"rwstats: --percentage needs a summable value, not {value!r}")
        cut = int(percentage * total / 100.0)
    elif threshold is not None:
        cut = int(threshold)
    if cut is not None:
        rows = np.flatnonzero(column <= cut if bottom else column >= cut)
    elif count is not None and count < len(column):
        rows = np.argpartition(rank_key, count - 1)[:count] if count > 0 else np.zeros(0, int)
    else:
        rows = np.arange(len(column))
    rows = np.sort(rows)  # ascending key order, so ties stay in key order
    ranked = rows[np.argsort(rank_key[rows], kind="stable")]
    chosen = table.take(ranked)
    if total:
        percent = 100.0 * chosen.columns[value].astype(np.float64) / total
    else:
        percent = np.full(len(ranked), np.nan)
    return TopBins(chosen, value, len(table), total, percent, np.cumsum(percent), cut, bottom)


# --- internals -------------------------------------------------------------

_AGGREGATE_OF = {
    "bytes": "bytes",
    "packets": "packets",
    "stime-earliest": "stime_min_ms",
    "etime-latest": "etime_max_ms",
}
#: aggregate → the batch columns it is computed from (see ``_batch_state``)
_AGGREGATE_INPUTS = {
    "bytes": {"bytes"},
    "packets": {"packets"},
    "stime_min_ms": {"stime_ms"},
    "etime_max_ms": {"stime_ms", "elapsed_ms"},
}


def _key_column(batch: FlowBatch, name: str) -> np.ndarray:
    """The values rwuniq groups on for one key field (native dtype, IPs ``V16``)."""
    column = batch[KEY_FIELDS[name][1]]
    if name == "stime":
        return column // 1000
    if name == "etime":
        return (column + batch["elapsed_ms"]) // 1000
    if name == "duration":
        return column // 1000
    if name == "etime_ms":
        return column + batch["elapsed_ms"]
    if name in INT_EXT_FIELDS:
        return int_ext_column(batch, name)
    if name == "payload-bytes":
        return payload_bytes(batch)
    if name in FLOWRATE_FIELDS:
        return flowrate_milli(name, batch)
    if name in ("itype", "icode"):
        icmp = (batch["proto"] == 1) | ((batch["proto"] == 58) & batch["ipv6"])
        part = column >> 8 if name == "itype" else column & 0xFF
        return np.where(icmp, part, NOT_ICMP).astype(np.uint16)
    if name == "class":
        # twoway site: every valid flowtype is in class "all" (0)
        return np.where(column == FLOWTYPE_UNKNOWN, FLOWTYPE_UNKNOWN, 0).astype(np.uint8)
    return column


def int_ext_column(batch: FlowBatch, name: str) -> np.ndarray:
    """int-ext-fields' ``ext-ip``, ``ext-port``, ``int-ip``, ``int-port`` of each flow.

    Incoming flows (``in``, ``inweb``) have the external host as source, outgoing ones
    (``out``, ``outweb``) as destination; other flows get zero, and so do ICMP ports.

    >>> from silkwatch.detectors.schema import make_batch
    >>> b = make_batch(sport=[53, 80, 1], dport=[999, 5000, 2], flowtype=[0, 1, 6])
    >>> int_ext_column(b, "ext-port").tolist(), int_ext_column(b, "int-port").tolist()
    ([53, 5000, 0], [999, 80, 0])
    """
    incoming = np.isin(batch["flowtype"], INCOMING_FLOWTYPES)
    outgoing = np.isin(batch["flowtype"], OUTGOING_FLOWTYPES)
    external = name.startswith("ext-")
    source, destination = ("sip", "dip") if name.endswith("-ip") else ("sport", "dport")
    out = np.zeros(len(batch), batch[source].dtype)
    take_source = incoming if external else outgoing
    take_destination = outgoing if external else incoming
    out[take_source] = batch[source][take_source]
    out[take_destination] = batch[destination][take_destination]
    if source == "sport":  # ICMP has no ports (its dPort holds type and code)
        out[(batch["proto"] == 1) | ((batch["proto"] == 58) & batch["ipv6"])] = 0
    return out


#: flowrate's assumed duration of a zero-length flow (400 µs, SiLK >= 3.16)
ZERO_DURATION_US = 400


def payload_bytes(batch: FlowBatch) -> np.ndarray:
    """flowrate's payload: bytes less a minimal IP header and TCP or UDP header per packet.

    >>> from silkwatch.detectors.schema import make_batch
    >>> b = make_batch(proto=[6, 17, 1], bytes=[504, 56, 504], packets=[9, 1, 9])
    >>> payload_bytes(b).tolist()
    [144, 28, 324]
    """
    header = np.where(batch["ipv6"], 40, 20).astype(np.uint64)
    proto = batch["proto"]
    header += np.where(proto == 6, 20, np.where(proto == 17, 8, 0)).astype(np.uint64)
    overhead = batch["packets"] * header
    return np.where(batch["bytes"] > overhead, batch["bytes"] - overhead, 0).astype(np.uint64)


def flowrate_milli(name: str, batch: FlowBatch) -> np.ndarray:
    """``pckts/sec``, ``bytes/sec``, ``bytes/packet`` or ``payload-rate`` in thousandths.

    SiLK's formulas and rounding (``flowrate.c``): a rate is ``v * 1e6 / µs`` with a zero
    duration counted as 400 µs, kept as ``(uint64)((rate + 0.5e-3) * 1e3)``; so keys group
    and print as rwuniq's (65.8125 bytes a packet is 65.813).

    >>> from silkwatch.detectors.schema import make_batch
    >>> b = make_batch(bytes=[2106, 203], packets=[32, 1], elapsed_ms=[1221, 0])
    >>> flowrate_milli("bytes/packet", b).tolist(), flowrate_milli("pckts/sec", b).tolist()
    ([65813, 203000], [26208, 2500000])
    """
    if name == "bytes/packet":
        top = batch["bytes"].astype(np.float64)
        below = batch["packets"].astype(np.float64)
        scale = 1.0
    else:
        volume = {"pckts/sec": "packets", "bytes/sec": "bytes"}.get(name)
        top = (batch[volume] if volume else payload_bytes(batch)).astype(np.float64)
        elapsed_us = batch["elapsed_ms"].astype(np.float64) * 1000.0
        below = np.where(batch["elapsed_ms"] == 0, float(ZERO_DURATION_US), elapsed_us)
        scale = 1e6
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(below > 0, top * scale / below, 0.0)
    return ((ratio + 0.5e-3) * 1e3).astype(np.uint64)


def _batch_words(batch: FlowBatch, name: str) -> list[np.ndarray]:
    """:func:`_words` of a key field, read straight from the batch where that is cheaper.

    For an address column holding only IPv4-mapped values (the common case)
    the last four bytes order the rows just like the full 128 bits: one word, not
    two. The addresses are copied out of the 104-byte rows first, in one strided
    pass: the checks and the word then read 16 contiguous bytes a row, where three
    strided passes over the rows cost twice as much (~60 against ~35 ms on 8 M flows).
    """
    if name not in IP_FIELDS or name in INT_EXT_FIELDS:
        return key_words(_key_column(batch, name))
    addresses = np.ascontiguousarray(batch[KEY_FIELDS[name][1]])
    words = addresses.view(">u4").reshape(-1, 4)
    if not addresses.view(np.uint64)[::2].any() and (words[:, 2] == 0xFFFF).all():
        return [words[:, 3].astype(np.uint64)]
    return key_words(addresses)


def _sum_exact(inverse: np.ndarray, values: np.ndarray, bins: int) -> np.ndarray:
    """Per-group sums of non-negative counters, exact even beyond float precision.

    ``bincount`` adds in float64, exact while every running sum stays below
    2**53; the grand total bounds them all, so check it (with a margin for
    its own rounding) instead of scanning the values first.
    """
    sums = np.bincount(inverse, weights=values, minlength=bins)
    if sums.sum() < 2.0**52:
        return sums.astype(np.uint64)
    out = np.zeros(bins, np.uint64)
    np.add.at(out, inverse, values.astype(np.uint64))
    return out


def _reduce(name: str, inverse: np.ndarray, values: np.ndarray, bins: int) -> np.ndarray:
    """Combine one aggregate column per group: sums, minima or maxima."""
    if name.endswith("_min_ms"):
        out = np.full(bins, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(out, inverse, values)
        return out
    if name.endswith("_max_ms"):
        out = np.full(bins, np.iinfo(np.int64).min, np.int64)
        np.maximum.at(out, inverse, values)
        return out
    return _sum_exact(inverse, values, bins)


def _unique_pairs(owners: np.ndarray, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique (bin index, value words) pairs."""
    if not len(owners):
        return owners.astype(np.int64), words
    # group ids follow the tuples' sorted order, so one row per group is already sorted
    first = group_rows([owners.astype(np.uint64), *words.T]).first
    return owners[first].astype(np.int64), words[first]


def _batch_state(fields: tuple[str, ...], values: tuple[str, ...], batch: FlowBatch) -> GroupState:
    """Group one batch into a partial state."""
    keys = {name: _key_column(batch, name) for name in fields}
    inverse, first, bins, sizes = group_rows(
        [w for name in fields for w in _batch_words(batch, name)]
    )
    aggregates = {}
    for value in values:
        name = _AGGREGATE_OF.get(value)
        if name == "stime_min_ms":
            column = batch["stime_ms"]
        elif name == "etime_max_ms":
            column = batch["stime_ms"] + batch["elapsed_ms"]
        elif name:
            column = batch[name]
        else:
            continue
        aggregates[name] = _reduce(name, inverse, column, bins)
    distinct = {}
    for value in values:
        if value.startswith("distinct:"):
            words = np.stack(key_words(_key_column(batch, value.split(":", 1)[1])), axis=1)
            distinct[value] = _unique_pairs(inverse, words)
    return GroupState(
        fields,
        values,
        {name: column[first] for name, column in keys.items()},
        sizes.astype(np.int64),
        aggregates,
        distinct,
    )
