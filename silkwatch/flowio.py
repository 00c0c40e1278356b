"""The flow input and output options commands share, over :mod:`silkwatch.connectors.inputs`.

``INPUT...`` (files, folders, repository trees, globs, ``-``; none: standard
input), ``--input-format`` and ``--skip-bad-lines``: one definition, so that
``detect``, ``cut``, ``count``, ``uniq``, ``stats``, ``plot``, ``filter`` and ``sort``
read the same inputs the same way; ``--compression-method`` for the commands
that write SiLK files (``filter``, ``sort``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from silkwatch.detectors.exceptions import SilkwatchError

#: what ``--input-format`` takes (``silkwatch.connectors.flows.FORMATS``, spelt out here so that
#: ``--help`` does not import the readers; tests/commands/test_inputs.py checks they agree)
INPUT_FORMATS = ("auto", "silk", "nfcapd", "rwcut", "nfdump", "zeek", "argus", "pcap")

INPUTS_HELP = (
    "flow files (SiLK, nfcapd, rwcut/nfdump text, Zeek, Argus), folders, repository "
    "trees or globs; - or none reads standard input"
)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number of lines, not {text!r}")
    return int(text)


def add_input_arguments(parser: argparse.ArgumentParser, *, positional: bool = True) -> None:
    """``INPUT...``, ``--input-format`` and ``--skip-bad-lines`` on ``parser``."""
    if positional:
        parser.add_argument("inputs", nargs="*", metavar="INPUT", help=INPUTS_HELP)
    parser.add_argument(
        "--input-format",
        choices=INPUT_FORMATS,
        default="auto",
        help="input format (default: sniffed from each file's first bytes)",
    )
    parser.add_argument(
        "--skip-bad-lines",
        type=_count,
        default=0,
        metavar="N",
        help="text inputs: skip up to N malformed lines per file (default 0: the first "
        "is an error naming file and line); the count skipped is printed on stderr",
    )


class InputListError(SilkwatchError):
    """An ``--xargs`` list of inputs that cannot be read."""

    reason = "bad_argument"


def add_xargs_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """SiLK's ``--xargs[=FILE]`` (rwfilter, rwsort, rwcut...): the inputs are named in FILE."""
    parser.add_argument(
        "--xargs",
        "-xargs",
        nargs="?",
        const="-",
        metavar="FILE",
        help="read the names of the input files from FILE, one a line (default stdin)",
    )


def xargs(args: argparse.Namespace) -> list[str]:
    """The inputs ``--xargs[=FILE]`` names, one a line, from FILE or stdin (resolved)."""
    from silkwatch.connectors.inputs import resolve_inputs

    if args.xargs == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(args.xargs).read_text()
        except OSError as exc:
            raise InputListError(f"--xargs {args.xargs}: {exc.strerror}") from exc
    names = [line.strip() for line in text.splitlines() if line.strip()]
    return resolve_inputs(names) if names else []


def read_inputs(
    args: argparse.Namespace,
    files: Sequence[str] | None = None,
    *,
    rows: int = 1 << 17,
    columns: frozenset[str] | None = None,
    run=None,
    keep_going: bool | None = None,
    in_place: bool = False,
) -> Iterator:
    """Batches of every input the command line names (``args.inputs``, or ``files``);
    ``columns`` and ``in_place`` as :func:`silkwatch.connectors.inputs.iter_inputs` takes them."""
    from silkwatch.connectors.flowtext.policy import allow_bad_lines
    from silkwatch.connectors.inputs import iter_inputs, resolve_inputs

    files = resolve_inputs(args.inputs) if files is None else files
    return iter_inputs(
        files,
        format=args.input_format,
        rows=rows,
        columns=columns,
        on_error=allow_bad_lines(args.skip_bad_lines),
        run=run,
        keep_going=keep_going,
        in_place=in_place,
    )


#: SiLK's names for the block compressions of the files we write
COMPRESSIONS = ("none", "zlib", "lzo1x", "snappy")


def add_compression_argument(parser: argparse.ArgumentParser) -> None:
    """``--compression-method``, defaulting like SiLK to ``$SILK_COMPRESSION_METHOD`` or none."""
    default = os.environ.get("SILK_COMPRESSION_METHOD", "none").lower()
    parser.add_argument(
        "--compression-method",
        choices=COMPRESSIONS,
        default=default if default in COMPRESSIONS else "none",
        help="block compression of the SiLK files written (default: none, or "
        "$SILK_COMPRESSION_METHOD)",
    )


def compression_id(name: str) -> int:
    """The header's compression number for a ``--compression-method`` name."""
    return COMPRESSIONS.index(name)
