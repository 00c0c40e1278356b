"""``silkwatch detect``: run the whole stream in-process over a flow file and print alerts."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from silkwatch.detectors.alerts import SEVERITIES, Alert, iso_utc
from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.flowio import add_input_arguments, read_inputs

EPILOG = """\
examples:
  silkwatch detect day.rw
  rwfilter --start-date=2015/06/17 --type=all --pass=stdout | silkwatch detect -
  silkwatch detect conn.log --input-format zeek --format json > alerts.jsonl
  silkwatch detect day.rw --config my-thresholds.toml
  silkwatch detect day.rw --min-severity high --suppress accepted.toml
  silkwatch detect day.rw --explain --min-score 0.3     near misses too, with sub-scores

The same processors as the Kafka worker run here on one partition (no Kafka
needed): hourly bins, per-host and per-pair state, and the detectors, scored
as event-time hours close. Thresholds: detectors/defaults.toml (copy and edit,
then pass --config). Alerts are printed by time, then severity (most severe
first). --explain also prints every pair and host the detectors scored at or
above --min-score that stayed below its alert threshold ("near miss"), and,
under each line, the parts of its score and the damping applied: what to look
at when tuning a threshold.
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
    add_input_arguments(parser)  # files, folders, globs, stdin; --input-format, --skip-bad-lines
    parser.set_defaults(run=run)


def add_detect_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``detect`` and ``demo``."""
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="text table or JSON lines"
    )
    parser.add_argument("--config", type=Path, help="detector thresholds (TOML)")
    parser.add_argument(
        "--min-severity",
        choices=SEVERITIES,
        default="low",
        help="print only alerts of this severity or above (%(default)s: all)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="also print near misses (scored, below their threshold) and every score's parts",
    )
    parser.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="lowest score printed (with --explain, the near-miss floor; default 0.3 there)",
    )
    parser.add_argument(
        "--suppress",
        type=Path,
        help="suppression rules ([[suppress]] by sip/dip/dport/proto/kind, optional expires); "
        "default: [site] suppressions of --config",
    )


def run(args: argparse.Namespace) -> int:
    """Read, detect, print."""
    from silkwatch.streams.embedded import EmbeddedStream

    config, run_config, suppressions = detection_setup(args)
    stream = EmbeddedStream(detectors=run_config)
    damaged: SilkwatchError | None = None
    try:
        for batch in _with_progress(read_inputs(args, rows=65_536)):
            stream.send(batch)
    except SilkwatchError as exc:  # bad input: report what the good flows showed, then fail
        damaged = exc
    result = stream.finish()
    shown = select_alerts(result.alerts, args, config, suppressions)
    print_alerts(shown, args.format, explain=config if args.explain else None)
    print(
        f"{result.flows:,} flows, {result.bytes:,} bytes, {alert_counts(shown, config, args)}"
        + (f", {result.late_flows:,} late flows" if result.late_flows else ""),
        file=sys.stderr,
    )
    if damaged is not None:
        raise damaged
    return 0


def detection_setup(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(the site's config, the config to run, the suppression file or None) from the flags.

    With ``--explain`` the detectors run with their alert thresholds lowered
    to the floor (:func:`silkwatch.detectors.config.explain_config`), so they return
    their near misses; the site's own config still tells alerts from those.
    """
    from silkwatch.connectors.config import load_config
    from silkwatch.connectors.suppressions import SuppressionFile
    from silkwatch.detectors.config import explain_config

    config = load_config(args.config)
    if args.explain and args.min_score is None:
        args.min_score = 0.3
    if args.min_score is not None and not 0.0 <= args.min_score <= 1.0:
        raise SilkwatchError(f"--min-score {args.min_score}: must be in [0, 1]")
    run_config = explain_config(config, args.min_score) if args.explain else config
    path = args.suppress or config.site.suppressions  # the flag wins over the site's file
    suppressions = SuppressionFile(path) if path else None
    return config, run_config, suppressions


