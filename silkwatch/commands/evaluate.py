"""``silkwatch eval``: score the detector on the team's real captures and synthetic sweeps.

The harness and its ground truth live in the source tree (``bench/``), beside
the sample data they score (``../shared/data/real``); an installed silkwatch
ships neither, so this command runs from a checkout (``python -m silkwatch eval``
in the repository root) and says so anywhere else.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from detectors.exceptions import SilkwatchError

EPILOG = """\
examples:
  python -m silkwatch eval --no-sweep                 real files only, a table on stdout
  python -m silkwatch eval --write docs/evaluation.md the whole report into the doc
  python -m silkwatch eval --data /srv/pcaps/real     another copy of the data folder

Every pcap goes through softflowd -> IPFIX on 127.0.0.1 -> nfcapd -> nfdump (Debian
packages softflowd and nfdump); flow files through the text and SiLK readers.
"""


class EvalUnavailableError(SilkwatchError):
    """The evaluation harness is not importable (not a source checkout)."""

    reason = "eval_unavailable"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``silkwatch eval`` and ``python -m bench.evaluate`` share."""
    parser.add_argument(
        "--data", type=Path, help="the data/real folder (default: ../shared/data/real)"
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
    try:
        harness = importlib.import_module("bench.evaluate")
    except ModuleNotFoundError as exc:
        raise EvalUnavailableError(
            "eval: bench/evaluate.py not found; run `python -m silkwatch eval` "
            "in the repository root"
        ) from exc
    text = harness.evaluate(
        args.data or harness.DATA, sweep=not args.no_sweep, seeds=args.seeds, hosts=args.hosts
    )
    if args.write:
        harness.write_report(args.write, text)
    else:
        sys.stdout.write(text)
    return 0
