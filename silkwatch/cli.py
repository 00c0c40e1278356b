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

from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.runtime import tune_process

#: command name → the module that registers it, in the order ``--help`` lists them
COMMANDS: dict[str, str] = {
    "demo": "silkwatch.commands.demo",
    "detect": "silkwatch.commands.detect",
    "publish": "silkwatch.commands.publish",
    "collect": "silkwatch.commands.collect",
    "worker": "silkwatch.commands.worker",
    "alerts": "silkwatch.commands.alerts",
    "cut": "silkwatch.commands.cut",
    "count": "silkwatch.commands.count",
    "uniq": "silkwatch.commands.uniq",
    "stats": "silkwatch.commands.stats",
    "filter": "silkwatch.commands.filter",
    "sort": "silkwatch.commands.sort",
    "plot": "silkwatch.commands.plot",
    "grafana": "silkwatch.commands.grafana",
    "eval": "silkwatch.commands.evaluate",
}

#: command → its one-line help, for ``silkwatch --help`` without importing any command
#: (tests/commands/test_cli.py checks each equals the help its module registers); a
#: command missing here is imported to list it
SUMMARIES: dict[str, str] = {
    "demo": "make a synthetic day with planted attacks and detect them (no Kafka)",
    "detect": "detect exfiltration, beacons and DNS tunnels in a flow file (no Kafka)",
    "publish": "publish SiLK flows to Kafka",
    "collect": "receive NetFlow v5/v9 and IPFIX exports",
    "worker": "run the stream processor (Faust worker) on Kafka",
    "alerts": "deliver alerts from Kafka to Slack, Mattermost, Teams, webhooks, Grafana",
    "cut": "print SiLK flow records as text (like rwcut)",
    "count": "records, bytes and packets per time bin (like SiLK's rwcount)",
    "uniq": "aggregate flows by key fields (like SiLK's rwuniq)",
    "stats": "top or bottom N bins by a value (like SiLK's rwstats)",
    "filter": "select flows into pass/fail SiLK files (like rwfilter)",
    "sort": "sort flows by fields into a SiLK file (like rwsort)",
    "plot": "FlowPlotter's charts as one offline HTML page",
    "grafana": "build the Grafana dashboards, or push them to a Grafana server",
    "eval": "score detection on the real captures and synthetic sweeps",
}

EPILOG = """\
examples:
  silkwatch demo                              make a synthetic day and detect on it
  rwfilter ... --pass=stdout | silkwatch detect -
  silkwatch <command> --help                  every command teaches its options
"""


def version() -> str:
    """The installed package's version (``pyproject.toml``), without importing any command."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("silkwatch")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout never installed
        return "unknown"


class _Version(argparse.Action):
    """``--version``, looked up only when asked: ``importlib.metadata`` scans every
    installed distribution, 0.1 s that every command paid at start."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs) -> None:
        kwargs.update(nargs=0, default=argparse.SUPPRESS)
        super().__init__(option_strings, argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"silkwatch {version()}")
        parser.exit()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser: every subcommand, or just ``only`` when it names one.

    Registering a command imports its module, and some pull in heavy libraries
    (scipy, Faust, the Grafana SDK); ``silkwatch cut`` should not wait for them.
    """
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
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    if only in COMMANDS:
        importlib.import_module(COMMANDS[only]).register(subparsers)
        return parser
    for name, module in COMMANDS.items():  # the listing only: no command runs from here
        if name in SUMMARIES:
            subparsers.add_parser(name, help=SUMMARIES[name])
        else:
            importlib.import_module(module).register(subparsers)
    return parser


def _input_faults() -> int:
    """Inputs reported damaged so far in this process (``silkwatch.connectors.inputs.FAULTS``)."""
    inputs = sys.modules.get("silkwatch.connectors.inputs")  # not imported: no input read yet
    return len(inputs.FAULTS.messages) if inputs is not None else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the process exit status."""
    tune_process()  # before the command's modules import numpy
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    args.command_line = ["silkwatch", *argv]  # for the invocation header of files we write
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if not args.verbose and command != "worker":  # the worker has its own --loglevel
        # Kafka clients log every failed connection attempt; the command's own one-line
        # error says what failed (-v shows the clients' story)
        for name in ("kafka", "aiokafka"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    faults_before = _input_faults()
    try:
        status = int(args.run(args) or 0)
        # inputs that failed part-way were reported as they happened; the run went on
        return max(status, 1) if _input_faults() > faults_before else status
    except SilkwatchError as exc:
        print(f"silkwatch: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); silence the flush at exit too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
