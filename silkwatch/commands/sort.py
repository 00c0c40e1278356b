"""``silkwatch sort``: rwsort — SiLK flows in the order of some fields, as a SiLK file."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING

from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.flowio import (
    add_compression_argument,
    add_input_arguments,
    add_xargs_argument,
    compression_id,
    read_inputs,
    xargs,
)

if TYPE_CHECKING:
    from silkwatch.detectors.flowsort import KeyColumns
    from silkwatch.detectors.schema import FlowBatch

EPILOG = """\
examples:
  silkwatch sort --fields=sip,stime day.rw --output-path=sorted.rw
  silkwatch sort --fields=bytes --reverse day.rw | silkwatch cut --num-recs=10
  silkwatch filter --proto=6 --pass=stdout day.rw | silkwatch sort --fields=3-5 | rwuniq ...
  silkwatch sort --fields=stime in/2015/06/17/*.rw > day.rw     # many files merged
  find in/ -name '*.rw' | silkwatch sort --xargs --fields=stime -o day.rw
  silkwatch sort --presorted-input --fields=stime sorted-*.rw -o day.rw   # merge only

Fields are rwsort's, by name or number, primary key first; names are case-insensitive
and unique prefixes work:
  sIP,1 dIP,2 sPort,3 dPort,4 protocol,5 packets,6 bytes,7 flags,8 sTime,9 duration,10
  eTime,11 sensor,12 in,13 out,14 nhIP,15 class,20 type,21 icmpTypeCode,25 iType iCode
  initialFlags,26 sessionFlags,27 attributes,28 application,29   (ranges: 1-5)
Records with equal keys keep their input order. Records are held in memory (104 bytes
each) up to --sort-buffer-size (default 2 GiB, as rwsort); beyond it, sorted runs are
spilled to --temp-directory ($SILK_TMPDIR, $TMPDIR, /tmp) and merged: the output is the
same, byte for byte. With --presorted-input the inputs, each sorted by the same --fields
(and --reverse), are merged as they are read: the bytes one sort of them all gives, with
little memory; an input out of that order stops the merge with an error.
"""

#: rwsort's default ceiling on the sort buffer ("near 2GB")
DEFAULT_BUFFER = 2 << 30
_SIZE_SUFFIXES = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


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
    add_xargs_argument(parser)
    parser.add_argument("--fields", required=True, metavar="KEY", help="sort keys, primary first")
    parser.add_argument("--reverse", action="store_true", help="largest first")
    parser.add_argument(
        "--presorted-input",
        action="store_true",
        help="every input is already sorted by these --fields (and --reverse): merge them "
        "(an input out of that order is an error)",
    )
    parser.add_argument(
        "--sort-buffer-size",
        "--buffer-size",
        type=buffer_size,
        default=DEFAULT_BUFFER,
        metavar="SIZE",
        help="most bytes of records sorted in memory (1.5K, 300M, 2G; default 2G); more are "
        "sorted in runs on disk and merged",
    )
    parser.add_argument(
        "--temp-directory",
        metavar="DIR",
        help="where sorted runs go when the buffer is full (default $SILK_TMPDIR, $TMPDIR, /tmp)",
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


def buffer_size(text: str) -> int:
    """rwsort's SIZE: bytes, or a number with K, M or G (powers of 1,024).

    >>> buffer_size("1.5K"), buffer_size("300m"), buffer_size("4096")
    (1536, 314572800, 4096)
    """
    number, unit = text.strip(), 1
    if number[-1:].lower() in _SIZE_SUFFIXES:
        number, unit = number[:-1], _SIZE_SUFFIXES[number[-1].lower()]
    try:
        size = int(float(number) * unit)
    except ValueError:
        size = 0
    if size < 1:
        raise argparse.ArgumentTypeError(
            f"expected a size like 4096, 1.5K, 300M or 2G, not {text!r}"
        )
    return size


def run(args: argparse.Namespace) -> int:
    """Read everything, sort it (in runs on disk beyond the buffer), write in blocks."""
    from silkwatch.connectors.output import STDOUT_NAMES, open_output
    from silkwatch.connectors.silk import SilkWriter
    from silkwatch.detectors.flowsort import parse_sort_fields

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
        files = xargs(args)
    compression = compression_id(args.compression_method)
    with ExitStack() as stack:
        if args.presorted_input:
            blocks = _merged(args, files, keys)
        else:
            blocks = _sorted(args, files, keys, stack)
        out = stack.enter_context(open_output(args.output_path))
        writer = stack.enter_context(SilkWriter(out, compression=compression))
        for block in blocks:
            writer.write(block)
    return 0


def _sorted(
    args: argparse.Namespace,
    files: list[str] | None,
    keys: Sequence[KeyColumns],
    stack: ExitStack,
) -> Iterator[FlowBatch]:
    """Every input read, then sorted (in runs on disk beyond the buffer)."""
    from silkwatch.sortruns import SortedRuns

    runs = SortedRuns(keys, args.reverse, args.sort_buffer_size, _temp_dir(args), stack)
    for batch in read_inputs(args, files, keep_going=True):  # a damaged input: its records
        runs.add(batch)
    return runs.sorted_blocks()


def _merged(
    args: argparse.Namespace, files: list[str] | None, keys: Sequence[KeyColumns]
) -> Iterator[FlowBatch]:
    """``--presorted-input``: the inputs, each sorted already, merged as they are read."""
    from silkwatch.connectors.inputs import resolve_inputs
    from silkwatch.sortruns import merge_presorted

    names = resolve_inputs(args.inputs) if files is None else files
    inputs = [(name, read_inputs(args, [name], keep_going=True)) for name in names]
    return merge_presorted(inputs, keys, args.reverse, args.sort_buffer_size)


def _temp_dir(args: argparse.Namespace) -> str:
    return (
        args.temp_directory
        or os.environ.get("SILK_TMPDIR")
        or os.environ.get("TMPDIR")
        or tempfile.gettempdir()
    )
