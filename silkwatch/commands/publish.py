"""``silkwatch publish``: send SiLK flows to Kafka as flow-batch frames."""

from __future__ import annotations

import argparse
import sys
import time

from tqdm import tqdm

from connectors.kafka.publisher import FlowPublisher
from connectors.silk import read_batches
from streams.settings import WorkerSettings

EPILOG = """\
examples:
  silkwatch publish day.rw --broker kafka://127.0.0.1:9092
  rwfilter --type=all --pass=stdout ... | silkwatch publish - --broker kafka://127.0.0.1:9092
  silkwatch publish /data/silk --broker kafka://127.0.0.1:9092     # a SiLK repository tree

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
    parser.add_argument("source", help="SiLK file, repository folder, or - for stdin")
    parser.add_argument("--broker", default=defaults.broker, help="kafka://HOST:PORT (%(default)s)")
    parser.add_argument("--topic", default=defaults.flows_topic, help="flows topic (%(default)s)")
    parser.add_argument(
        "--partitions", type=int, default=defaults.partitions, help="partitions of a new topic"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Publish every batch, show flows/s on a terminal, print exact totals."""
    started_s = time.monotonic()
    with (
        FlowPublisher(args.broker, args.topic, partitions=args.partitions) as publisher,
        tqdm(unit=" flows", unit_scale=True, disable=not sys.stderr.isatty()) as progress,
    ):
        for batch in read_batches(args.source):
            publisher.send(batch)
            progress.update(batch.size)
    counts = publisher.counts
    print(
        f"published {counts.flows:,} flows, {counts.bytes:,} bytes in {counts.frames:,} frames "
        f"to {args.topic} ({publisher.partitions} partitions) "
        f"in {time.monotonic() - started_s:.1f} s"
    )
    return 0
