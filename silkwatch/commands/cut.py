"""``silkwatch cut``: print SiLK flow records as text, CSV or JSON lines, like rwcut."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator

import numpy as np

from connectors.silk import read_batches
from connectors.silk.text import (
    ALL_FIELDS,
    DEFAULT_FIELDS,
    TIMESTAMP_FORMATS,
    Field,
    TextOptions,
    parse_fields,
    table_lines,
    table_title,
    text_columns,
)
from detectors.schema import FlowBatch

EPILOG = (
    """\
examples:
  silkwatch cut day.rw --num-recs=25
  silkwatch cut day.rw --fields=sIP,dIP,dPort,bytes,sTime --tail-recs=5
  rwfilter --proto=17 --pass=stdout ... | silkwatch cut - --format=csv --timestamp-format=epoch
  silkwatch cut /data/silk --format=json | jq .bytes           # a repository tree

Field names are SiLK's (case-insensitive, unique prefixes accepted):
  """
    + ",".join(ALL_FIELDS)
    + """
--format=text prints rwcut's |-separated right-aligned columns; csv and json
(one object per line) print plain values. With --timestamp-format=epoch, CSV
times are seconds with milliseconds (1434553200.013, as rwcut), JSON times are
integer epoch milliseconds.
"""
)


def _fields(text: str) -> list[Field]:
    try:
        return parse_fields(text)
    except ValueError as exc:
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
    parser.add_argument("source", help="SiLK file, repository folder, or - for stdin")
    parser.add_argument(
        "--fields",
        type=_fields,
        default=parse_fields(DEFAULT_FIELDS),
        help="comma-separated field names (default: rwcut's sIP..sensor)",
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
        "--timestamp-format",
        choices=TIMESTAMP_FORMATS,
        default="default",
        help="2015/06/17T15:00:00.013, 2015-06-17 15:00:00.013, or epoch seconds "
        "(JSON: milliseconds) (%(default)s)",
    )
    parser.add_argument(
        "--integer-tcp-flags", action="store_true", help="flags as numbers, not FSRPAUEC letters"
    )
    parser.add_argument("--no-titles", action="store_true", help="omit the title row")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument(
        "--num-recs", type=_count, help="print only the first N records (0: all, as rwcut)"
    )
    limit.add_argument("--tail-recs", type=_count, help="print only the last N records")
    parser.set_defaults(run=run)


def _selected(args: argparse.Namespace) -> Iterator[FlowBatch]:
    """The batches to print, honouring --num-recs / --tail-recs without holding the file."""
    batches = read_batches(args.source)
    if args.num_recs:
        left = args.num_recs
        for batch in batches:
            if left <= 0:
                break
            yield batch[:left]
            left -= len(batch)
    elif args.tail_recs is not None:  # holds at most N records besides the current batch
        tail = None
        for batch in batches:
            tail = batch if tail is None else np.concatenate([tail, batch])
            tail = tail[len(tail) - min(len(tail), args.tail_recs) :]
        if tail is not None:
            yield tail
    else:
        yield from batches


def run(args: argparse.Namespace) -> int:
    """Stream the records to stdout in the chosen format."""
    fields = parse_fields(ALL_FIELDS) if args.all_fields else args.fields
    opts = TextOptions(
        timestamp_format=args.timestamp_format,
        integer_tcp_flags=args.integer_tcp_flags,
        padded=args.format == "text",
    )
    out = sys.stdout
    writer = csv.writer(out, lineterminator="\n")
    if not args.no_titles:
        if args.format == "text":
            out.write(table_title(fields) + "\n")
        elif args.format == "csv":
            writer.writerow(f.name for f in fields)
    for batch in _selected(args):
        if args.format == "text":
            out.writelines(line + "\n" for line in table_lines(batch, fields, opts))
        elif args.format == "csv":
            writer.writerows(zip(*text_columns(batch, fields, opts), strict=True))
        else:
            names = [f.name for f in fields]
            values = [f.value(batch, opts) for f in fields]
            out.writelines(
                json.dumps(dict(zip(names, row, strict=True))) + "\n"
                for row in zip(*values, strict=True)
            )
    out.flush()
    return 0
