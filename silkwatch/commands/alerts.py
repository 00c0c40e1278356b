"""``silkwatch alerts deliver``: send the ``alerts`` topic to chat, webhooks and Grafana.

A process of its own beside the worker (the worker publishes alerts to the topic
and delivers none), so a slow or dead receiver never touches the stream.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

logger = logging.getLogger(__name__)

EPILOG = """\
examples:
  SLACK_WEBHOOK_URL=https://hooks.slack.com/services/... \\
      silkwatch alerts deliver --broker kafka://127.0.0.1:9092 --config sinks.toml
  silkwatch alerts deliver --broker kafka://kafka:9092 --config /etc/silkwatch/sinks.toml \\
      --metrics-port 9465                  also serve its own /metrics

sinks.toml: one [[sinks]] table per receiver (type slack | mattermost | teams |
webhook | apprise | grafana), secrets by url_env/url_file or token_env/token_file,
and optional [grouping] (group_wait_s, group_interval_s, repeat_interval_s); the
full example is in docs/dashboards.md.

each sink commits its progress in Kafka consumer group silkwatch-alerts-<name>:
run one deliverer per configuration (two would both send). Records that are not
valid alerts go to <topic>-deadletter with their reason (consumer group
silkwatch-alerts-deadletter) and are counted in
silkwatch_alerts_dead_lettered_total. Schema, timeouts, idempotency keys:
docs/alerts.md. Webhook URLs and tokens are redacted from every log line.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "alerts",
        help="deliver alerts from Kafka to Slack, Mattermost, Teams, webhooks, Grafana",
        description="Read the alerts topic and deliver grouped, rate-limited notifications "
        "to every configured sink, retrying until each receiver acknowledges.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    deliver = actions.add_parser(
        "deliver",
        help="run the delivery loops until interrupted",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    deliver.add_argument("--broker", required=True, help="Kafka URL, e.g. kafka://127.0.0.1:9092")
    deliver.add_argument("--config", required=True, type=Path, help="sinks.toml")
    deliver.add_argument("--metrics-port", type=int, help="serve delivery metrics on this port")
    deliver.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address the metrics server binds (%(default)s; 0.0.0.0 in a container)",
    )
    deliver.set_defaults(run=run_deliver)


async def _deliver(args: argparse.Namespace) -> None:
    # the delivery stack (aiohttp, apprise, Kafka) loads here, not for ``alerts --help``
    from prometheus_client import CollectorRegistry, start_http_server

    from silkwatch.connectors.alerting.config import build_runners, load_delivery_config
    from silkwatch.connectors.alerting.delivery import run_delivery
    from silkwatch.connectors.alerting.secrets import redact_logs
    from silkwatch.connectors.kafka.publisher import bootstrap_servers
    from silkwatch.connectors.prometheus import create_metrics

    redact_logs()  # before any secret is read: apprise logs the URLs it is given
    config = load_delivery_config(args.config)
    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_host, registry=registry)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runners = build_runners(config, bootstrap_servers(args.broker), metrics=metrics)
    logger.info("alert delivery sinks=%s topic=%s", [s.name for s in config.sinks], config.topic)
    await run_delivery(runners, stop, metrics=metrics)


def run_deliver(args: argparse.Namespace) -> int:
    asyncio.run(_deliver(args))
    return 0
