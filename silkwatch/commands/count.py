"""``silkwatch count``: rwcount — records, bytes and packets per time bin.

The binning is :func:`detectors.timebins.bin_volumes`, the very function the
stream uses, applied batch by batch and merged, so a file of any size is
counted in bounded memory. This module also holds what the three SiLK-style
aggregation commands (``count``, ``uniq``, ``stats``) share: input options and
the text/CSV/JSON writer.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

import numpy as np

from connectors.flows import FORMATS, read_flows
from connectors.readahead import read_ahead
from connectors.silk.text import format_times
from detectors.exceptions import SilkwatchError
from detectors.schema import FlowBatch
from detectors.timebins import (
    LOAD_SCHEMES,
    VOLUME_COLUMNS,
    bin_volumes,
    empty_bins,
    fill_span,
    merge_bins,
    parse_load_scheme,
)

logger = logging.getLogger(__name__)

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
    add_io_arguments(parser)
    parser.set_defaults(run=run)


def add_io_arguments(parser: argparse.ArgumentParser) -> None:
    """Inputs and output format, the same for count, uniq and stats."""
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="FILE|-",
        help="SiLK flow files (or nfcapd, rwcut/nfdump text, Zeek, Argus); - reads stdin",
    )
    parser.add_argument(
        "--input-format",
        choices=FORMATS,
        default="auto",
        help="input format (default: sniffed from the first bytes)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "csv", "json"),
        default="text",
        help="text: SiLK-style |-separated columns; csv; json: one document",
    )


def iter_input(
    args: argparse.Namespace, columns: frozenset[str] | None = None
) -> Iterator[FlowBatch]:
    """Every batch of every input, in order; SiLK files decode only ``columns``.

    The batches are read on a thread one or two ahead of the caller's work.
    """

    def batches() -> Iterator[FlowBatch]:
        for source in args.inputs:
            yield from read_flows(source, format=args.input_format, rows=READ_ROWS, columns=columns)

    return read_ahead(batches())


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


def timestamps(ms: np.ndarray, *, with_ms: bool) -> list[str]:
    """Epoch milliseconds as SiLK's default ``YYYY/MM/DDThh:mm:ss[.sss]`` (UTC)."""
    text = format_times(ms)
    return text if with_ms else [t[:-4] for t in text]


def run(args: argparse.Namespace) -> int:
    bin_ms = round(args.bin_size * 1000)
    if bin_ms < 1:
        raise CountArgumentError(f"count: --bin-size {args.bin_size} is below 0.001 seconds")
    scheme = parse_load_scheme(args.load_scheme)  # fail before reading any input
    merged = empty_bins()
    for batch in iter_input(args, VOLUME_COLUMNS):
        merged = merge_bins(merged, bin_volumes(batch, bin_ms=bin_ms, scheme=scheme))
    rows = fill_span(merged, bin_ms=bin_ms, skip_zeroes=args.skip_zeroes)
    dates = timestamps(rows.bin_start_ms, with_ms=bin_ms % 1000 != 0)
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
                rows.bin_start_ms.tolist(),
                rows.records.tolist(),
                rows.bytes.tolist(),
                rows.packets.tolist(),
                strict=True,
            )
        ],
    }
    # rwcount's column widths (the date is 4 narrower without milliseconds)
    widths = (19 if bin_ms % 1000 == 0 else 23, 15, 20, 17)
    write_output(args, ["Date", "Records", "Bytes", "Packets"], cells, document, min_widths=widths)
    return 0
