"""Flow fields as rwcut prints them, and back.

One place for the text form of every SiLK field, so ``silkwatch cut``, the
other commands and the text importer render and parse the same way: TCP flags
as positional ``FSRPAUEC`` letters, attributes as ``TCFS``, times as
``2015/06/17T15:00:00.013`` UTC, sensors as ``S3`` (``?`` when unknown),
class/type names of the twoway site.

Examples
--------
>>> tcp_flags_text(30), tcp_flags_text(30, padded=False), parse_tcp_flags("S  A")
(' SRPA   ', 'SRPA', 18)
>>> format_time_ms(1434553200013), parse_time_ms("2015-06-17 15:00:00.013")
('2015/06/17T15:00:00.013', 1434553200013)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from silkwatch.connectors.silk.site import flowtype_names, sensor_name
from silkwatch.detectors import groupby
from silkwatch.detectors.schema import FlowBatch, ip_strings

FLAG_LETTERS = "FSRPAUEC"  # bit 0 (FIN) first
#: attribute letters in rwcut's order and their tcp_state bits
ATTRIBUTE_BITS = (("T", 0x20), ("C", 0x40), ("F", 0x08), ("S", 0x10))
TIMESTAMP_FORMATS = ("default", "iso", "epoch")

_PADDED_FLAGS = [
    "".join(c if v >> i & 1 else " " for i, c in enumerate(FLAG_LETTERS)) for v in range(256)
]
_PADDED_ATTRS = [
    "".join(c if v & bit else " " for c, bit in ATTRIBUTE_BITS).ljust(8) for v in range(256)
]
_EPOCH_TEXT = re.compile(r"^-?\d+(\.\d{1,3})?$")


def tcp_flags_text(value: int, *, padded: bool = True) -> str:
    """Flag letters; ``padded`` keeps each letter in its column (rwcut's table form)."""
    text = _PADDED_FLAGS[value & 0xFF]
    return text if padded else text.replace(" ", "")


def parse_tcp_flags(text: str) -> int:
    """``"FS PA"``, ``"SAF"`` (any order, any case) or ``"27"`` → flag bits."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    value = 0
    for letter in text.upper().replace(" ", ""):
        index = FLAG_LETTERS.find(letter)
        if index < 0:
            raise ValueError(f"unknown TCP flag {letter!r} in {text!r}")
        value |= 1 << index
    return value


def attributes_text(value: int, *, padded: bool = True) -> str:
    """Attribute letters ``TCFS`` of the tcp_state bits, positional when ``padded``."""
    text = _PADDED_ATTRS[value & 0xFF]
    return text if padded else text.replace(" ", "")


def parse_attributes(text: str) -> int:
    """``"T"``, ``" C  "``, ``"FS"`` → tcp_state attribute bits."""
    value, bits = 0, dict(ATTRIBUTE_BITS)
    for letter in text.upper().replace(" ", ""):
        if letter not in bits:
            raise ValueError(f"unknown attribute {letter!r} in {text!r}")
        value |= bits[letter]
    return value


def format_time_ms(ms: int, style: str = "default") -> str:
    """One timestamp as rwcut prints it (``default``, ``iso`` or ``epoch`` seconds)."""
    return format_times(np.array([ms], dtype=np.int64), style)[0]


def format_times(ms: np.ndarray, style: str = "default") -> list[str]:
    """Timestamps (ms since the epoch, UTC) as rwcut prints them, vectorised."""
    ms = np.asarray(ms, dtype=np.int64)
    if style == "epoch":
        return [f"{v // 1000}.{v % 1000:03d}" for v in ms.tolist()]
    text = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms")
    if style == "iso":
        return np.char.replace(text, "T", " ").tolist()
    return np.char.replace(text, "-", "/").tolist()


def second_times(ms: np.ndarray) -> list[str]:
    """Timestamps as SiLK's default text to the whole second (rwuniq's key times).

    >>> second_times(np.array([1434553200013]))
    ['2015/06/17T15:00:00']
    """
    return [t[:-4] for t in format_times(ms)]


def parse_time_ms(text: str) -> int:
    """``2015/06/17T15:00:00.013``, ISO ``2015-06-17 15:00:00.013`` or epoch seconds → ms."""
    text = text.strip()
    if _EPOCH_TEXT.match(text):
        return parse_duration_ms(text)
    normal = text.replace("/", "-").replace(" ", "T")
    moment = datetime.fromisoformat(normal)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def format_duration(ms: int) -> str:
    """Milliseconds as rwcut's seconds with three decimals (``1799.810``)."""
    return f"{ms // 1000}.{ms % 1000:03d}"


