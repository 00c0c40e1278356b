"""``silkwatch publish``: send SiLK flows to Kafka as flow-batch frames."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.schema import FlowBatch
from silkwatch.flowio import add_input_arguments, read_inputs
from silkwatch.streams.settings import WorkerSettings

EPILOG = """\
examples:
  silkwatch publish day.rw --broker kafka://127.0.0.1:9092
  rwfilter --type=all --pass=stdout ... | silkwatch publish - --broker kafka://127.0.0.1:9092
  silkwatch publish /data/silk --broker kafka://127.0.0.1:9092     # a SiLK repository tree
  silkwatch publish /data/silk --follow --checkpoint /var/lib/silkwatch/publish.json

--follow keeps reading the repository as rwflowpack/rwflowappend add hour files and
append to them; the checkpoint remembers how far each file was published (saved only
after Kafka acknowledged), so a restart neither loses nor repeats flows.

A broker that stops answering is waited for, up to --broker-timeout, with a line when
it goes, one every 15 s while it is away and one when it is back; past the timeout the
counts sent so far are printed and the exit status is 1. Every frame is stamped with
its place in the input, so running the same command again sends only what is missing.

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
    parser.add_argument(
        "--no-received-copies",
        dest="received_copies",
        action="store_false",
        help="send each flow to its source's partition only: enough for --roles bins "
        "workers, half the topic; the detection role needs the copies to see what a host "
        "received (docs/frame.md)",
    )
    parser.add_argument(
        "--broker-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for a broker that stopped acknowledging before giving up "
        "(%(default).0f s); the producer retries meanwhile, and lands each frame once",
    )
    parser.add_argument(
        "--no-resume",
        action="store_true",
        help="send files whole even if an earlier run of the same files landed part of them "
        "(by default every frame is stamped with its place in the input, and a rerun after "
        "an interruption skips what is already in Kafka)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Publish every batch, show flows/s on a terminal, print exact totals."""
    from tqdm import tqdm  # the Kafka client and tqdm load here, not for publish --help

    from silkwatch.connectors.kafka.publisher import FlowPublisher

    started_s = time.monotonic()
    stop = threading.Event()
    if args.follow:  # a follower stops between scans; a run over files stops at once
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    source = None if args.follow or args.no_resume else source_id(args.inputs)
    publisher = FlowPublisher(
        args.broker,
        args.topic,
        partitions=args.partitions,
        source=source,
        broker_timeout_s=args.broker_timeout,
        received_copies=args.received_copies,
    )
    try:
        with publisher:  # closing flushes; after a broker timeout it only lets go
            if publisher.resume():
                print(f"resuming {source}: skipping what an earlier run landed", file=sys.stderr)
            with tqdm(unit=" flows", unit_scale=True, disable=not sys.stderr.isatty()) as bar:
                for batch in _batches(args, stop):
                    publisher.send(batch)
                    if args.follow:
                        publisher.flush()  # acknowledged before the follower checkpoints it
                    bar.update(batch.size)
    finally:
        _report(publisher, args.topic, time.monotonic() - started_s)
    return 0


def _report(publisher, topic: str, seconds: float) -> None:
    """What was sent (also when the broker failed: then some of it may not have landed)."""
    counts = publisher.counts
    skipped = (
        f", {counts.skipped_flows:,} skipped as already in Kafka" if counts.skipped_flows else ""
    )
    copies = f" (and {counts.copied_flows:,} received copies)" if counts.copied_flows else ""
    print(
        f"published {counts.flows:,} flows, {counts.bytes:,} bytes in {counts.frames:,} frames"
        f"{copies} to {topic} ({publisher.partitions} partitions) in {seconds:.1f} s{skipped}"
    )


def source_id(inputs: list[str]) -> str | None:
    """What is published, as a short id: each file's path, size and time (None for stdin).

    The same files give the same id, so a rerun finds the frames it stamped before;
    a file that changed since gets another id and is sent whole.
    """
    import hashlib

    from silkwatch.connectors.inputs import resolve_inputs

    files = resolve_inputs(inputs)
    if not files or any(str(f) == "-" for f in files):
        return None
    parts = []
    for name in files:
        stat = Path(name).stat()
        parts.append(f"{Path(name).resolve()}|{stat.st_size}|{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _batches(args: argparse.Namespace, stop: threading.Event) -> Iterator[FlowBatch]:
    if not args.follow:
        return read_inputs(args, rows=65_536)
    if len(args.inputs) != 1 or not Path(args.inputs[0]).is_dir():
        named = " ".join(args.inputs) or "nothing"
        raise SilkwatchError(f"publish --follow needs one SiLK repository folder, not {named}")
    args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    from silkwatch.connectors.silk.follow import iter_follow

    return iter_follow(args.inputs[0], args.checkpoint, poll_s=args.poll, stop=stop)
