"""``silkwatch cut``: print SiLK flow records as text, CSV or JSON lines, like rwcut.

The text table is rwcut's, byte for byte: its field names and numbers
(``--fields=1-5,sTime``), column widths and titles, and its output switches
(``--delimited``, ``--ipv6-policy``, ``--timestamp-format``...). Each batch is
rendered a whole column at a time (:mod:`silkwatch.connectors.silk.text`).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from silkwatch.commands.count import (
    add_table_arguments,
    apply_ipv6_policy,
    copy_input,
    input_names,
    ip_options,
    open_output,
    table_style,
    time_options,
)
from silkwatch.connectors.inputs import resolve_inputs
from silkwatch.connectors.silk.siteconfig import SiteConfig, load_site_config
from silkwatch.connectors.silk.text import (
    ALL_FIELDS,
    Field,
    TextOptions,
    attribute_cells,
    flag_cells,
    int_cells,
    ip_cells,
    milli_cells,
    parse_fields,
    render_rows,
    text_columns,
    time_cells,
    title_cells,
)
from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.groupby import flowrate_milli, int_ext_column, payload_bytes
from silkwatch.detectors.schema import FlowBatch
from silkwatch.flowio import add_input_arguments, read_inputs, xargs

EPILOG = """\
examples:
  silkwatch cut day.rw --num-recs=25
  silkwatch cut --fields=1-5,sTime --tail-recs=5 day.rw
  silkwatch cut --fields=sip,dip,bytes --delimited=, --no-titles day.rw
  rwfilter --proto=17 --pass=stdout ... | silkwatch cut --fields=dPort,bytes
  silkwatch cut /data/silk --format=json | jq .bytes           # a repository tree

