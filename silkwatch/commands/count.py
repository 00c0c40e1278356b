"""``silkwatch count``: rwcount — records, bytes and packets per time bin.

The binning is :class:`silkwatch.detectors.timebins.VolumeCounter`: the kernel the stream
uses, on rwcount's grid origin, adding batch after batch into one window of bins
as rwcount does (so every bin holds rwcount's double), a file of any size in
memory bounded by the flows, not by their time span. This module also holds
what the three SiLK-style aggregation commands (``count``, ``uniq``, ``stats``)
share: input options and the text/CSV/JSON writer.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import numpy as np

from silkwatch.connectors.inputs import resolve_inputs
from silkwatch.connectors.readahead import read_ahead
from silkwatch.connectors.silk.text import (
    IP_FORMATS,
    IPV6_POLICIES,
    TableStyle,
    float_cells,
    format_times,
    int_cells,
    iter_table,
    parse_timestamp_format,
    second_times,
    time_cells,
)
from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.schema import FlowBatch
from silkwatch.detectors.timebins import (
    LOAD_SCHEMES,
    VOLUME_COLUMNS,
    BinVolumes,
    VolumeCounter,
    empty_bins,
    parse_load_scheme,
)
from silkwatch.flowio import add_input_arguments, add_xargs_argument, read_inputs, xargs
from silkwatch.runtime import freeze_imports

#: flows per batch read: 128 Ki flows (13 MB) was the fastest of 16 Ki–256 Ki for
#: ``stats`` on 10 M flows (bench/bench_stats_vs_nfdump.py): fewer batches cost less
#: Python, smaller ones stay in cache, and a handful of them are in flight (read-ahead)
READ_ROWS = 1 << 17

EPILOG = """\
examples:
  silkwatch count --bin-size 300 day.rw                   5-minute bins, time-proportional
  silkwatch count --bin-size 3600 --load-scheme start-spike day.rw
  silkwatch count --bin-size 60 --load-scheme 5 --skip-zeroes day.rw
  rwfilter --proto=17 --pass=stdout ... | silkwatch count --bin-size 300 -
  silkwatch count --bin-size 300 --format json day.rw | jq '.rows[0]'

load schemes (rwcount --load-scheme; name or number), for a flow spanning bins:
  0 bin-uniform        volume / number of bins touched, to each bin
  1 start-spike        everything to the bin of sTime
  2 end-spike          everything to the bin of eTime (sTime + duration)
  3 middle-spike       everything to the bin of sTime + duration / 2
  4 time-proportional  (default) by the milliseconds spent in each bin
  5 maximum-volume     a record and the whole volume to every bin touched
  6 minimum-volume     a record to every bin touched, volume only if in one bin

