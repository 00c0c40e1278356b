"""``silkwatch demo``: a synthetic day with planted attacks, written as SiLK, then detected."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from silkwatch.commands.detect import (
    add_detect_arguments,
    alert_counts,
    detection_setup,
    print_alerts,
    select_alerts,
)

EPILOG = """\
examples:
  silkwatch demo                         a day of 2,000 hosts, seed 7
  silkwatch demo --seed 3 --hosts 5000 --output day.rw --format json

What is planted: jittered beacons, one exfiltration, one DNS tunnel, among
benign diurnal web/DNS/SSH traffic and benign periodic NTP and update checks.
The demo writes the day as a SiLK file (FT_RWIPV6ROUTING, zlib), reads it back
like any other input, runs the embedded stream and says which plants it found,
and which alerts match no planted attack (false alerts).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``demo`` to the command line."""
    parser = subparsers.add_parser(
        "demo",
        help="make a synthetic day with planted attacks and detect them (no Kafka)",
        description="Generate a realistic synthetic day of flows, write it as a SiLK file, "
        "run detection on it and compare with what was planted.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (%(default)s)")
    parser.add_argument("--hosts", type=int, default=2000, help="client hosts (%(default)s)")
    parser.add_argument("--output", type=Path, help="keep the SiLK file here")
    add_detect_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Generate, write, read back, detect, score against the plants."""
    from silkwatch.connectors.output import open_output
    from silkwatch.connectors.silk import Compression, SilkWriter, read_batches
    from silkwatch.detectors.config import is_alert
    from silkwatch.detectors.synthetic import synthetic_day
    from silkwatch.streams.embedded import run as run_stream

    config, run_config, suppressions = detection_setup(args)

    day = synthetic_day(args.seed, hosts=args.hosts)
    with tempfile.TemporaryDirectory(prefix="silkwatch-demo-") as scratch:
        path = args.output or Path(scratch) / "demo.rw"
        with open_output(path) as out, SilkWriter(out, compression=Compression.ZLIB) as writer:
            for batch in day.batches:
                writer.write(batch)
        print(f"wrote {day.flows:,} flows of {args.hosts:,} hosts to {path}", file=sys.stderr)
        result = run_stream(read_batches(path), detectors=run_config)
    shown = select_alerts(result.alerts, args, config, suppressions)
    print_alerts(shown, args.format, explain=config if args.explain else None)
    alerts = [a for a in shown if is_alert(config, a)]
    malicious = [p for p in day.planted if p.sip != "*"]  # "*": benign traffic of many hosts
    missed = [p for p in malicious if not any(a.sip == p.sip for a in alerts)]
    print(
        f"{alert_counts(shown, config, args)}; found {len(malicious) - len(missed)} of "
        f"{len(malicious)} planted attacks"
        + "".join(f"; missed {p.kind} from {p.sip}" for p in missed),
        file=sys.stderr,
    )
    false = unmatched_alerts(alerts, malicious)
    print(
        f"{len(false)} alerts match no planted attack"
        + "".join(f"; {a.kind} {a.sip} -> {a.dip or 'network'}" for a in false),
        file=sys.stderr,
    )
    return 0


def unmatched_alerts(alerts: list, planted: list) -> list:
    """Alerts whose source is no planted attacker or controller (false alerts).

    The rule of ``silkwatch eval``'s host level: an alert is right when its
    source is an infected host or a controller of a planted attack.
    """
    hosts = {p.sip for p in planted} | {p.dip for p in planted if p.dip}
    return [a for a in alerts if a.sip not in hosts]