Fields (rwcut's names and numbers, case-insensitive, unique prefixes accepted):
  1 sIP, 2 dIP, 3 sPort, 4 dPort, 5 protocol, 6 packets, 7 bytes, 8 flags,
  9 sTime, 10 duration, 11 eTime, 12 sensor, 13 in, 14 out, 15 nhIP,
  16 initialFlags, 17 sessionFlags, 18 attributes, 19 application, 20 class,
  21 type, 22 sTime+msec, 23 eTime+msec, 24 dur+msec, 25 iType, 26 iCode,
  icmpTypeCode (iType,iCode); flowrate: pckts/sec, bytes/sec, bytes/packet,
  payload-bytes, payload-rate.
--format=csv and json print plain values (JSON times are epoch milliseconds
with --timestamp-format=epoch).
"""


class FieldError(SilkwatchError):
    """An unknown, ambiguous or out-of-range ``--fields`` entry."""

    reason = "bad_field"


@dataclass(frozen=True)
class Context:
    """How cells are spelled for one run."""

    policy: str
    ip_format: str
    time_style: str
    msec: bool
    integer_sensors: bool
    integer_flags: bool
    site: SiteConfig
    padded: bool = True  # flags and attributes keep positional columns (not --no-columns)

    @property
    def ip_width(self) -> int:
        v4_only = self.policy in ("ignore", "asv4")
        if self.ip_format == "decimal":
            return 10 if v4_only else 39
        if self.ip_format == "hexadecimal":
            return 8 if v4_only else 32
        return 15 if v4_only else 39

    def time_width(self, *, msec: bool | None = None) -> int:
        msec = self.msec if msec is None else msec
        if self.time_style == "epoch":
            return 14 if msec else 10
        return 23 if msec else 19


Cells = Callable[[FlowBatch, Context], np.ndarray]


@dataclass(frozen=True)
class CutField:
    """One rwcut field: number, title, width and whole-column renderer."""

    number: int | None
    title: str
    width: Callable[[Context], int]
    cells: Cells


def _ip(column: str) -> Cells:
    return lambda b, c: ip_cells(b[column], b["ipv6"], policy=c.policy, ip_format=c.ip_format)


def _int(column: str) -> Cells:
    return lambda b, c: int_cells(b[column])


def _flags(column: str) -> Cells:
    return lambda b, c: flag_cells(b[column], padded=c.padded, integer=c.integer_flags)


def _time(end: bool, msec: bool | None = None) -> Cells:
    def cells(b: FlowBatch, c: Context) -> np.ndarray:
        ms = b["stime_ms"] + b["elapsed_ms"].astype(np.int64) * end
        return time_cells(ms, c.time_style, msec=c.msec if msec is None else msec)

    return cells


def _duration(b: FlowBatch, c: Context) -> np.ndarray:
    return milli_cells(b["elapsed_ms"])


def is_icmp(batch: FlowBatch) -> np.ndarray:
    """SiLK's ``rwRecIsICMP``: protocol 1, or 58 on an IPv6 record."""
    return (batch["proto"] == 1) | ((batch["proto"] == 58) & batch["ipv6"])


def _icmp(shift: int) -> Cells:
    def cells(b: FlowBatch, c: Context) -> np.ndarray:
        values = int_cells((b["dport"] >> shift) & 0xFF)
        return np.where(is_icmp(b), values, b"")

    return cells


def _sensor(b: FlowBatch, c: Context) -> np.ndarray:
    return int_cells(b["sensor"]) if c.integer_sensors else c.site.sensor_names(b["sensor"])


def _sensor_width(c: Context) -> int:
    return 5 if c.integer_sensors else c.site.sensor_width


def _int_ext_ip(name: str) -> Cells:
    def cells(b: FlowBatch, c: Context) -> np.ndarray:
        column = int_ext_column(b, name)
        return ip_cells(column, b["ipv6"], policy=c.policy, ip_format=c.ip_format)

    return cells


def _int_ext_port(name: str) -> Cells:
    return lambda b, c: int_cells(int_ext_column(b, name))


def _rate(name: str) -> Cells:
    return lambda b, c: milli_cells(flowrate_milli(name, b))


def _fixed(width: int) -> Callable[[Context], int]:
    return lambda c: width


_IP_WIDTH = lambda c: c.ip_width  # noqa: E731
_FIELDS: dict[str, CutField] = {
    "sip": CutField(1, "sIP", _IP_WIDTH, _ip("sip")),
    "dip": CutField(2, "dIP", _IP_WIDTH, _ip("dip")),
    "sport": CutField(3, "sPort", _fixed(5), _int("sport")),
    "dport": CutField(4, "dPort", _fixed(5), _int("dport")),
    "protocol": CutField(5, "protocol", _fixed(3), _int("proto")),
    "packets": CutField(6, "packets", _fixed(10), _int("packets")),
    "bytes": CutField(7, "bytes", _fixed(10), _int("bytes")),
    "flags": CutField(8, "flags", _fixed(8), _flags("flags")),
    "stime": CutField(9, "sTime", lambda c: c.time_width(), _time(False)),
    "duration": CutField(10, "duration", _fixed(9), _duration),
    "etime": CutField(11, "eTime", lambda c: c.time_width(), _time(True)),
    "sensor": CutField(12, "sensor", _sensor_width, _sensor),
    "in": CutField(13, "in", _fixed(5), _int("input")),
    "out": CutField(14, "out", _fixed(5), _int("output")),
    "nhip": CutField(15, "nhIP", _IP_WIDTH, _ip("nhip")),
    "initialflags": CutField(16, "initialFlags", _fixed(8), _flags("init_flags")),
    "sessionflags": CutField(17, "sessionFlags", _fixed(8), _flags("rest_flags")),
    "attributes": CutField(
        18, "attributes", _fixed(8), lambda b, c: attribute_cells(b["tcp_state"], padded=c.padded)
    ),
    "application": CutField(19, "application", _fixed(5), _int("application")),
    "class": CutField(
        20,
        "class",
        lambda c: max(len(k) for k, _ in c.site.flowtypes.values() or [("?", "")]),
        lambda b, c: c.site.class_names(b["flowtype"]),
    ),
    "type": CutField(
        21,
        "type",
        lambda c: max(len(t) for _, t in c.site.flowtypes.values() or [("", "?")]),
        lambda b, c: c.site.type_names(b["flowtype"]),
    ),
    "stime+msec": CutField(22, "sTime+msec", lambda c: c.time_width(msec=True), _time(False, True)),
    "etime+msec": CutField(23, "eTime+msec", lambda c: c.time_width(msec=True), _time(True, True)),
    "dur+msec": CutField(24, "dur+msec", _fixed(9), _duration),
    "itype": CutField(25, "iType", _fixed(3), _icmp(8)),
    "icode": CutField(26, "iCode", _fixed(3), _icmp(0)),
    "ext-ip": CutField(None, "ext-ip", _IP_WIDTH, _int_ext_ip("ext-ip")),
    "ext-port": CutField(None, "ext-port", _fixed(5), _int_ext_port("ext-port")),
    "int-ip": CutField(None, "int-ip", _IP_WIDTH, _int_ext_ip("int-ip")),
    "int-port": CutField(None, "int-port", _fixed(5), _int_ext_port("int-port")),
    "pckts/sec": CutField(None, "pckts/sec", _fixed(15), _rate("pckts/sec")),
    "bytes/sec": CutField(None, "bytes/sec", _fixed(15), _rate("bytes/sec")),
    "bytes/packet": CutField(None, "bytes/packet", _fixed(15), _rate("bytes/packet")),
    "payload-bytes": CutField(
        None, "payload-bytes", _fixed(15), lambda b, c: int_cells(payload_bytes(b))
    ),
    "payload-rate": CutField(None, "payload-rate", _fixed(15), _rate("payload-rate")),
}
_ALIASES = {
    "proto": ["protocol"],
    "pkts": ["packets"],
    "dur": ["duration"],
    "nexthopip": ["nhip"],
    "icmptypecode": ["itype", "icode"],
}
_BY_NUMBER = {f.number: name for name, f in _FIELDS.items() if f.number}


def parse_cut_fields(spec: str) -> list[str]:
    """rwcut's ``--fields``: names (case-insensitive, unique prefixes), numbers, ranges.

    >>> parse_cut_fields("1-3,sTime,proto,icmpTypeCode")
    ['sip', 'dip', 'sport', 'stime', 'protocol', 'itype', 'icode']
    """
    names: list[str] = []
    for word in (w.strip() for w in spec.split(",")):
        if not word:
            continue
        lower = word.lower()
        if lower.replace("-", "").isdigit():
            low, _, high = lower.partition("-")
            try:
                numbers = range(int(low), int(high or low) + 1)
                names += [_BY_NUMBER[n] for n in numbers]
            except (KeyError, ValueError) as exc:
                raise FieldError(f"cut: field number out of range in {word!r} (1-26)") from exc
        elif lower in _FIELDS:
            names.append(lower)
        elif lower in _ALIASES:
            names += _ALIASES[lower]
        else:
            matches = {
                n for n in [*_FIELDS, *_ALIASES] if n.startswith(lower) or _title_of(n) == lower
            }
            if len(matches) != 1:
                known = ", ".join(f.title for f in _FIELDS.values())
                raise FieldError(f"cut: unknown or ambiguous field {word!r}; choose from {known}")
            match = matches.pop()
            names += _ALIASES.get(match, [match])
    if not names:
        raise FieldError("cut: --fields needs at least one field")
    return names


def _title_of(name: str) -> str:
    return _FIELDS[name].title.lower() if name in _FIELDS else name


def _field_names(text: str) -> list[str]:
    try:
        return parse_cut_fields(text)
    except FieldError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _count(text: str) -> int:
    value = int(text) if text.isdigit() else -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a count of records, not {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``cut`` to the command line."""
    parser = subparsers.add_parser(
        "cut",
        help="print SiLK flow records as text (like rwcut)",
        description="Decode SiLK flow files (any format, compression or byte order), a "
        "repository tree or stdin and print the chosen fields of each record.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_arguments(parser)  # files, folders, globs, stdin; --input-format, --skip-bad-lines
    parser.add_argument(
        "--fields",
        type=_field_names,
        default="1-12",
        help="fields by name or number, e.g. 1-5,sTime (default 1-12)",
    )
    parser.add_argument(
        "--all-fields", action="store_true", help="every field, in rwcut's --all-fields order"
    )
    parser.add_argument(
        "--format",
        choices=("text", "csv", "json"),
        default="text",
        help="rwcut's table, CSV with a title row, or one JSON object per line (%(default)s)",
    )
    parser.add_argument(
        "--num-recs", type=_count, default=0, help="print at most N records (0: all)"
    )
    start_or_tail = parser.add_mutually_exclusive_group()
    start_or_tail.add_argument(
        "--start-rec-num", type=_count, default=1, help="first record printed"
    )
    start_or_tail.add_argument("--tail-recs", type=_count, help="print only the last N records")
    parser.add_argument("--end-rec-num", type=_count, default=0, help="last record printed")
    parser.add_argument("--dry-run", action="store_true", help="print the title row and stop")
    parser.add_argument(
        "--icmp-type-and-code",
        action="store_true",
        help="for ICMP, print the type as sPort and the code as dPort (deprecated in SiLK)",
    )
    add_table_arguments(parser)
    parser.set_defaults(run=run)


def _read(args: argparse.Namespace) -> Iterator[FlowBatch]:
    """The input batches; the inputs are resolved (and bad names reported) right away."""
    inputs = xargs(args) if args.xargs else resolve_inputs(input_names(args))
    copy_input(args, inputs)

    def batches() -> Iterator[FlowBatch]:
        for batch in read_inputs(args, inputs, rows=1 << 16):
            yield apply_ipv6_policy(batch, args.ipv6_policy)

    return batches()


def _selected(args: argparse.Namespace, batches: Iterator[FlowBatch]) -> Iterator[FlowBatch]:
    """The records to print: rwcut's --start-rec-num, --end-rec-num, --num-recs, --tail-recs."""
    if args.tail_recs is not None:
        tail = None
        for batch in batches:  # holds at most N records besides the current batch
            tail = batch if tail is None else np.concatenate([tail, batch])
            tail = tail[len(tail) - min(len(tail), args.tail_recs) :]
        if tail is not None:
            yield tail[: args.num_recs or None]
        return
    first = max(args.start_rec_num, 1) - 1
    stop = args.end_rec_num or None
    if args.num_recs and stop is None:
        stop = first + args.num_recs
    elif args.num_recs and not first and args.num_recs < stop:
        first = stop - args.num_recs  # only --end-rec-num: the N records before it
    seen = 0
    for batch in batches:
        lo, hi = max(first - seen, 0), len(batch) if stop is None else min(stop - seen, len(batch))
        seen += len(batch)
        if hi > lo:
            yield batch[lo:hi]
        if stop is not None and seen >= stop:
            return


def _icmp_ports(shift: int, column: str) -> Cells:
    def cells(b: FlowBatch, c: Context) -> np.ndarray:
        return np.where(is_icmp(b), int_cells((b["dport"] >> shift) & 0xFF), int_cells(b[column]))

    return cells


def _icmp_in_ports(fields: list[CutField]) -> list[CutField]:
    """rwcut's deprecated ``--icmp-type-and-code``: ICMP type in sPort, code in dPort.

    As rwcut 3.19 does, an sPort column is added at the end when none is asked for.
    """
    sport = CutField(3, "sPort", _fixed(5), _icmp_ports(8, "sport"))
    dport = CutField(4, "dPort", _fixed(5), _icmp_ports(0, "dport"))
    swapped = [sport if f.number == 3 else dport if f.number == 4 else f for f in fields]
    return swapped if any(f.number == 3 for f in fields) else [*swapped, sport]


def run(args: argparse.Namespace) -> int:
    """Stream the records to the output in the chosen format."""
    names = parse_cut_fields("1-26") if args.all_fields else args.fields
    if args.format != "text":
        return _run_plain(args, names)
    table = table_style(args)
    context = text_context(args)
    fields = [_FIELDS[name] for name in names]
    if args.icmp_type_and_code:
        fields = _icmp_in_ports(fields)
    widths = [f.width(context) for f in fields] if table.columns else None

    def rows(columns: list[np.ndarray], truncate: bool = False) -> bytes:
        return render_rows(
            columns,
            widths,
            separator=table.separator,
            final_separator=table.final_separator,
            truncate=truncate,
        )

    batches = iter(()) if args.dry_run else _read(args)  # bad input names fail before any output
    out = open_output(args)
    try:
        if table.titles:
            out.write(rows(title_cells([f.title for f in fields]), truncate=True))
        if not args.dry_run:
            for batch in _selected(args, batches):
                out.write(rows([f.cells(batch, context) for f in fields]))
        out.flush()
    finally:
        if out not in (sys.stdout.buffer, sys.stderr.buffer):
            out.close()
    return 0


def _run_plain(args: argparse.Namespace, names: list[str]) -> int:
    """``--format=csv|json``: plain values, one record a line."""
    titles = {f.lower(): f for f in ALL_FIELDS}
    fields: list[Field] = parse_fields([titles[n] for n in names if n in titles])
    opts = TextOptions(
        timestamp_format=args.timestamp_format
        if args.timestamp_format in ("iso", "epoch")
        else "default",
        integer_tcp_flags=args.integer_tcp_flags,
        padded=False,
    )
    out = sys.stdout
    writer = csv.writer(out, lineterminator="\n")
    if not args.no_titles and args.format == "csv":
        writer.writerow(f.name for f in fields)
    for batch in _selected(args, _read(args)):
        if args.format == "csv":
            writer.writerows(zip(*text_columns(batch, fields, opts), strict=True))
        else:
            names_ = [f.name for f in fields]
            values = [f.value(batch, opts) for f in fields]
            out.writelines(
                json.dumps(dict(zip(names_, row, strict=True))) + "\n"
                for row in zip(*values, strict=True)
            )
    out.flush()
    return 0


def text_context(args: argparse.Namespace) -> Context:
    """How cells are spelled, from the text switches (rwcut's, shared by uniq and stats)."""
    policy, ip_format = ip_options(args)
    style, msec = time_options(args)
    return Context(
        policy,
        ip_format,
        style,
        msec,
        args.integer_sensors,
        args.integer_tcp_flags,
        load_site_config(args.site_config_file),
        table_style(args).columns,
    )