def parse_duration_ms(text: str) -> int:
    """``"1799.810"`` seconds → 1799810 ms, exactly (no float rounding)."""
    text = text.strip()
    sign = -1 if text.startswith("-") else 1
    whole, _, fraction = text.lstrip("-").partition(".")
    return sign * (int(whole or 0) * 1000 + int((fraction + "000")[:3]))


@dataclass(frozen=True)
class TextOptions:
    """How values are spelled.

    Parameters
    ----------
    timestamp_format
        ``default`` (``2015/06/17T15:00:00.013``), ``iso`` or ``epoch``.
    integer_tcp_flags
        Flags as integers instead of letters. Default - False.
    padded
        Flags and attributes keep positional columns (rwcut's table). Default - True.
    """

    timestamp_format: str = "default"
    integer_tcp_flags: bool = False
    padded: bool = True


Render = Callable[[FlowBatch, TextOptions], list]


@dataclass(frozen=True)
class Field:
    """One rwcut field: its name, column width and text/JSON renderers."""

    name: str
    width: int
    text: Render
    value: Render


def _ints(column: str) -> Render:
    return lambda b, o: b[column].tolist()


def _ips(column: str) -> Render:
    return lambda b, o: ip_strings(b[column], b["ipv6"])


def _flags(column: str) -> Render:
    def render(batch: FlowBatch, opts: TextOptions) -> list:
        values = batch[column].tolist()
        if opts.integer_tcp_flags:
            return values
        return [tcp_flags_text(v, padded=opts.padded) for v in values]

    return render


def _icmp(shift: int) -> Render:
    def render(batch: FlowBatch, opts: TextOptions) -> list:
        icmp = (batch["proto"] == 1) | ((batch["proto"] == 58) & batch["ipv6"])
        part = ((batch["dport"] >> shift) & 0xFF).tolist()
        return [p if is_icmp else None for p, is_icmp in zip(part, icmp.tolist(), strict=True)]

    return render


def _times(end: bool, *, json: bool = False) -> Render:
    def render(batch: FlowBatch, opts: TextOptions) -> list:
        ms = batch["stime_ms"] + batch["elapsed_ms"].astype(np.int64) * end
        if json and opts.timestamp_format == "epoch":
            return ms.tolist()  # JSON carries exact epoch milliseconds
        return format_times(ms, opts.timestamp_format)

    return render


def _duration(batch: FlowBatch, opts: TextOptions) -> list:
    return [format_duration(v) for v in batch["elapsed_ms"].tolist()]


def _seconds(batch: FlowBatch, opts: TextOptions) -> list:
    return (batch["elapsed_ms"] / 1000).tolist()


def _attributes(batch: FlowBatch, opts: TextOptions) -> list:
    return [attributes_text(v, padded=opts.padded) for v in batch["tcp_state"].tolist()]


def _sensor(batch: FlowBatch, opts: TextOptions) -> list:
    return [sensor_name(v) for v in batch["sensor"].tolist()]


def _flowtype(part: int) -> Render:
    return lambda b, o: [flowtype_names(v)[part] for v in b["flowtype"].tolist()]


def _same(render: Render) -> tuple[Render, Render]:
    return render, render


