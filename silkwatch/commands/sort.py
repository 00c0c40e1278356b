"""``silkwatch sort``: rwsort — SiLK flows in the order of some fields, as a SiLK file."""

from __future__ import annotations

import argparse
import sys

from detectors.exceptions import SilkwatchError
from silkwatch.flowio import (
    add_compression_argument,
    add_input_arguments,
    compression_id,
    read_inputs,
)

EPILOG = """\
examples:
  silkwatch sort --fields=sip,stime day.rw --output-path=sorted.rw
  silkwatch sort --fields=bytes --reverse day.rw | silkwatch cut --num-recs=10
  silkwatch filter --proto=6 --pass=stdout day.rw | silkwatch sort --fields=3-5 | rwuniq ...
  silkwatch sort --fields=stime in/2015/06/17/*.rw > day.rw     # many files merged
  find in/ -name '*.rw' | silkwatch sort --xargs --fields=stime -o day.rw

Fields are rwsort's, by name or number, primary key first; names are case-insensitive
and unique prefixes work:
  sIP,1 dIP,2 sPort,3 dPort,4 protocol,5 packets,6 bytes,7 flags,8 sTime,9 duration,10
  eTime,11 sensor,12 in,13 out,14 nhIP,15 class,20 type,21 icmpTypeCode,25 iType iCode
  initialFlags,26 sessionFlags,27 attributes,28 application,29   (ranges: 1-5)
Records with equal keys keep their input order. All records are held in memory
(about 104 bytes each).
"""

#: records encoded and written at a time
WRITE_ROWS = 1 << 16


class SortArgumentError(SilkwatchError):
    """A sort command line rwsort would refuse."""

    reason = "bad_argument"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sort`` to the command line."""
    parser = subparsers.add_parser(
        "sort",
        help="sort flows by fields into a SiLK file (like rwsort)",
        description="Read flows (files, folders, globs, stdin, any input format), sort them "
        "by the --fields keys and write one SiLK flow file.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_arguments(parser)
    parser.add_argument(
        "--xargs",
        nargs="?",
        const="-",
        metavar="FILE",
        help="read the names of the input files from FILE, one a line (default stdin)",
    )
    parser.add_argument("--fields", required=True, metavar="KEY", help="sort keys, primary first")
    parser.add_argument("--reverse", action="store_true", help="largest first")
    parser.add_argument(
        "--presorted-input", action="store_true", help="accepted for rwsort scripts (no effect)"
    )
    parser.add_argument(
        "--output-path",
        "-o",
        default="stdout",
        metavar="PATH",
        help="where the SiLK file goes (default: stdout, when it is not a terminal)",
    )
    add_compression_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Read everything, sort once, write in blocks."""
    import numpy as np

    from connectors.output import STDOUT_NAMES, open_output
    from connectors.silk import SilkWriter
    from detectors.flowsort import parse_sort_fields, sort_order
    from detectors.schema import empty_batch, take_rows

    try:
        keys = parse_sort_fields(args.fields)
    except ValueError as exc:
        raise SortArgumentError(f"sort: --fields={args.fields}: {exc}") from exc
    if args.output_path in STDOUT_NAMES and sys.stdout.isatty():
        raise SortArgumentError(
            "sort: will not write binary flows to a terminal; use --output-path or a pipe"
        )
    files = None
    if args.xargs:
        if args.inputs:
            raise SortArgumentError("sort: --xargs names the inputs; name no other input")
        from silkwatch.commands.count import xargs

        files = xargs(args)
    # a damaged input: its records, exit 1
    batches = list(read_inputs(args, files, keep_going=True))
    flows = np.concatenate(batches) if batches else empty_batch()
    del batches
    order = sort_order(flows, keys, reverse=args.reverse)
    compression = compression_id(args.compression_method)
    with open_output(args.output_path) as out, SilkWriter(out, compression=compression) as writer:
        for start in range(0, len(order), WRITE_ROWS):
            writer.write(take_rows(flows, order[start : start + WRITE_ROWS]))
    return 0