Bins start at multiples of the bin size since the epoch (for sizes dividing a
day this is rwcount's grid). Rows run from the first to the last bin holding
bytes; empty bins in between are printed unless --skip-zeroes.
"""


class CountArgumentError(SilkwatchError):
    """A bin size rwcount would refuse."""

    reason = "bad_argument"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "count",
        help="records, bytes and packets per time bin (like SiLK's rwcount)",
        description="Count flows in fixed time bins, sharing long flows among the bins "
        "they cover with one of rwcount's seven load schemes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--bin-size",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="bin width in seconds, fractions down to 0.001 allowed (default 30, as rwcount)",
    )
    parser.add_argument(
        "--load-scheme",
        default="time-proportional",
        metavar="NAME|ID",
        help="how a flow spanning bins is shared: "
        + ", ".join(LOAD_SCHEMES)
        + " (or 0-6; default time-proportional)",
    )
    parser.add_argument("--skip-zeroes", action="store_true", help="leave out bins without records")
    parser.add_argument(
        "--start-time",
        "--start-epoch",
        metavar="TIME",
        help="first bin starts here (YYYY/MM/DD[THH[:MM[:SS[.sss]]]] or epoch seconds)",
    )
    parser.add_argument(
        "--end-time",
        "--end-epoch",
        metavar="TIME",
        help="last bin holds this time (same forms; unspecified parts are the latest)",
    )
    parser.add_argument("--bin-slots", action="store_true", help="label bins by index, not time")
    parser.add_argument(
        "--epoch-slots", action="store_true", help="label bins in epoch seconds (deprecated)"
    )
    add_io_arguments(parser)
    add_table_arguments(parser)
    parser.set_defaults(run=run)


def add_io_arguments(parser: argparse.ArgumentParser) -> None:
    """Inputs and output format, the same for count, uniq and stats."""
    add_input_arguments(parser)  # files, folders, globs, stdin; --input-format, --skip-bad-lines
    parser.add_argument(
        "--format",
        choices=("text", "csv", "json"),
        default="text",
        help="text: SiLK-style |-separated columns; csv; json: one document",
    )


def iter_input(
    args: argparse.Namespace, columns: frozenset[str] | None = None, *, in_place: bool = False
) -> Iterator[FlowBatch]:
    """Every batch of every input, in order; SiLK files decode only ``columns`` (with
    ``in_place``, records that store them plainly are not decoded: the batches are
    views of the records with just those columns, in the file's integer widths).

    No input named reads stdin, as SiLK's tools do. ``--ipv6-policy`` drops or
    converts records here, before any computation. The batches are read on a
    thread one or two ahead of the caller's work.
    """
    inputs = resolve_inputs(input_names(args)) if not getattr(args, "xargs", None) else xargs(args)
    policy = getattr(args, "ipv6_policy", "mix")
    if policy != "mix" and columns is not None:
        columns = columns | {"ipv6", "sip", "dip", "nhip"}
    copy_input(args, inputs)

    def batches() -> Iterator[FlowBatch]:
        for batch in read_inputs(args, inputs, rows=READ_ROWS, columns=columns, in_place=in_place):
            yield apply_ipv6_policy(batch, policy)

    return read_ahead(batches())


def apply_ipv6_policy(batch: FlowBatch, policy: str) -> FlowBatch:
    """SiLK's ``--ipv6-policy``: ``ignore`` drops IPv6 records, ``only`` keeps just them,
    ``asv4`` keeps IPv6 records whose addresses are IPv4-mapped and prints them as IPv4;
    ``mix`` and ``force`` keep everything (``force`` prints every address as IPv6).
    """
    if policy in ("mix", "force") or not len(batch):
        return batch
    ipv6 = batch["ipv6"]
    if policy == "ignore":
        return batch if not ipv6.any() else batch[~ipv6]
    if policy == "only":
        return batch[ipv6]
    # asv4: mapped addresses of IPv6 records become IPv4 records
    if not ipv6.any():
        return batch
    mapped = np.ones(len(batch), bool)
    for name in ("sip", "dip", "nhip"):
        words = np.ascontiguousarray(batch[name]).view(">u4").reshape(-1, 4)
        mapped &= (words[:, 0] == 0) & (words[:, 1] == 0) & (words[:, 2] == 0xFFFF)
    keep = ~ipv6 | mapped
    out = batch[keep]
    out["ipv6"] = False
    return out


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    """SiLK's text-output switches, the same for cut, count, uniq and stats."""
    group = parser.add_argument_group("SiLK text output")
    group.add_argument("--no-titles", action="store_true", help="omit the title row")
    group.add_argument(
        "--no-columns", action="store_true", help="do not pad cells to their column width"
    )
    group.add_argument(
        "--column-separator", metavar="C", default="|", help="cell separator (default |)"
    )
    group.add_argument(
        "--no-final-delimiter", action="store_true", help="no separator after the last cell"
    )
    group.add_argument(
        "--delimited",
        nargs="?",
        const="|",
        action=_OptionalChar,
        metavar="C",
        help="--no-columns --no-final-delimiter --column-separator=C (default |)",
    )
    group.add_argument(
        "--ipv6-policy",
        choices=IPV6_POLICIES,
        default=os.environ.get("SILK_IPV6_POLICY", "mix").strip().lower()
        if os.environ.get("SILK_IPV6_POLICY", "mix").strip().lower() in IPV6_POLICIES
        else "mix",
        help="ignore IPv6 records, print mapped ones as IPv4 (asv4), mix, "
        "force every address to IPv6, or only IPv6 records (default $SILK_IPV6_POLICY, else mix)",
    )
    group.add_argument(
        "--ip-format", default="canonical", metavar="FORMAT", help=", ".join(IP_FORMATS)
    )
    group.add_argument(
        "--integer-ips", action="store_true", help="addresses as integers (--ip-format=decimal)"
    )
    group.add_argument(
        "--zero-pad-ips",
        action="store_true",
        help="zero-padded addresses (--ip-format=zero-padded)",
    )
    group.add_argument(
        "--timestamp-format",
        metavar="FORMAT",
        help="default, iso, m/d/y or epoch, optionally with ,no-msec (and ,utc / ,local)",
    )
    group.add_argument("--epoch-time", action="store_true", help="--timestamp-format=epoch")
    group.add_argument(
        "--legacy-timestamps", nargs="?", const="1", help="1: --timestamp-format=m/d/y"
    )
    group.add_argument("--integer-sensors", action="store_true", help="sensor ids instead of names")
    group.add_argument(
        "--integer-tcp-flags", action="store_true", help="TCP flags as numbers, not FSRPAUEC"
    )
    group.add_argument(
        "--site-config-file",
        metavar="PATH",
        help="silk.conf naming sensors, classes and types (default: $SILK_CONFIG_FILE, "
        "else the twoway site)",
    )
    group.add_argument(
        "--output-path", metavar="PATH", help="write the text here (stdout, stderr or a file)"
    )
    group.add_argument(
        "--copy-input", metavar="PATH", help="also copy the binary input here (stdout or a file)"
    )
    group.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="NAME",
        help="flowrate.so is built in (its fields are always available); others are refused",
    )
    group.add_argument("--pager", metavar="PROG", help="accepted; output is never paged")
    add_xargs_argument(group)
    for direction, default in (
        ("incoming", "all/in,all/inweb"),
        ("outgoing", "all/out,all/outweb"),
    ):
        group.add_argument(
            f"--{direction}-flowtypes",
            default=default,
            metavar="CLASS/TYPE,...",
            help=f"int-ext-fields: the {direction} flowtypes (only the default, {default})",
        )


class _OptionalChar(argparse.Action):
    """``--delimited`` or ``--delimited=C``: SiLK takes the character only after ``=``.

    argparse would take the word after a bare ``--delimited`` as its value; a word
    longer than one character is an input file, kept for :func:`input_names`.
    """

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if values is not None and len(values) > 1:
            namespace.stray_inputs = [*getattr(namespace, "stray_inputs", []), values]
            values = self.const
        setattr(namespace, self.dest, values)


def input_names(args: argparse.Namespace) -> list[str]:
    """The inputs named on the command line, or ``-`` (stdin) when none is."""
    return [*getattr(args, "stray_inputs", []), *args.inputs] or ["-"]


#: SiLK plug-ins whose fields are built in (their --plugin switch is accepted)
BUILT_IN_PLUGINS = ("flowrate", "int-ext-fields")


class PluginError(SilkwatchError):
    """A SiLK plug-in we do not provide."""

    reason = "unsupported_plugin"


def table_style(args: argparse.Namespace) -> TableStyle:
    """The ``TableStyle`` of the text switches (``--delimited`` etc.)."""
    for plugin in args.plugin:
        if Path(plugin).name.removesuffix(".so") not in BUILT_IN_PLUGINS:
            raise PluginError(
                f"plug-in {plugin!r} is not available (built in: flowrate.so, int-ext-fields.so)"
            )
    defaults = {"incoming": "all/in,all/inweb", "outgoing": "all/out,all/outweb"}
    for direction, default in defaults.items():
        if getattr(args, f"{direction}_flowtypes", default) != default:
            raise PluginError(f"--{direction}-flowtypes: only {default} is supported")
    if args.delimited is not None:
        return TableStyle(False, (args.delimited or "|").encode(), False, not args.no_titles)
    return TableStyle(
        not args.no_columns,
        args.column_separator.encode() or b"|",
        not args.no_final_delimiter,
        not args.no_titles,
    )


def ip_options(args: argparse.Namespace) -> tuple[str, str]:
    """(ipv6 policy, ip format) of the switches."""
    ip_format = "canonical"
    for word in (args.ip_format or "").split(","):
        if word.strip() in IP_FORMATS:
            ip_format = word.strip()
    if args.integer_ips:
        ip_format = "decimal"
    if args.zero_pad_ips:
        ip_format = "zero-padded"
    return args.ipv6_policy, ip_format


def time_options(args: argparse.Namespace) -> tuple[str, bool]:
    """(style, milliseconds) of ``--timestamp-format`` and its legacy spellings."""
    if args.timestamp_format:
        try:
            return parse_timestamp_format(args.timestamp_format)
        except ValueError as exc:
            raise CountArgumentError(str(exc)) from exc
    if args.epoch_time:
        return "epoch", True
    if args.legacy_timestamps not in (None, "0"):
        return "m/d/y", True
    try:  # SiLK: an empty or invalid $SILK_TIMESTAMP_FORMAT means the default
        return parse_timestamp_format(os.environ.get("SILK_TIMESTAMP_FORMAT", ""))
    except ValueError:
        return "default", True


def copy_input(args: argparse.Namespace, inputs: Sequence[str]) -> None:
    """``--copy-input``: the binary input, copied as read (one SiLK stream per input)."""
    target = getattr(args, "copy_input", None)
    if not target:
        return
    from silkwatch.connectors.output import open_stream  # one error line for a missing folder

    out = open_stream(target)
    try:
        for source in inputs:
            if source == "-":
                raise CountArgumentError("--copy-input cannot copy stdin")
            try:
                with open(source, "rb") as raw:
                    shutil.copyfileobj(raw, out)
            except OSError as exc:
                raise CountArgumentError(f"--copy-input: {source}: {exc.strerror or exc}") from exc
        out.flush()
    finally:
        if out not in (sys.stdout.buffer, sys.stderr.buffer):
            out.close()


def open_output(args: argparse.Namespace) -> BinaryIO:
    """Where the text goes: ``--output-path`` (stdout, stderr, a file) or stdout."""
    path = getattr(args, "output_path", None)
    sys.stdout.flush()
    if not path or path in ("-", "stdout"):
        return sys.stdout.buffer
    if path == "stderr":
        return sys.stderr.buffer
    from silkwatch.connectors.output import open_stream  # one error line for a missing folder

    return open_stream(path)


def write_table(
    args: argparse.Namespace,
    titles: Sequence[str],
    columns: Sequence[np.ndarray],
    widths: Sequence[int],
    *,
    preamble: Sequence[str] = (),
) -> None:
    """SiLK's text table (``preamble`` lines, titles, rows) in the style of the switches."""
    style = table_style(args)
    out = open_output(args)
    try:
        for chunk in iter_table(titles, columns, widths, style, preamble=preamble):
            out.write(chunk)
        out.flush()
    finally:
        if out not in (sys.stdout.buffer, sys.stderr.buffer):
            out.close()


def write_output(
    args: argparse.Namespace,
    titles: Sequence[str],
    rows: Sequence[Sequence[str]],
    document: dict[str, Any],
    *,
    preamble: Sequence[str] = (),
    min_widths: Sequence[int] = (),
    out: TextIO | None = None,
) -> None:
    """Print a result as SiLK text (``preamble`` lines then a table), CSV or JSON.

    The text table right-aligns each column to its widest cell and ends every
    cell with ``|``, as SiLK's tools do; CSV carries the same cells; JSON gets
    ``document``, whose numbers are not rounded for display.
    """
    out = out or sys.stdout
    if args.format == "json":
        json.dump(document, out, indent=1)
        out.write("\n")
        return
    if args.format == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(titles)
        writer.writerows(rows)
        return
    minimum = list(min_widths) + [0] * (len(titles) - len(min_widths))
    widths = [
        max([len(title), minimum[i]] + [len(row[i]) for row in rows])
        for i, title in enumerate(titles)
    ]
    for line in preamble:
        out.write(line + "\n")
    for row in [titles, *rows]:
        out.write("".join(f"{cell:>{width}}|" for cell, width in zip(row, widths, strict=True)))
        out.write("\n")


DAY_MS = 86_400_000


def parse_silk_time(text: str) -> tuple[int, int]:
    """rwcount's ``--start-time``/``--end-time``: ``YYYY/MM/DD[:HH[:MM[:SS[.sss]]]]``
    (``T`` or ``:`` after the day) or epoch seconds → (ms since the epoch, UTC, and the
    ms length of the precision given: a day, an hour... down to 1).

    >>> parse_silk_time("2009/02/14T19:30:00"), parse_silk_time("2009/02/10:00:00:00")
    ((1234639800000, 1000), (1234224000000, 1000))
    >>> parse_silk_time("2009/02/14")[1], parse_silk_time("1234224000.5")
    (86400000, (1234224000500, 1))
    """
    text = text.strip()
    if text.replace(".", "", 1).isdigit():
        whole, _, fraction = text.partition(".")
        if fraction:
            return int(whole) * 1000 + int((fraction + "000")[:3]), 1
        return int(whole) * 1000, 1000
    date, _, clock = text.replace("T", ":", 1).partition(":")
    try:
        year, month, day = (int(part) for part in date.split("/"))
        parts = clock.split(":") if clock else []
        seconds, _, fraction = (parts[2] if len(parts) > 2 else "").partition(".")
        fields = [int(p) for p in parts[:2]] + ([int(seconds)] if seconds else [])
        base = int(np.datetime64(f"{year:04d}-{month:02d}-{day:02d}", "ms").astype(np.int64))
    except ValueError as exc:
        raise CountArgumentError(f"count: cannot parse the time {text!r}") from exc
    units = (3_600_000, 60_000, 1000)
    ms = base + sum(value * unit for value, unit in zip(fields, units, strict=False))
    if fraction:
        return ms + int((fraction + "000")[:3]), 1
    return ms, units[len(fields) - 1] if fields else DAY_MS


def window(args: argparse.Namespace, bin_ms: int) -> tuple[int | None, int | None]:
    """rwcount's (start, exclusive end) of ``--start-time``/``--end-time``: the end moves to
    the bin boundary after the last moment of its precision (``rwcountsetup.c``)."""
    start_ms = parse_silk_time(args.start_time)[0] if args.start_time else None
    if not args.end_time:
        return start_ms, None
    end_ms, precision_ms = parse_silk_time(args.end_time)
    ceiling = end_ms + precision_ms  # one past the last moment the end time names
    anchor = end_ms if start_ms is None else start_ms
    if ceiling <= anchor:
        raise CountArgumentError("count: --end-time is less than --start-time")
    return start_ms, anchor + bin_ms * (1 + (ceiling - anchor - 1) // bin_ms)


def _origin_ms(first_ms: int, bin_ms: int, start_ms: int | None, end_ms: int | None) -> int:
    """Where rwcount's bin grid is anchored (its ``initBins``): the start time; else a day
    boundary before the first record; moved to end on the end time when only that is given."""
    if start_ms is not None:
        return start_ms
    origin = first_ms - first_ms % DAY_MS
    if bin_ms > DAY_MS:
        origin -= 7 * DAY_MS
    elif bin_ms >= 1000:
        origin -= 2 * DAY_MS
    if end_ms is not None:
        origin = end_ms - bin_ms * (1 + (end_ms - origin) // bin_ms)  # aligned on the end
    return origin


def run(args: argparse.Namespace) -> int:
    freeze_imports()
    bin_ms = round(args.bin_size * 1000)
    if bin_ms < 1:
        raise CountArgumentError(f"count: --bin-size {args.bin_size} is below 0.001 seconds")
    scheme = parse_load_scheme(args.load_scheme)  # fail before reading any input
    start_ms, end_ms = window(args, bin_ms)
    counter = None
    for batch in iter_input(args, VOLUME_COLUMNS, in_place=True):  # the kernel reads records
        if not len(batch):
            continue
        if counter is None:
            origin = _origin_ms(int(batch["stime_ms"][0]), bin_ms, start_ms, end_ms)
            counter = VolumeCounter(bin_ms=bin_ms, scheme=scheme, origin_ms=origin)
        counter.update(batch)
    origin = counter.origin_ms if counter else 0
    merged = counter.result() if counter else empty_bins()
    # from here on, bins are counted from rwcount's origin (its --bin-slots numbers)
    merged = BinVolumes(
        merged.group, merged.bin_start_ms - origin, merged.records, merged.bytes, merged.packets
    )
    if start_ms is not None or end_ms is not None:
        low = -(1 << 62) if start_ms is None else start_ms - origin
        high = (1 << 62) if end_ms is None else end_ms - origin
        keep = (merged.bin_start_ms >= low) & (merged.bin_start_ms < high)
        merged = BinVolumes(*(getattr(merged, name)[keep] for name in _BIN_COLUMNS))
    rows = _printed_bins(merged, bin_ms, start_ms, end_ms, origin, args.skip_zeroes)
    times = rows.bin_start_ms + origin
    if args.format != "text":
        return _write_plain(args, rows, times, bin_ms, scheme)
    style, msec = time_options(args)
    if args.epoch_slots:
        style = "epoch"
    msec = msec and bin_ms % 1000 != 0
    if args.bin_slots:
        labels = int_cells(rows.bin_start_ms // bin_ms)
    else:
        labels = time_cells(times, style, msec=msec)
    columns = [labels] + [
        float_cells(getattr(rows, name), 2) for name in ("records", "bytes", "packets")
    ]
    write_table(
        args, ["Date", "Records", "Bytes", "Packets"], columns, [23 if msec else 19, 15, 20, 17]
    )
    return 0


_BIN_COLUMNS = ("group", "bin_start_ms", "records", "bytes", "packets")
#: rows of empty bins printed between records at most (40 B of arrays each, 2 GB): a record
#: dated centuries ahead would otherwise ask for a table of billions of empty rows
MAX_PRINTED_BINS = 50_000_000


def _printed_bins(
    merged: BinVolumes,
    bin_ms: int,
    start_ms: int | None,
    end_ms: int | None,
    origin: int,
    skip_zeroes: bool,
) -> BinVolumes:
    """rwcount's ``printBins``: from the start time (else the first bin with bytes) to the
    end time (else the last bin with bytes); ``--skip-zeroes`` drops bins without records."""
    with_bytes = merged.bin_start_ms[merged.bytes > 0]
    if start_ms is not None:
        first = start_ms - origin
    elif len(with_bytes):
        first = int(with_bytes.min())
    else:
        return empty_bins()
    if end_ms is not None:
        stop = end_ms - origin  # rows while the bin starts before the end time
        last = first + ((stop - first - 1) // bin_ms) * bin_ms if stop > first else first - bin_ms
    elif len(with_bytes):
        last = int(with_bytes.max())
    else:
        last = first
    if skip_zeroes:  # only bins that hold records: as many as the input made, whatever the span
        keep = (merged.bin_start_ms >= first) & (merged.bin_start_ms <= last) & (merged.records > 0)
        return BinVolumes(*(getattr(merged, name)[keep] for name in _BIN_COLUMNS))
    rows_printed = (last - first) // bin_ms + 1 if last >= first else 0
    if rows_printed > MAX_PRINTED_BINS:
        raise CountArgumentError(
            f"count: {rows_printed:,} bins of {bin_ms / 1000:g} s between the first and the "
            f"last record (over {MAX_PRINTED_BINS:,}); use --skip-zeroes, a larger --bin-size "
            "or --start-time/--end-time"
        )
    span = (
        np.arange(first, last + 1, bin_ms, dtype=np.int64)
        if rows_printed
        else np.zeros(0, np.int64)
    )
    slot = np.searchsorted(merged.bin_start_ms, span)
    slot = slot.clip(max=max(len(merged) - 1, 0))
    found = (merged.bin_start_ms[slot] == span) if len(merged) else np.zeros(len(span), bool)

    def take(column: np.ndarray) -> np.ndarray:
        return np.where(found, column[slot], 0.0) if len(merged) else np.zeros(len(span))

    return BinVolumes(
        np.zeros(len(span), np.int64),
        span,
        take(merged.records),
        take(merged.bytes),
        take(merged.packets),
    )


def _write_plain(
    args: argparse.Namespace, rows: BinVolumes, times: np.ndarray, bin_ms: int, scheme: int
) -> int:
    """``--format=csv|json``."""
    dates = format_times(times) if bin_ms % 1000 else second_times(times)
    cells = [
        [date, f"{r:.2f}", f"{b:.2f}", f"{p:.2f}"]
        for date, r, b, p in zip(dates, rows.records, rows.bytes, rows.packets, strict=True)
    ]
    document = {
        "bin_size_ms": bin_ms,
        "load_scheme": next(name for name, id_ in LOAD_SCHEMES.items() if id_ == scheme),
        "rows": [
            {"date": d, "bin_start_ms": t, "records": r, "bytes": b, "packets": p}
            for d, t, r, b, p in zip(
                dates,
                times.tolist(),
                rows.records.tolist(),
                rows.bytes.tolist(),
                rows.packets.tolist(),
                strict=True,
            )
        ],
    }
    write_output(args, ["Date", "Records", "Bytes", "Packets"], cells, document)
    return 0