_FIELD_LIST = (
    Field("sIP", 39, *_same(_ips("sip"))),
    Field("dIP", 39, *_same(_ips("dip"))),
    Field("sPort", 5, *_same(_ints("sport"))),
    Field("dPort", 5, *_same(_ints("dport"))),
    Field("protocol", 3, *_same(_ints("proto"))),
    Field("packets", 10, *_same(_ints("packets"))),
    Field("bytes", 10, *_same(_ints("bytes"))),
    Field("flags", 8, *_same(_flags("flags"))),
    Field("sTime", 23, _times(end=False), _times(end=False, json=True)),
    Field("duration", 9, _duration, _seconds),
    Field("eTime", 23, _times(end=True), _times(end=True, json=True)),
    Field("sensor", 3, *_same(_sensor)),
    Field("in", 5, *_same(_ints("input"))),
    Field("out", 5, *_same(_ints("output"))),
    Field("nhIP", 39, *_same(_ips("nhip"))),
    Field("initialFlags", 8, *_same(_flags("init_flags"))),
    Field("sessionFlags", 8, *_same(_flags("rest_flags"))),
    Field("attributes", 8, *_same(_attributes)),
    Field("application", 5, *_same(_ints("application"))),
    Field("class", 3, *_same(_flowtype(0))),
    Field("type", 7, *_same(_flowtype(1))),
    Field("sTime+msec", 23, _times(end=False), _times(end=False, json=True)),
    Field("eTime+msec", 23, _times(end=True), _times(end=True, json=True)),
    Field("dur+msec", 9, _duration, _seconds),
    Field("iType", 3, *_same(_icmp(8))),
    Field("iCode", 3, *_same(_icmp(0))),
)
FIELDS: dict[str, Field] = {f.name.lower(): f for f in _FIELD_LIST}
#: rwcut ``--all-fields``, in its order
ALL_FIELDS = [f.name for f in _FIELD_LIST]
#: rwcut's default ``--fields`` (1-12): sIP through sensor
DEFAULT_FIELDS = ALL_FIELDS[:12]


def parse_fields(spec: str | Sequence[str]) -> list[Field]:
    """``"sIP,dIP,proto"``-style lists (case-insensitive) → fields; ValueError names the bad one."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    fields = []
    for name in names:
        key = name.strip().lower()
        matches = [f for k, f in FIELDS.items() if k == key] or [
            f for k, f in FIELDS.items() if k.startswith(key) and key
        ]
        if len(matches) != 1:
            choices = ", ".join(f.name for f in _FIELD_LIST)
            raise ValueError(f"unknown or ambiguous field {name!r} (choose from {choices})")
        fields.append(matches[0])
    return fields


def text_columns(batch: FlowBatch, fields: Sequence[Field], opts: TextOptions) -> list[list[str]]:
    """Each field's values as strings (empty for absent values such as iType of TCP)."""
    return [["" if v is None else str(v) for v in f.text(batch, opts)] for f in fields]


def table_lines(
    batch: FlowBatch, fields: Sequence[Field], opts: TextOptions = TextOptions()
) -> list[str]:
    """rwcut's table rows: each value right-aligned to its field width, ``|`` after each."""
    columns = text_columns(batch, fields, opts)
    return [
        "".join(f"{value:>{f.width}}|" for f, value in zip(fields, row, strict=True))
        for row in zip(*columns, strict=True)
    ]


def table_title(fields: Sequence[Field]) -> str:
    """rwcut's title row (names cut to the column width)."""
    return "".join(f"{f.name[: f.width]:>{f.width}}|" for f in fields)


# --- vectorised cells -------------------------------------------------------
# Every function below turns a whole column into a numpy ``S`` (bytes) array at
# once; ``render_rows`` then lays many such columns out as SiLK's table in one
# pass over a byte matrix. Row-by-row Python formatting costs ~1 µs a cell: 30 s
# for 500,000 records of rwcut's 12 default fields.

