"""``silkwatch detect``: run the whole stream in-process over a flow file and print alerts."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm import tqdm

from detectors.alerts import Alert, iso_utc
from detectors.exceptions import SilkwatchError

EPILOG = """\
examples:
  silkwatch detect day.rw
  rwfilter --start-date=2015/06/17 --type=all --pass=stdout | silkwatch detect -
  silkwatch detect conn.log --input-format zeek --format json > alerts.jsonl
  silkwatch detect day.rw --config my-thresholds.toml

The same processors as the Kafka worker run here on one partition (no Kafka
needed): hourly bins, per-host and per-pair state, and the detectors, scored
as event-time hours close. Thresholds: detectors/defaults.toml (copy and edit,
then pass --config).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``detect`` to the command line."""
    parser = subparsers.add_parser(
        "detect",
        help="detect exfiltration, beacons and DNS tunnels in a flow file (no Kafka)",
        description="Run the silkwatch stream in-process over SiLK flows (or rwcut text, "
        "nfdump CSV, Zeek conn.log, Argus binetflow) and print its alerts.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_detect_arguments(parser)
    parser.add_argument("source", help="flow file, or - for stdin")
    parser.add_argument(
        "--input-format",
        default="auto",
        help="silk, rwcut, nfdump, zeek, argus, or auto (sniffed; the default)",
    )
    parser.set_defaults(run=run)


def add_detect_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``detect`` and ``demo``."""
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="text table or JSON lines"
    )
    parser.add_argument("--config", type=Path, help="detector thresholds (TOML)")


def run(args: argparse.Namespace) -> int:
    """Read, detect, print."""
    from connectors.flows import read_flows
    from detectors.config import load_config
    from streams.embedded import EmbeddedStream

    stream = EmbeddedStream(detectors=load_config(args.config))
    damaged: SilkwatchError | None = None
    try:
        for batch in _with_progress(read_flows(args.source, format=args.input_format)):
            stream.send(batch)
    except SilkwatchError as exc:  # bad input: report what the good flows showed, then fail
        damaged = exc
    result = stream.finish()
    print_alerts(result.alerts, args.format)
    print(
        f"{result.flows:,} flows, {result.bytes:,} bytes, {len(result.alerts)} alerts"
        + (f", {result.late_flows:,} late flows" if result.late_flows else ""),
        file=sys.stderr,
    )
    if damaged is not None:
        raise damaged
    return 0


def print_alerts(alerts: Iterable[Alert], fmt: str) -> None:
    """Alerts as JSON lines or as one readable line each."""
    for alert in alerts:
        if fmt == "json":
            print(json.dumps(alert.to_dict(), sort_keys=True))
        else:
            print(alert_line(alert))


def alert_line(alert: Alert) -> str:
    """``time severity score kind who reason`` for a terminal."""
    who = alert.sip or "network"
    if alert.dip:
        who += f" -> {alert.dip}"
        if alert.dport is not None:
            who += f":{alert.dport}/{alert.proto}"
    return (
        f"{iso_utc(alert.first_seen_ms)[:19]}Z {alert.severity:<8} {alert.score:.2f} "
        f"{alert.kind:<15} {who}  {alert.reason}"
    )


def _with_progress(batches: Iterable) -> Iterator:
    with tqdm(unit=" flows", unit_scale=True, disable=not sys.stderr.isatty()) as bar:
        for batch in batches:
            bar.update(batch.size)
            yield batch
