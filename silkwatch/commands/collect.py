"""``silkwatch collect``: receive NetFlow v5/v9 and IPFIX, straight into Kafka and/or SiLK."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

EPILOG = """\
examples:
  silkwatch collect --listen udp://0.0.0.0:2055 --broker kafka://127.0.0.1:9092
  silkwatch collect --listen udp://0.0.0.0:2055 --listen udp://[::]:4739 \\
      --repository /data/silk --sensor 3
  silkwatch collect --listen udp://127.0.0.1:9995 --output - | rwcut
  silkwatch collect --listen tcp://0.0.0.0:4739 --repository /data/silk   # IPFIX over TCP
  softflowd -r day.pcap -n 127.0.0.1:9995 -v 10    # then: silkwatch count /tmp/repo

Every datagram's templates, options (sampling rates) and sequence numbers are read
per exporter and observation domain; templates and rates are saved to --state, so a
restarted collector decodes the next data set at once. Data that arrives before its
template waits (8 MiB, 10 s) and is then counted as dropped. Packets and bytes of
sampled exporters are scaled by the rate in force. Metrics (records, lost records,
template misses, malformed datagrams per exporter) on --metrics-port.

Point exporters at it: see docs/collector.md (softflowd, Cisco, Juniper, ipt-netflow).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``collect`` to the command line."""
    parser = subparsers.add_parser(
        "collect",
        help="receive NetFlow v5/v9 and IPFIX exports",
        description="A NetFlow v5/v9 and IPFIX collector: flows to Kafka (the frames of "
        "`silkwatch publish`), to a SiLK repository of hourly files (as rwflowpack), "
        "and/or as a SiLK stream.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--listen", action="append", required=True, metavar="udp://HOST:PORT",
        help="where exporters send (repeat for more sockets; tcp://HOST:PORT for IPFIX "
        "over TCP)",
    )  # fmt: skip
    parser.add_argument("--broker", help="kafka://HOST:PORT: publish flows there")
    parser.add_argument("--topic", default="silkwatch-flows", help="flows topic (%(default)s)")
    parser.add_argument("--partitions", type=int, default=8, help="partitions of a new topic")
    parser.add_argument("--repository", type=Path, help="SiLK repository root to append to")
    parser.add_argument("--output", help="SiLK stream to FILE, or - for standard output")
    parser.add_argument(
        "--state", type=Path, default=Path("collector-state.json"),
        help="templates and sampling rates, kept across restarts (%(default)s)",
    )  # fmt: skip
    parser.add_argument("--sensor", type=int, default=0, help="SiLK sensor id of the flows")
    parser.add_argument(
        "--type", default="in", help="SiLK flowtype of the flows (twoway site: in, out, ...)"
    )
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    parser.add_argument(
        "--idle-exit", type=float, metavar="SECONDS",
        help="stop after this long without datagrams (once some arrived)",
    )  # fmt: skip
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Collect until interrupted; print what was collected."""
    from silkwatch.connectors.netflow.collector import Collector
    from silkwatch.connectors.netflow.decoder import Decoder
    from silkwatch.connectors.netflow.exceptions import CollectorConfigError
    from silkwatch.connectors.netflow.outputs import RepositoryWriter, StreamWriter
    from silkwatch.connectors.netflow.receiver import UdpReceiver, parse_listen
    from silkwatch.connectors.netflow.templates import TemplateCache
    from silkwatch.connectors.silk.site import FLOWTYPE_BY_TYPE

    if not (args.broker or args.repository or args.output):
        raise CollectorConfigError("collect needs an output: --broker, --repository or --output")
    flowtype = FLOWTYPE_BY_TYPE.get(args.type)
    if flowtype is None:
        raise CollectorConfigError(f"--type {args.type}: not a type of the twoway site")
    listens = [parse_listen(url) for url in args.listen]  # every mistake before any output
    cache = TemplateCache()
    loaded = cache.load(args.state)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    started_s = time.monotonic()
    with ExitStack() as stack:
        # sockets first: a port in use is reported before a stream header goes out
        receiver = UdpReceiver(
            [(host, port) for scheme, host, port in listens if scheme == "udp"],
            tcp_addresses=[(host, port) for scheme, host, port in listens if scheme == "tcp"],
        )
        stack.callback(receiver.close)
        sinks = []
        if args.broker:
            from silkwatch.connectors.kafka.publisher import FlowPublisher

            sinks.append(
                stack.enter_context(
                    FlowPublisher(args.broker, args.topic, partitions=args.partitions)
                )
            )
        if args.repository:
            sinks.append(stack.enter_context(RepositoryWriter(args.repository)))
        if args.output:
            target = sys.stdout.buffer if args.output == "-" else Path(args.output)
            stream = StreamWriter(target)
            stack.callback(stream.close)
            sinks.append(stream)
        decoder = Decoder(cache)
        collector = Collector(
            decoder, sinks, sensor=args.sensor, flowtype=flowtype.flowtype_id,
            state_path=args.state,
        )  # fmt: skip
        if args.metrics_port:
            from prometheus_client import CollectorRegistry, start_http_server

            from silkwatch.connectors.netflow.metrics import register_metrics

            registry = CollectorRegistry()
            register_metrics(registry, decoder, lambda: collector.receive_dropped(receiver))
            start_http_server(args.metrics_port, registry=registry)
        print(
            f"collecting on {', '.join(args.listen)} ({loaded} templates from {args.state})",
            file=sys.stderr,
        )
        receiver.start()
        collector.run(receiver, stop, idle_exit_s=args.idle_exit)
        dropped = collector.receive_dropped(receiver)
    counts = list(decoder.counts.values())
    totals = collector.totals
    print(
        f"collected {totals.flows:,} flows, {totals.bytes:,} bytes from {totals.datagrams:,} "
        f"datagrams of {len({e for e, _ in decoder.counts})} exporters "
        f"in {time.monotonic() - started_s:.1f} s; "
        f"malformed {sum(c.malformed for c in counts)}, "
        f"template misses {sum(c.template_misses for c in counts)}, "
        f"lost records {sum(c.lost_records for c in counts)}, "
        f"lost packets {sum(c.lost_packets for c in counts)}, receive drops {dropped}",
        file=sys.stderr,
    )
    return 0