#: SiLK's ``--ipv6-policy`` values
IPV6_POLICIES = ("ignore", "asv4", "mix", "force", "only")
#: SiLK's ``--ip-format`` values
IP_FORMATS = ("canonical", "zero-padded", "decimal", "hexadecimal", "force-ipv6")


@functools.cache
def _hex_groups(padded: bool) -> np.ndarray:
    """The 65,536 IPv6 groups as hex text, built on first use (30 ms; IPv4 never needs it)."""
    return np.array([(b"%04x" if padded else b"%x") % i for i in range(1 << 16)], dtype="S4")


_OCTETS = np.array([b"%d" % i for i in range(256)], dtype="S3")
_OCTETS_PADDED = np.array([b"%03d" % i for i in range(256)], dtype="S3")
_FLAG_CELLS = np.array([t.encode() for t in _PADDED_FLAGS], dtype="S8")
_FLAG_CELLS_TIGHT = np.array([t.replace(" ", "").encode() for t in _PADDED_FLAGS], dtype="S8")
_ATTR_CELLS = np.array([t.encode() for t in _PADDED_ATTRS], dtype="S8")
_ATTR_CELLS_TIGHT = np.array([t.replace(" ", "").encode() for t in _PADDED_ATTRS], dtype="S8")


def compact(matrix: np.ndarray) -> np.ndarray:
    """Rows of a ``uint8`` matrix with their NUL bytes squeezed out → an ``S`` array.

    The cells below are built as matrices of fixed-width pieces with NUL where a
    piece is shorter or absent; a stable sort of each row on "is NUL" moves the
    real bytes to the front in order.

    >>> m = np.frombuffer(b"1\\x00.2\\x00\\x00", np.uint8).reshape(1, 6)
    >>> compact(m).tolist()
    [b'1.2']
    """
    rows, width = matrix.shape
    if not rows or not width:
        return np.zeros(rows, dtype="S1")
    order = np.argsort(matrix == 0, axis=1, kind="stable")
    packed = np.ascontiguousarray(np.take_along_axis(matrix, order, axis=1))
    return packed.view(f"S{width}").reshape(rows)


def _bytes_matrix(cells: np.ndarray) -> np.ndarray:
    cells = np.ascontiguousarray(cells)
    return cells.view(np.uint8).reshape(len(cells), cells.dtype.itemsize)


def _join(*pieces: np.ndarray | bytes, rows: int) -> np.ndarray:
    """Concatenate ``S`` columns and constant byte strings cell by cell (NULs squeezed)."""
    parts = []
    for piece in pieces:
        if isinstance(piece, bytes):
            parts.append(np.broadcast_to(np.frombuffer(piece, np.uint8), (rows, len(piece))))
        else:
            parts.append(_bytes_matrix(piece))
    return compact(np.hstack(parts)) if rows else np.zeros(0, dtype="S1")


def int_cells(column: np.ndarray) -> np.ndarray:
    """Integers as decimal text.

    Columns of at most 16 bits (ports, protocols, sensors) are looked up in a table of
    the 65,536 texts: numpy's own conversion costs ~0.2 µs a value, the lookup 20 ns.

    >>> int_cells(np.array([0, 7, 65535], np.uint16)).tolist()
    [b'0', b'7', b'65535']
    """
    column = np.asarray(column)
    if column.dtype.kind == "u" and column.dtype.itemsize <= 2:
        return _small_ints()[column]
    return column.astype(np.bytes_)


@functools.cache
def _small_ints() -> np.ndarray:
    return np.array([b"%d" % i for i in range(1 << 16)], dtype="S5")