def select_alerts(
    alerts: Iterable[Alert], args: argparse.Namespace, config: Any, suppressions: Any = None
) -> list[Alert]:
    """What to print: each finding once, at its last revision; suppressions applied,
    ``--min-score``/``--min-severity`` kept; by time, then severity (most severe first),
    then score."""
    newest: dict[str, Alert] = {}
    kept = []
    for alert in alerts:
        if not alert.id:  # a near miss (--explain): no finding, no revisions
            kept.append(alert)
        elif alert.id not in newest or newest[alert.id].revision < alert.revision:
            newest[alert.id] = alert
    kept += newest.values()
    kept = suppressions.apply(kept) if suppressions is not None else kept
    floor = args.min_score if args.min_score is not None else 0.0
    rank = SEVERITIES.index(args.min_severity)
    kept = [a for a in kept if a.score >= floor and SEVERITIES.index(a.severity) >= rank]
    return sorted(
        kept, key=lambda a: (a.first_seen_ms, -SEVERITIES.index(a.severity), -a.score, a.kind)
    )


def alert_counts(alerts: list[Alert], config: Any, args: argparse.Namespace) -> str:
    """``N alerts`` (plus near misses with --explain) for the summary line."""
    from silkwatch.detectors.config import is_alert

    real = sum(is_alert(config, a) for a in alerts) if args.explain else len(alerts)
    text = f"{real} alerts"
    if args.explain:
        text += f", {len(alerts) - real} near misses at or above {args.min_score:g}"
    return text


def print_alerts(alerts: Iterable[Alert], fmt: str, *, explain: Any = None) -> None:
    """Alerts as JSON lines or as one readable line each.

    :param explain: the site's detector config: mark near misses and show
        each score's parts. Default - None (alerts only, as they are)
    """
    for alert in alerts:
        if explain is None:
            print(
                json.dumps(alert.to_dict(), sort_keys=True) if fmt == "json" else alert_line(alert)
            )
            continue
        detail = explanation(alert, explain)
        if fmt == "json":
            print(json.dumps({**alert.to_dict(), **detail}, sort_keys=True))
        else:
            print(alert_line(alert))
            print("    " + explanation_text(detail))


_SUBSCORE_SUFFIXES = ("_damping",)


def explanation(alert: Alert, config: Any) -> dict[str, Any]:
    """Whether the alert is reported, its threshold, and the parts and dampings of its score."""
    from silkwatch.detectors.config import ALERT_THRESHOLDS, is_alert

    threshold = None
    if alert.kind in ALERT_THRESHOLDS:
        section, attribute = ALERT_THRESHOLDS[alert.kind]
        threshold = getattr(getattr(config, section), attribute)
    ev = alert.evidence
    return {
        "alerted": is_alert(config, alert),
        "threshold": threshold,
        "parts": {k[5:]: v for k, v in ev.items() if k.startswith("part_")},
        "damping": {k: v for k, v in ev.items() if k.endswith(_SUBSCORE_SUFFIXES)},
        "signs": ev.get("signs_held", ev.get("signs")),
    }


def explanation_text(detail: dict[str, Any]) -> str:
    """The explanation as one indented line for a terminal."""
    head = "alert" if detail["alerted"] else "near miss"
    if detail["threshold"] is not None:
        head += f" (threshold {detail['threshold']:g})"
    fields = [f"{k}={v:.2f}" for k, v in detail["parts"].items()]
    fields += [f"{k}={v:.2f}" for k, v in detail["damping"].items()]
    if isinstance(detail["signs"], list):
        fields.append("signs=" + (",".join(s.replace(" ", "_") for s in detail["signs"]) or "none"))
    return head + ": " + " ".join(fields)


def alert_line(alert: Alert) -> str:
    """``time severity score kind who reason`` for a terminal."""
    who = alert.sip or "network"
    if alert.dip:
        who += f" -> {alert.dip}"
        if alert.dport is not None:
            who += f":{alert.dport}/{alert.proto}"
    revised = f" (revision {alert.revision})" if alert.revision > 1 else ""
    return (
        f"{iso_utc(alert.first_seen_ms)[:19]}Z {alert.severity:<8} {alert.score:.2f} "
        f"{alert.kind:<15} {who}  {alert.reason}{revised}"
    )


def _with_progress(batches: Iterable) -> Iterator:
    with tqdm(unit=" flows", unit_scale=True, disable=not sys.stderr.isatty()) as bar:
        for batch in batches:
            bar.update(batch.size)
            yield batch
