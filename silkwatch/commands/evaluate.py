"""``silkwatch eval``: score the detector on the team's real captures and synthetic sweeps.

The harness and its ground truth are :mod:`silkwatch.evaluation`; the data it
scores is not shipped: ``--data`` names the folder (from a checkout it
defaults to ``../shared/data`` beside the repository).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """\
examples:
  silkwatch eval --no-sweep                   real files only, a table on stdout
  silkwatch eval --write docs/evaluation.md   the whole report into the doc
  silkwatch eval --data /srv/silkwatch-data   another copy of the data folder (real/, silk/)

Every pcap goes through softflowd -> IPFIX on 127.0.0.1 -> nfcapd -> nfdump (Debian
packages softflowd and nfdump); flow files through the text and SiLK readers.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``silkwatch eval`` (``python -m bench.evaluate`` passes its own on)."""
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="the data folder holding real/ and silk/ (default: ../shared/data beside "
        "the checkout)",
    )
    parser.add_argument(
        "--write", type=Path, metavar="MARKDOWN", help="replace the generated part of this file"
    )
    parser.add_argument("--no-sweep", action="store_true", help="real files only (seconds)")
    parser.add_argument("--seeds", type=int, default=2, help="synthetic days per sweep cell")
    parser.add_argument("--hosts", type=int, default=60, help="hosts per synthetic day")


def register(subparsers) -> None:
    """Add ``silkwatch eval``."""
    parser = subparsers.add_parser(
        "eval",
        help="score detection on the real captures and synthetic sweeps",
        description="Score detection on the real captures and flow files, and on synthetic sweeps.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate, then print the report or write it into the markdown file."""
    from silkwatch.evaluation.harness import data_folder, evaluate, write_report

    data = data_folder(args.data)
    text = evaluate(data, sweep=not args.no_sweep, seeds=args.seeds, hosts=args.hosts)
    if args.write:
        write_report(args.write, text)
    else:
        sys.stdout.write(text)
    return 0