def milli_cells(values_ms: np.ndarray) -> np.ndarray:
    """Thousandths as ``whole.ddd`` (rwcut's durations, epoch times).

    >>> milli_cells(np.array([49, 1799810])).tolist()
    [b'0.049', b'1799.810']
    """
    values_ms = np.asarray(values_ms, dtype=np.int64)
    whole = int_cells(values_ms // 1000)
    part = np.strings.zfill(int_cells(values_ms % 1000), 3)
    return _join(whole, b".", part, rows=len(values_ms))


def float_cells(values: np.ndarray, decimals: int) -> np.ndarray:
    """Floats as C's ``%.Nf`` (exact decimal rounding, as printf).

    Formatted 65,536 at a time: numpy's intermediate text is 4 bytes a character.

    >>> float_cells(np.array([0.125, 2.5, 1234567.005]), 2).tolist()
    [b'0.12', b'2.50', b'1234567.00']
    """
    values = np.asarray(values, dtype=np.float64)
    parts = [
        np.char.mod(f"%.{decimals}f", values[start : start + TABLE_CHUNK_ROWS]).astype(np.bytes_)
        for start in range(0, len(values), TABLE_CHUNK_ROWS)
    ]
    if not parts:
        return np.zeros(0, dtype="S1")
    width = max(part.dtype.itemsize for part in parts)
    return np.concatenate([part.astype(f"S{width}") for part in parts])


def ipv4_cells(addresses: np.ndarray, *, zero_padded: bool = False) -> np.ndarray:
    """Host-order ``uint32`` addresses as dotted quads.

    >>> ipv4_cells(np.array([3232264137], np.uint32)).tolist()
    [b'192.168.111.201']
    >>> ipv4_cells(np.array([2887254651], np.uint32), zero_padded=True).tolist()
    [b'172.024.002.123']
    """
    addresses = np.asarray(addresses, dtype=np.uint32)
    table = _OCTETS_PADDED if zero_padded else _OCTETS
    octets = [table[(addresses >> shift) & 0xFF] for shift in (24, 16, 8, 0)]
    return _join(octets[0], b".", octets[1], b".", octets[2], b".", octets[3], rows=len(addresses))


def ipv6_cells(column: np.ndarray, *, zero_padded: bool = False) -> np.ndarray:
    """16-byte addresses as IPv6 text, compressed as glibc's ``inet_ntop`` (SiLK's form).

    The longest run (the first of equals) of two or more zero groups becomes
    ``::``; IPv4-mapped and IPv4-compatible addresses end in a dotted quad.

    >>> from silkwatch.detectors.schema import parse_ips
    >>> col, _ = parse_ips(["2001:db8:c0:a8::6f:c9", "10.200.209.131", "::", "1::"])
    >>> ipv6_cells(col).tolist()
    [b'2001:db8:c0:a8::6f:c9', b'::ffff:10.200.209.131', b'::', b'1::']
    """
    rows = len(column)
    groups = np.ascontiguousarray(column).view(">u2").reshape(rows, 8).astype(np.int64)
    if zero_padded:
        texts = _hex_groups(True)[groups]
        pieces: list[np.ndarray | bytes] = []
        for j in range(8):
            pieces += [texts[:, j]] + ([b":"] if j < 7 else [])
        return _join(*pieces, rows=rows)
    zero = groups == 0
    run = np.zeros((rows, 8), np.int64)
    run[:, 0] = zero[:, 0]
    for j in range(1, 8):
        run[:, j] = (run[:, j - 1] + 1) * zero[:, j]
    best_len = run.max(axis=1)
    best_end = run.argmax(axis=1)  # first run of the longest length
    best_len = np.where(best_len >= 2, best_len, 0)
    base = np.where(best_len > 0, best_end - best_len + 1, -1)
    dotted = (base == 0) & ((best_len == 6) | ((best_len == 5) & (groups[:, 5] == 0xFFFF)))
    texts = _hex_groups(False)[groups]
    colon = np.array([b":"], dtype="S1")
    nothing = np.array([b""], dtype="S1")
    pieces = []
    for j in range(8):
        inside = (j >= base) & (j < base + best_len)
        hidden = inside | (dotted & (j >= 6))
        pieces.append(
            np.where((j == base) | (~inside & (j > 0) & ~(dotted & (j == 7))), colon, nothing)
        )
        pieces.append(np.where(hidden, nothing, texts[:, j]))
    tail = np.where((base >= 0) & (base + best_len == 8), colon, nothing)
    quad = np.where(dotted, ipv4_cells(groups[:, 6] << 16 | groups[:, 7]), nothing)
    return _join(*pieces, tail, quad, rows=rows)


def ip_cells(
    column: np.ndarray, ipv6: np.ndarray, *, policy: str = "mix", ip_format: str = "canonical"
) -> np.ndarray:
    """Addresses as SiLK prints them under an ``--ipv6-policy`` and ``--ip-format``.

    IPv4 records print dotted (``force`` prints every address as IPv6,
    ``::ffff:a.b.c.d``); ``decimal`` prints the integer value.

    >>> from silkwatch.detectors.schema import parse_ips
    >>> col, v6 = parse_ips(["10.0.0.1", "2001:db8::1"])
    >>> ip_cells(col, v6).tolist(), ip_cells(col, v6, policy="force").tolist()
    ([b'10.0.0.1', b'2001:db8::1'], [b'::ffff:10.0.0.1', b'2001:db8::1'])
    >>> ip_cells(col, v6, ip_format="decimal").tolist()
    [b'167772161', b'42540766411282592856903984951653826561']
    """
    ipv6 = np.asarray(ipv6, dtype=bool)
    if policy == "force" or ip_format == "force-ipv6":
        ipv6 = np.ones(len(column), bool)
    v4 = np.ascontiguousarray(column).view(">u4").reshape(-1, 4)[:, 3].astype(np.uint32)
    zero_padded = ip_format == "zero-padded"
    if ip_format == "decimal":
        out = int_cells(v4)
        if ipv6.any():
            wide = out.astype("S39")
            high, low = np.ascontiguousarray(column).view(">u8").reshape(-1, 2).astype(np.uint64).T
            rows = np.flatnonzero(ipv6)
            wide[rows] = [
                str(int(h) << 64 | int(lo)).encode()
                for h, lo in zip(high[rows].tolist(), low[rows].tolist(), strict=True)
            ]
            out = wide
        return out
    if ip_format == "hexadecimal":
        return np.char.mod("%x", v4.astype(np.int64)).astype(np.bytes_)
    if not ipv6.any():
        return ipv4_cells(v4, zero_padded=zero_padded)
    if ipv6.all():
        return ipv6_cells(column, zero_padded=zero_padded)
    out = ipv4_cells(v4, zero_padded=zero_padded).astype("S39")
    out[ipv6] = ipv6_cells(column[ipv6], zero_padded=zero_padded)
    return out


#: SiLK's ``--timestamp-format`` main forms and their widths with milliseconds
TIME_STYLES = {"default": 23, "iso": 23, "m/d/y": 23, "epoch": 14}


_MILLIS = np.array([b"%03d" % i for i in range(1000)], dtype="S3")


def parse_timestamp_format(text: str) -> tuple[str, bool]:
    """``--timestamp-format=m/d/y,no-msec`` → (style, with milliseconds).

    ``utc`` and ``local`` are accepted (times are printed in UTC).

    >>> parse_timestamp_format("m/d/y,no-msec"), parse_timestamp_format("epoch")
    (('m/d/y', False), ('epoch', True))
    """
    style, msec = "default", True
    for word in (w.strip().lower() for w in text.split(",") if w.strip()):
        if word in TIME_STYLES:
            style = word
        elif word == "no-msec":
            msec = False
        elif word not in ("utc", "local"):
            raise ValueError(f"unknown timestamp format {word!r}")
    return style, msec


def time_cells(ms: np.ndarray, style: str = "default", *, msec: bool = True) -> np.ndarray:
    """Epoch milliseconds as SiLK's timestamps (UTC), vectorised.

    >>> t = np.array([1234396802696])
    >>> time_cells(t).tolist(), time_cells(t, "m/d/y", msec=False).tolist()
    ([b'2009/02/12T00:00:02.696'], [b'02/12/2009 00:00:02'])
    >>> time_cells(t, "epoch").tolist(), time_cells(t, "iso", msec=False).tolist()
    ([b'1234396802.696'], [b'2009-02-12 00:00:02'])
    """
    ms = np.asarray(ms, dtype=np.int64)
    if style == "epoch":
        return milli_cells(ms) if msec else int_cells(ms // 1000)
    # flows share seconds: format each distinct second once, then add the milliseconds
    seconds, where = np.unique(ms // 1000, return_inverse=True)
    text = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").astype("S19")
    if len(text) and text.dtype.itemsize != 19:  # years beyond 9999: numpy's own text
        return np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms").astype(np.bytes_)
    m = _bytes_matrix(text)[where.reshape(-1)]
    if msec:
        fraction = _bytes_matrix(_MILLIS[ms % 1000])
        m = np.hstack([m, np.full((len(ms), 1), ord("."), np.uint8), fraction])
    if style == "default":
        m[:, [4, 7]] = ord("/")
    elif style == "iso":
        m[:, 10] = ord(" ")
    else:  # m/d/y: MM/DD/YYYY hh:mm:ss
        m = np.hstack([m[:, 5:7], m[:, 4:5], m[:, 8:10], m[:, 4:5], m[:, 0:4], m[:, 10:]])
        m[:, [2, 5]] = ord("/")
        m[:, 10] = ord(" ")
    m = np.ascontiguousarray(m)
    return m.view(f"S{m.shape[1]}").reshape(len(ms))


def flag_cells(column: np.ndarray, *, padded: bool = True, integer: bool = False) -> np.ndarray:
    """TCP flags as rwcut's positional ``FSRPAUEC`` letters (or integers)."""
    if integer:
        return int_cells(column)
    return (_FLAG_CELLS if padded else _FLAG_CELLS_TIGHT)[np.asarray(column, dtype=np.uint8)]


def attribute_cells(column: np.ndarray, *, padded: bool = True) -> np.ndarray:
    """tcp_state attribute letters ``TCFS``."""
    return (_ATTR_CELLS if padded else _ATTR_CELLS_TIGHT)[np.asarray(column, dtype=np.uint8)]


def title_cells(titles: Sequence[str]) -> list[np.ndarray]:
    """Titles as one-row ``S`` columns for :func:`render_rows`."""
    return [np.array([title.encode()], dtype=np.bytes_) for title in titles]


def render_rows(
    columns: Sequence[np.ndarray],
    widths: Sequence[int] | None,
    *,
    separator: bytes = b"|",
    final_separator: bool = True,
    truncate: bool = False,
) -> bytes:
    """SiLK's table: each cell right-aligned to its width (none: as is), a separator after each.

    ``widths=None`` is SiLK's ``--no-columns``; the last separator goes with
    ``--no-final-delimiter``. ``truncate`` cuts cells to their width (titles).

    >>> cells = [np.array([b"10.0.0.1", b"2001:db8::1"]), np.array([b"53", b"80"])]
    >>> render_rows(cells, [15, 5]).decode().splitlines()
    ['       10.0.0.1|   53|', '    2001:db8::1|   80|']
    >>> render_rows(cells, None, separator=b",", final_separator=False).decode().splitlines()
    ['10.0.0.1,53', '2001:db8::1,80']
    """
    if not columns:
        return b""
    rows = len(columns[0])
    if not rows:
        return b""
    sep = np.broadcast_to(np.frombuffer(separator, np.uint8), (rows, len(separator)))
    parts = []
    for i, column in enumerate(columns):
        column = np.asarray(column)
        if widths is not None:
            width = widths[i]
            if truncate and column.dtype.itemsize > width:
                column = column.astype(f"S{max(width, 1)}") if width else column[:0]
            column = np.strings.rjust(column, width) if width else column
        if column.dtype.itemsize:
            parts.append(_bytes_matrix(column))
        if i < len(columns) - 1 or final_separator:
            parts.append(sep)
    parts.append(np.full((rows, 1), ord("\n"), np.uint8))
    flat = np.hstack(parts).ravel()
    return flat[flat != 0].tobytes()


@dataclass(frozen=True)
class TableStyle:
    """SiLK's text switches: ``--no-columns``, ``--column-separator``,
    ``--no-final-delimiter``, ``--no-titles`` (``--delimited=C`` is the first
    three at once)."""

    columns: bool = True
    separator: bytes = b"|"
    final_separator: bool = True
    titles: bool = True


#: rows laid out at once by ``iter_table``: bounds its byte matrices to a few MB
TABLE_CHUNK_ROWS = 1 << 16


def iter_table(
    titles: Sequence[str],
    columns: Sequence[np.ndarray],
    widths: Sequence[int],
    style: TableStyle = TableStyle(),
    *,
    preamble: Sequence[str] = (),
) -> Iterator[bytes]:
    """``preamble`` lines, the title row (titles cut to their width) and the rows, in chunks.

    The rows are laid out 65,536 at a time, so printing millions of bins (``count
    --bin-size=0.1``) never holds more than one chunk's byte matrix.
    """
    widths_used = list(widths) if style.columns else None
    head = b"".join(line.encode() + b"\n" for line in preamble)
    if style.titles:
        head += render_rows(
            title_cells(titles),
            widths_used,
            separator=style.separator,
            final_separator=style.final_separator,
            truncate=True,
        )
    yield head
    rows = len(columns[0]) if columns else 0
    for start in range(0, rows, TABLE_CHUNK_ROWS):
        part = [column[start : start + TABLE_CHUNK_ROWS] for column in columns]
        yield render_rows(
            part, widths_used, separator=style.separator, final_separator=style.final_separator
        )


def render_table(
    titles: Sequence[str],
    columns: Sequence[np.ndarray],
    widths: Sequence[int],
    style: TableStyle = TableStyle(),
    *,
    preamble: Sequence[str] = (),
) -> bytes:
    """:func:`iter_table` as one ``bytes``.

    >>> print(render_table(["sPort", "Records"], [int_cells(np.array([80])),
    ...       int_cells(np.array([7]))], [5, 10]).decode(), end="")
    sPort|   Records|
       80|         7|
    """
    return b"".join(iter_table(titles, columns, widths, style, preamble=preamble))


def column_cells(name: str, column: np.ndarray) -> list[str]:
    """One rwuniq/rwstats key field or value column as the text SiLK prints for it.

    The renderers of rwcut's fields, for the columns of a
    :class:`~silkwatch.detectors.groupby.GroupTable`
    (``silkwatch uniq``/``stats`` and the plots' labels).
    """
    if name in groupby.IP_FIELDS:
        return ip_strings(column, groupby.is_ipv6(column))
    if name in groupby.TIME_FIELDS:
        return second_times(column * 1000)
    if name in ("stime-earliest", "etime-latest"):
        return second_times(column // 1000 * 1000)
    render = _RENDER.get(name)
    if render:
        return [render(value) for value in column.tolist()]
    return [str(value) for value in column.tolist()]


_RENDER = {
    "flags": tcp_flags_text,
    "sensor": sensor_name,
    "class": lambda value: flowtype_names(value)[0],  # groupby keeps 0 for "all", 255 for "?"
    "type": lambda value: flowtype_names(value)[1],
}


def json_column(name: str, column: np.ndarray) -> list[Any]:
    """One column for JSON: numbers stay numbers, addresses and key times become text."""
    if name in groupby.IP_FIELDS or name in groupby.TIME_FIELDS or name in _RENDER:
        return column_cells(name, column)
    return column.tolist()
