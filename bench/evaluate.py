"""Evaluation harness: every real capture and flow file through the embedded detector.

Turns each file of ``../shared/data/real/`` into flows (pcaps through the real
softflowd → nfcapd chain, flow files through :func:`connectors.flows.read_flows`),
runs :func:`streams.embedded.detect` on them, and scores the alerts against
:mod:`bench.ground_truth`; then sweeps synthetic beacons (period × jitter) and
exfiltrations (volume × baseline) drawn by :mod:`detectors.synthetic`.

Run from the repository root::

    .venv/bin/python -m bench.evaluate                      # print the report
    .venv/bin/python -m bench.evaluate --write docs/evaluation.md
    .venv/bin/python -m bench.evaluate --no-sweep           # real files only

Matching rules (also printed in the report): an alert is right at *pair* level
when its two addresses are an expected (infected host, controller) pair in
either direction, and right at *host* level when its source is the infected
host or the controller. Anything else is a false alert.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.ground_truth import CAPTURES, Capture
from connectors.flows import read_flows
from connectors.pcapflows import pcap_to_flows
from detectors.schema import FlowBatch, ip_strings, ipv4_to_v16

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".." / "shared" / "data" / "real"
DAY_MS = 86_400_000

Detect = Callable[[list[FlowBatch]], list]


@dataclass
class FileResult:
    """One file's flows, alerts and scores."""

    capture: Capture
    flows: int
    source_hosts: int
    span_ms: int
    alerts: list
    seconds: float
    pair_hits: set[tuple[str, str]] = field(default_factory=set)
    hosts_hit: set[str] = field(default_factory=set)
    true_pair_alerts: int = 0
    true_host_alerts: int = 0
    false_alerts: list = field(default_factory=list)

    @property
    def expected_pairs(self) -> list[tuple[str, str, str]]:
        return [(f.sip, f.dip, f.visible) for f in self.capture.findings]


def load_flows(capture: Capture, data: Path, workdir: Path) -> list[FlowBatch]:
    """The file's flows: pcaps through the exporter chain, flow files as they are."""
    path = data / capture.path
    if capture.path.startswith("pcap/"):
        return list(pcap_to_flows(path, workdir / path.stem))
    return list(read_flows(path))


def _pair(alert) -> tuple[str, str] | None:
    return (alert.sip, alert.dip) if alert.dip is not None else None


def score_file(capture: Capture, batches: list[FlowBatch], alerts: list, seconds: float):
    """Match alerts to the capture's findings (rules in the module docstring)."""
    flows = np.concatenate(batches) if batches else np.zeros(0)
    sources = set(ip_strings(flows["sip"], flows["ipv6"])) if len(flows) else set()
    span_ms = int((flows["stime_ms"] + flows["elapsed_ms"]).max() - flows["stime_ms"].min())
    result = FileResult(capture, len(flows), len(sources), span_ms, alerts, seconds)
    expected = {}
    for finding in capture.findings:
        expected[(finding.sip, finding.dip)] = expected[(finding.dip, finding.sip)] = finding
    right_sources = capture.hosts | capture.controllers
    for alert in alerts:
        finding = expected.get(_pair(alert))
        if finding is not None:
            result.true_pair_alerts += 1
            result.pair_hits.add((finding.sip, finding.dip))
        if alert.sip in right_sources:
            result.true_host_alerts += 1
            result.hosts_hit |= {alert.sip} & capture.hosts
            if finding is not None:
                result.hosts_hit.add(finding.sip)
        elif finding is None:
            result.false_alerts.append(alert)
    return result


def evaluate_real(data: Path, detect: Detect) -> list[FileResult]:
    """Every capture of the ground truth, in its order."""
    results = []
    with tempfile.TemporaryDirectory(prefix="silkwatch-eval-") as tmp:
        for capture in CAPTURES:
            batches = load_flows(capture, data, Path(tmp))
            started = time.perf_counter()
            alerts = detect(batches)
            seconds = time.perf_counter() - started
            results.append(score_file(capture, batches, alerts, seconds))
            logger.info("eval file=%s alerts=%d", capture.path, len(alerts))
    return results


# --- synthetic sweep ---------------------------------------------------------------------------

