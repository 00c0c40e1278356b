"""``silkwatch worker``: run the Faust stream processor against a Kafka broker."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

from silkwatch.streams.settings import WorkerSettings

EPILOG = """\
examples:
  silkwatch worker --broker kafka://127.0.0.1:9092
  silkwatch worker --broker kafka://kafka:9092 --web-port 6066     # /metrics for Prometheus
  SILKWATCH_BROKER=kafka://127.0.0.1:9092 faust -A silkwatch.streams.app worker  # via Faust

Start more workers with the same --app-id to share the partitions; each keeps the
hosts of the partitions it owns. The bins tables are rebuilt from their changelog
topics on start and the detection state from its checkpoints, so a restarted worker
continues where it stopped.
detection, from the environment:
  SILKWATCH_CHECKPOINT_INTERVAL_S  seconds between checkpoints of a busy partition (5);
                                   also at hour close, at most once a second, and never
                                   more than a tenth of the time; offsets are committed
                                   only up to a checkpoint whose records all landed
  SILKWATCH_SCORE_INTERVAL_S       score what changed this often between hour closes
                                   (2; 0 = only when an hour closes)
  SILKWATCH_IDLE_CLOSE_S           a partition silent this long closes its last hour
                                   (60; a lost broker is not silence)
web views: /metrics (Prometheus), /silkwatch/bins/ (hourly bins as JSON),
           /silkwatch/hosts/ (per-host hourly sent/received statistics as JSON)
           on 127.0.0.1 only unless --web-host names another address
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``worker`` to the command line."""
    defaults = WorkerSettings.from_env()
    parser = subparsers.add_parser(
        "worker",
        help="run the stream processor (Faust worker) on Kafka",
        description="Consume flow batches from Kafka, keep hourly bins and per-host state, "
        "close event-time hours and emit them to the bins topic.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--broker", default=defaults.broker, help="kafka://HOST:PORT (%(default)s)")
    parser.add_argument("--app-id", default=defaults.app_id, help="consumer group (%(default)s)")
    parser.add_argument(
        "--partitions", type=int, default=defaults.partitions, help="flows topic partitions"
    )
    parser.add_argument("--topic", default=defaults.flows_topic, help="flows topic (%(default)s)")
    parser.add_argument(
        "--web-host",
        default=defaults.web_host,
        help="address the web server (/metrics, JSON views) listens on: %(default)s, this "
        "host only, unless you name another (0.0.0.0 = every interface, e.g. in a container)",
    )
    parser.add_argument("--web-port", type=int, default=defaults.web_port, help="web server port")
    parser.add_argument(
        "--data-dir", type=Path, default=defaults.data_dir, help="local state (%(default)s)"
    )
    parser.add_argument(
        "--roles",
        default=",".join(defaults.roles),
        help="agents to run: bins, detect or bins,detect (%(default)s); "
        "give each role set its own --app-id",
    )
    parser.add_argument(
        "--config", type=Path, default=defaults.detectors_config, help="detector thresholds (TOML)"
    )
    parser.add_argument(
        "--loglevel", default="warn", choices=("crit", "error", "warn", "info", "debug")
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Export the settings for :mod:`silkwatch.streams.app`, then hand over to Faust's worker."""
    settings = replace(
        WorkerSettings.from_env(),
        broker=args.broker,
        app_id=args.app_id,
        partitions=args.partitions,
        flows_topic=args.topic,
        data_dir=args.data_dir,
        web_host=args.web_host,
        web_port=args.web_port,
        roles=tuple(role.strip() for role in args.roles.split(",")),
        detectors_config=args.config,
    )
    # imported here, not for --help
    from silkwatch.connectors.kafka.health import wait_for_broker
    from silkwatch.connectors.kafka.publisher import bootstrap_servers, ensure_topic

    # Create the topics first: Faust skips a source topic that does not exist when the
    # group is assigned, and would not consume it until the next rebalance.
    bootstrap = bootstrap_servers(settings.broker)
    wait_for_broker(bootstrap)  # started before its broker: two lines, not a failed start
    ensure_topic(bootstrap, settings.flows_topic, settings.partitions)
    ensure_topic(bootstrap, settings.bins_topic, 1)
    ensure_topic(bootstrap, settings.alerts_topic, 1)
    os.environ.update(settings.to_env())
    import faust  # imported here: the app reads its settings at import

    from silkwatch.streams.app import app

    worker = faust.Worker(app, loglevel=args.loglevel)
    # Faust's start-up spinner turns the root logger to DEBUG for the worker's whole life
    # (at --loglevel warn or above): every aiokafka debug record was built and handled,
    # 3.7 % of a busy worker's time. A service has no terminal to spin on.
    worker.spinner = None
    worker.execute_from_commandline()
    return 0
