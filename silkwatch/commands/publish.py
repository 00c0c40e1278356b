"""``silkwatch publish``: send SiLK flows to Kafka as flow-batch frames."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from detectors.exceptions import SilkwatchError
from detectors.schema import FlowBatch
from silkwatch.flowio import add_input_arguments, read_inputs
from streams.settings import WorkerSettings

EPILOG = """\
examples:
  silkwatch publish day.rw --broker kafka://127.0.0.1:9092
  rwfilter --type=all --pass=stdout ... | silkwatch publish - --broker kafka://127.0.0.1:9092
  silkwatch publish /data/silk --broker kafka://127.0.0.1:9092     # a SiLK repository tree
  silkwatch publish /data/silk --follow --checkpoint /var/lib/silkwatch/publish.json

--follow keeps reading the repository as rwflowpack/rwflowappend add hour files and
append to them; the checkpoint remembers how far each file was published (saved only
after Kafka acknowledged), so a restart neither loses nor repeats flows.

Flows are split by source address over the topic's partitions (a new topic gets
--partitions), so each worker sees every flow of the hosts it owns.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``publish`` to the command line."""
    defaults = WorkerSettings()
    parser = subparsers.add_parser(
        "publish",
        help="publish SiLK flows to Kafka",
        description="Read SiLK flow files, a repository tree or stdin and produce them to "
        "Kafka in batches (acks=all, idempotent).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_arguments(parser)  # files, folders, globs, stdin; --input-format, --skip-bad-lines
    parser.add_argument("--broker", default=defaults.broker, help="kafka://HOST:PORT (%(default)s)")
    parser.add_argument("--topic", default=defaults.flows_topic, help="flows topic (%(default)s)")
    parser.add_argument(
        "--partitions", type=int, default=defaults.partitions, help="partitions of a new topic"
    )
    parser.add_argument(
        "--follow", action="store_true", help="keep publishing what a repository gains, forever"
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=defaults.data_dir / "publish-checkpoint.json",
        help="with --follow: where progress is remembered (%(default)s)",
    )
    parser.add_argument(
        "--poll", type=float, default=5.0, help="with --follow: seconds between scans"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Publish every batch, show flows/s on a terminal, print exact totals."""
    from tqdm import tqdm  # the Kafka client and tqdm load here, not for publish --help

    from connectors.kafka.publisher import FlowPublisher

    started_s = time.monotonic()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with (
        FlowPublisher(args.broker, args.topic, partitions=args.partitions) as publisher,
        tqdm(unit=" flows", unit_scale=True, disable=not sys.stderr.isatty()) as progress,
    ):
        for batch in _batches(args, stop):
            publisher.send(batch)
            if args.follow:
                publisher.flush()  # acknowledged before the follower checkpoints it
            progress.update(batch.size)
    counts = publisher.counts
    print(
        f"published {counts.flows:,} flows, {counts.bytes:,} bytes in {counts.frames:,} frames "
        f"to {args.topic} ({publisher.partitions} partitions) "
        f"in {time.monotonic() - started_s:.1f} s"
    )
    return 0


def _batches(args: argparse.Namespace, stop: threading.Event) -> Iterator[FlowBatch]:
    if not args.follow:
        return read_inputs(args, rows=65_536)
    if len(args.inputs) != 1 or not Path(args.inputs[0]).is_dir():
        named = " ".join(args.inputs) or "nothing"
        raise SilkwatchError(f"publish --follow needs one SiLK repository folder, not {named}")
    args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    from connectors.silk.follow import iter_follow

    return iter_follow(args.inputs[0], args.checkpoint, poll_s=args.poll, stop=stop)