BEACON_PERIODS_S = (10, 30, 60, 300, 900, 1800, 3600)
BEACON_JITTERS = (0.0, 0.1, 0.25, 0.5)
EXFIL_MULTIPLES = (10.0, 8.0, 6.0, 4.0, 3.0, 2.0)
SWEEP_HOST = "10.1.0.9"
SWEEP_C2 = "192.0.2.200"


def plant_beacon(
    batches: list[FlowBatch], start_ms: int, period_s: float, jitter: float, seed: int
) -> list[FlowBatch]:
    """Add a day-long beacon from :data:`SWEEP_HOST` to :data:`SWEEP_C2`:443.

    Each callback is a new small TCP connection (request 5 packets ~420 B, reply
    4 packets ~310 B, as :mod:`detectors.synthetic` draws its own beacons), at
    ``period_s`` with uniform jitter of ± ``jitter`` x period.
    """
    rng = np.random.default_rng(seed)
    period_ms = period_s * 1000.0
    ticks = np.arange(int(DAY_MS // period_ms)) * period_ms + rng.uniform(0, period_ms)
    stime_ms = (start_ms + ticks + rng.uniform(-jitter, jitter, len(ticks)) * period_ms).astype(
        np.int64
    )
    stime_ms = np.sort(stime_ms[(stime_ms >= start_ms) & (stime_ms < start_ms + DAY_MS)])
    n = len(stime_ms)
    template = np.zeros(2 * n, dtype=batches[0].dtype)
    host, c2 = (
        int.from_bytes(bytes(map(int, ip.split("."))), "big") for ip in (SWEEP_HOST, SWEEP_C2)
    )
    client = ipv4_to_v16(np.array([host], dtype=np.uint32))[0]
    server = ipv4_to_v16(np.array([c2], dtype=np.uint32))[0]
    template["stime_ms"] = np.repeat(stime_ms, 2)
    template["elapsed_ms"] = np.repeat(rng.integers(150, 600, n), 2)
    template["proto"] = 6
    template["flags"] = 0x1B
    template["sensor"], template["flowtype"] = 0, 3
    sport = rng.integers(49152, 65535, n)
    template["sip"][0::2], template["dip"][0::2] = client, server
    template["sip"][1::2], template["dip"][1::2] = server, client
    template["sport"][0::2], template["dport"][0::2] = sport, 443
    template["sport"][1::2], template["dport"][1::2] = 443, sport
    template["packets"][0::2], template["packets"][1::2] = 5, 4
    template["bytes"][0::2] = rng.normal(420, 30, n).astype(np.int64)
    template["bytes"][1::2] = rng.normal(310, 25, n).astype(np.int64)
    merged = np.concatenate([*batches, template])
    merged = merged[np.argsort(merged["stime_ms"], kind="stable")]
    return [merged[i : i + 65_536] for i in range(0, len(merged), 65_536)]


def beacon_sweep(detect: Detect, seeds: Sequence[int], hosts: int) -> dict:
    """Detection rate of a planted beacon per (period, jitter), over ``seeds`` days."""
    from detectors.synthetic import synthetic_day

    days = {seed: synthetic_day(seed, hosts=hosts) for seed in seeds}
    rates = {}
    for period_s in BEACON_PERIODS_S:
        for jitter in BEACON_JITTERS:
            found = 0
            for seed, day in days.items():
                batches = plant_beacon(day.batches, day.start_ms, period_s, jitter, seed)
                alerts = detect(batches)
                found += any({a.sip, a.dip} == {SWEEP_HOST, SWEEP_C2} for a in alerts)
            rates[(period_s, jitter)] = found / len(days)
            logger.info(
                "sweep beacon period_s=%s jitter=%s rate=%s",
                period_s,
                jitter,
                rates[(period_s, jitter)],
            )
    return rates


def exfil_sweep(detect: Detect, seeds: Sequence[int], hosts: int) -> dict:
    """Detection rate of the planted exfiltration per volume multiple, over ``seeds`` days."""
    from detectors.synthetic import exfil_sweep_case

    rates = {}
    for multiple in EXFIL_MULTIPLES:
        found = 0
        for seed in seeds:
            batches, truth = exfil_sweep_case(seed, multiple, hosts=hosts)
            alerts = detect(batches)
            found += any(a.sip == truth.sip and a.kind == "exfil" for a in alerts)
        rates[multiple] = found / len(seeds)
        logger.info("sweep exfil multiple=%s rate=%s", multiple, rates[multiple])
    return rates


# --- report ------------------------------------------------------------------------------------


def _ratio(numerator: int, denominator: int) -> str:
    return f"{numerator}/{denominator} = {numerator / denominator:.2f}" if denominator else "n/a"


def _alert_text(alert) -> str:
    target = f"{alert.dip}:{alert.dport}" if alert.dip is not None else "(host)"
    return f"{alert.kind} {alert.sip} → {target} ({alert.score:.2f})"


def _alerts_cell(alerts: Iterable, limit: int = 4) -> str:
    alerts = list(alerts)
    shown = "<br>".join(_alert_text(a) for a in alerts[:limit])
    more = f"<br>… {len(alerts) - limit} more" if len(alerts) > limit else ""
    return (shown + more) or "none"


def report_real(results: list[FileResult]) -> list[str]:
    """Markdown tables for the real files, and the overall figures."""
    lines = [
        "## Real captures and flow files",
        "",
        "| file | flows | expected (visible in flows?) | what fired | pair precision | "
        "pair recall | host precision | host recall | false alerts |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    totals = {"pairs": 0, "pairs_yes": 0, "hit": 0, "hit_yes": 0, "alerts": 0, "true": 0}
    for r in results:
        expected = (
            "<br>".join(
                f"{f.what} {f.sip} → {f.dip}:{f.dport} (**{f.visible}**: {f.why})"
                for f in r.capture.findings
            )
            or f"none ({r.capture.role})"
        )
        pairs = {(f.sip, f.dip) for f in r.capture.findings}
        pairs_yes = {(f.sip, f.dip) for f in r.capture.findings if f.visible == "yes"}
        pair_alerts = [a for a in r.alerts if a.dip is not None]
        lines.append(
            f"| `{r.capture.path}` | {r.flows:,} | {expected} | {_alerts_cell(r.alerts)} | "
            f"{_ratio(r.true_pair_alerts, len(pair_alerts))} | "
            f"{_ratio(len(r.pair_hits), len(pairs))} | "
            f"{_ratio(r.true_host_alerts, len(r.alerts))} | "
            f"{_ratio(len(r.hosts_hit), len(r.capture.hosts))} | {len(r.false_alerts)} |"
        )
        totals["pairs"] += len(pairs)
        totals["pairs_yes"] += len(pairs_yes)
        totals["hit"] += len(r.pair_hits)
        totals["hit_yes"] += len(r.pair_hits & pairs_yes)
        totals["alerts"] += len(r.alerts)
        totals["true"] += len(r.alerts) - len(r.false_alerts)
    benign = [r for r in results if r.capture.role == "benign"]
    days = [r for r in results if r.capture.role == "benign-day"]
    other = [r for r in results if r.capture.role == "other"]
    lines += [
        "",
        "### Overall",
        "",
        f"* Findings flows can show (`yes`) found: {_ratio(totals['hit_yes'], totals['pairs_yes'])}"
        f"; all findings (`yes`, `weak`, `no`) found: {_ratio(totals['hit'], totals['pairs'])}.",
        f"* Alerts on the expected channels or hosts: {_ratio(totals['true'], totals['alerts'])} "
        f"of all alerts.",
        f"* Benign captures and files with any alert: "
        f"{sum(1 for r in benign if r.alerts)} of {len(benign)} "
        f"({sum(len(r.alerts) for r in benign)} alerts; target 0).",
        f"* Port-scan file (`other`): {sum(len(r.alerts) for r in other)} alerts.",
        "",
        "### False alerts on the 24 h benign days (target ≤ 1 per 1,000 source hosts per day)",
        "",
        "| file | source hosts | span (h) | false alerts | per 1,000 hosts per day |",
        "|---|---|---|---|---|",
    ]
    host_days = false_total = 0.0
    for r in days:
        span_days = max(r.span_ms / DAY_MS, 1e-9)
        rate = len(r.false_alerts) / (r.source_hosts / 1000) / span_days
        host_days += r.source_hosts / 1000 * span_days
        false_total += len(r.false_alerts)
        lines.append(
            f"| `{r.capture.path}` | {r.source_hosts:,} | {r.span_ms / 3_600_000:.1f} | "
            f"{len(r.false_alerts)} | {rate:.2f} |"
        )
    if host_days:
        lines.append(
            f"| **all three** | | | {int(false_total)} | **{false_total / host_days:.2f}** |"
        )
    return lines


def report_sweep(beacons: dict, exfils: dict, seeds: Sequence[int], hosts: int) -> list[str]:
    """The detection curves as tables of detection rates."""
    lines = [
        "## Synthetic sweep",
        "",
        f"Each cell: share of {len(seeds)} synthetic days (`detectors.synthetic.synthetic_day`, "
        f"{hosts} hosts, seeds {', '.join(map(str, seeds))}) on which the planted channel was "
        "alerted.",
        "",
        f"### Beacons: {SWEEP_HOST} → {SWEEP_C2}:443, a new connection per callback, all day",
        "",
        "| period \\ jitter | " + " | ".join(f"±{j:.0%}" for j in BEACON_JITTERS) + " |",
        "|---|" + "---|" * len(BEACON_JITTERS),
    ]
    for period_s in BEACON_PERIODS_S:
        cells = " | ".join(f"{beacons[(period_s, j)]:.2f}" for j in BEACON_JITTERS)
        lines.append(f"| {period_s} s | {cells} |")
    lines += [
        "",
        "### Exfiltration: one host uploads *k* x its median working-hour client bytes",
        "",
        "| k x baseline | " + " | ".join(f"{m:g}x" for m in EXFIL_MULTIPLES) + " |",
        "|---|" + "---|" * len(EXFIL_MULTIPLES),
        "| detected | " + " | ".join(f"{exfils[m]:.2f}" for m in EXFIL_MULTIPLES) + " |",
    ]
    return lines


def commit_id() -> str:
    """The commit the run was made on, marked ``+dirty`` when tracked files differ."""
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        [
            "git",
            "-C",
            str(REPO),
            "diff",
            "--quiet",
            "HEAD",
            "--",
            "detectors",
            "streams",
            "connectors",
        ],
        check=False,
    ).returncode
    return head + ("+dirty" if dirty else "")


BEGIN = "<!-- BEGIN bench/evaluate.py output: everything up to END is regenerated -->"
END = "<!-- END bench/evaluate.py output -->"


def write_report(path: Path, text: str) -> None:
    """Replace the generated part of ``path`` (between the markers), keeping the prose."""
    current = path.read_text() if path.exists() else f"{BEGIN}\n{END}\n"
    head, _, rest = current.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate, then print the report or write it into a markdown file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the data/real folder")
    parser.add_argument("--write", type=Path, help="write the markdown report here")
    parser.add_argument("--no-sweep", action="store_true", help="real files only")
    parser.add_argument("--seeds", type=int, default=3, help="synthetic days per sweep cell")
    parser.add_argument("--hosts", type=int, default=300, help="hosts per synthetic day")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from streams.embedded import detect

    started = time.perf_counter()
    results = evaluate_real(args.data, detect)
    lines = [
        f"Run on commit `{commit_id()}` at {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC "
        f"with `python -m bench.evaluate`.",
        "",
        *report_real(results),
    ]
    for r in results:
        if r.alerts:
            lines += ["", f"Alerts on `{r.capture.path}`:", ""]
            lines += [f"* {_alert_text(a)}" for a in r.alerts]
    if not args.no_sweep:
        seeds = list(range(1, args.seeds + 1))
        beacons = beacon_sweep(detect, seeds, args.hosts)
        exfils = exfil_sweep(detect, seeds, args.hosts)
        lines += ["", *report_sweep(beacons, exfils, seeds, args.hosts)]
    lines += ["", f"Harness wall time: {time.perf_counter() - started:.0f} s."]
    text = "\n".join(lines) + "\n"
    if args.write:
        write_report(args.write, text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
