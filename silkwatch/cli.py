"""The ``silkwatch`` command: parses arguments and hands over to one subcommand.

Errors a user can act on (``SilkwatchError``) become one line on stderr and a
non-zero exit status; a broken pipe (``silkwatch cut big.rw | head``) is not an
error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from detectors.exceptions import SilkwatchError

#: subcommand modules, in the order ``--help`` lists them
COMMAND_MODULES: tuple[str, ...] = (
    "silkwatch.commands.demo",
    "silkwatch.commands.detect",
    "silkwatch.commands.publish",
    "silkwatch.commands.worker",
    "silkwatch.commands.alerts",
    "silkwatch.commands.cut",
    "silkwatch.commands.count",
    "silkwatch.commands.uniq",
    "silkwatch.commands.stats",
    "silkwatch.commands.plot",
    "silkwatch.commands.grafana",
    "silkwatch.commands.evaluate",
)

EPILOG = """\
examples:
  silkwatch demo                              make a synthetic day and detect on it
  rwfilter ... --pass=stdout | silkwatch detect -
  silkwatch <command> --help                  every command teaches its options
"""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="silkwatch",
        description="Continuous anomaly detection (exfiltration, beacons, DNS tunnels) "
        "on SiLK / NetFlow flow records.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except SilkwatchError as exc:
        print(f"silkwatch: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); silence the flush at exit too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
