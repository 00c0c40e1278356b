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

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from connectors.silk.site import flowtype_names, sensor_name
from detectors.schema import FlowBatch, ip_strings

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
