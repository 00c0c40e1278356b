"""Evaluation harness: every real capture and flow file through the embedded detector.

Turns each file of ``../shared/data/real/`` into flows (pcaps through the real
softflowd → nfcapd chain, flow files through :func:`connectors.flows.read_flows`),
runs :func:`streams.embedded.detect` on them, and scores the alerts against
:mod:`bench.ground_truth`; then scores the FCCX enterprise hour (:mod:`bench.cases`) and RITA's
published beacon series (:mod:`bench.rita`); with the sweep, it also runs the
synthetic cases of issue 12 (:mod:`bench.cases`) and sweeps synthetic beacons
(period × jitter) and exfiltrations (volume × baseline) drawn by
:mod:`detectors.synthetic`.

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
import ipaddress
import logging
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.ground_truth import CAPTURES, Capture
from connectors.flows import read_flows
from connectors.pcapflows import pcap_to_flows
from detectors.schema import FlowBatch, empty_batch, ip_strings, ipv4_to_v16
from silkwatch.commands.evaluate import add_arguments, run

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


def sweep_pair(index: int) -> tuple[str, str]:
    """The (host, C2) of the index-th planted sweep beacon: 10.1.0.11… → 192.0.2.101…"""
    return f"10.1.0.{11 + index}", f"192.0.2.{101 + index}"


def _v16(ip: str) -> np.void:
    return ipv4_to_v16(np.array([int(ipaddress.IPv4Address(ip))], dtype=np.uint32))[0]


def beacon_flows(
    host: str, c2: str, start_ms: int, period_s: float, jitter: float, rng: np.random.Generator
) -> FlowBatch:
    """A day-long beacon from ``host`` to ``c2``:443 as request/reply records.

    Each callback is a new small TCP connection (request 5 packets ~420 B, reply
    4 packets ~310 B, as :mod:`detectors.synthetic` draws its own beacons), every
    ``period_s`` with uniform jitter of ± ``jitter`` x period.
    """
    period_ms = period_s * 1000.0
    ticks = np.arange(int(DAY_MS // period_ms)) * period_ms + rng.uniform(0, period_ms)
    ticks += rng.uniform(-jitter, jitter, len(ticks)) * period_ms
    stime_ms = np.sort((start_ms + ticks).astype(np.int64))
    stime_ms = stime_ms[(stime_ms >= start_ms) & (stime_ms < start_ms + DAY_MS)]
    n = len(stime_ms)
    flows = empty_batch(2 * n)
    flows["stime_ms"] = np.repeat(stime_ms, 2)
    flows["elapsed_ms"] = np.repeat(rng.integers(150, 600, n), 2)
    flows["proto"], flows["flags"], flows["sensor"], flows["flowtype"] = 6, 0x1B, 0, 3
    sport = rng.integers(49152, 65535, n)
    client, server = _v16(host), _v16(c2)
    flows["sip"][0::2], flows["dip"][0::2] = client, server
    flows["sip"][1::2], flows["dip"][1::2] = server, client
    flows["sport"][0::2], flows["dport"][0::2] = sport, 443
    flows["sport"][1::2], flows["dport"][1::2] = 443, sport
    flows["packets"][0::2], flows["packets"][1::2] = 5, 4
    flows["bytes"][0::2] = rng.normal(420, 30, n).astype(np.int64)
    flows["bytes"][1::2] = rng.normal(310, 25, n).astype(np.int64)
    return flows


def merge_time_ordered(batches: list[FlowBatch], *extra: FlowBatch) -> list[FlowBatch]:
    """The day's batches with extra flows merged in, re-sorted by start time."""
    merged = np.concatenate([*batches, *extra])
    merged = merged[np.argsort(merged["stime_ms"], kind="stable")]
    return [merged[i : i + 65_536] for i in range(0, len(merged), 65_536)]


@dataclass
class SweepResult:
    """Detection per sweep cell, and the false alerts seen on the synthetic days."""

    beacons: dict[tuple[int, float], list[bool]] = field(default_factory=dict)
    exfils: dict[float, list[bool]] = field(default_factory=dict)
    false_alerts: int = 0
    host_days: int = 0
    false_kinds: dict[str, int] = field(default_factory=dict)

    def count_false(self, alerts: list, truth: set[frozenset[str]], hosts: int) -> None:
        """Alerts on no planted malicious pair (nor its source host) are false alerts."""
        sources = {ip for pair in truth for ip in pair}
        for alert in alerts:
            if frozenset((alert.sip, alert.dip)) not in truth and alert.sip not in sources:
                self.false_alerts += 1
                self.false_kinds[alert.kind] = self.false_kinds.get(alert.kind, 0) + 1
        self.host_days += hosts


def _planted_truth(planted) -> set[frozenset[str]]:
    malicious = {"beacon", "exfil", "dns_tunnel"}
    return {frozenset((p.sip, p.dip)) for p in planted if p.kind in malicious}


def beacon_sweep(detect: Detect, seeds: Sequence[int], hosts: int, result: SweepResult) -> None:
    """Per (jitter, seed) one day with one planted beacon per period, each its own pair.

    The beacons do not share hosts or controllers, so one detector run scores
    all periods at once.
    """
    from detectors.synthetic import synthetic_day

    for seed in seeds:
        day = synthetic_day(seed, hosts=hosts)
        rng = np.random.default_rng(seed)
        for jitter in BEACON_JITTERS:
            pairs = [sweep_pair(i) for i in range(len(BEACON_PERIODS_S))]
            planted = [
                beacon_flows(host, c2, day.start_ms, period_s, jitter, rng)
                for (host, c2), period_s in zip(pairs, BEACON_PERIODS_S, strict=True)
            ]
            alerts = detect(merge_time_ordered(day.batches, *planted))
            alerted = {frozenset((a.sip, a.dip)) for a in alerts}
            for (host, c2), period_s in zip(pairs, BEACON_PERIODS_S, strict=True):
                found = frozenset((host, c2)) in alerted
                result.beacons.setdefault((period_s, jitter), []).append(found)
            truth = _planted_truth(day.planted) | {frozenset(pair) for pair in pairs}
            result.count_false(alerts, truth, hosts)
            logger.info("sweep beacons seed=%d jitter=%s alerts=%d", seed, jitter, len(alerts))


def exfil_sweep(detect: Detect, seeds: Sequence[int], hosts: int, result: SweepResult) -> None:
    """Per (multiple, seed) one day whose planted exfiltration is that multiple of baseline."""
    from detectors.synthetic import exfil_sweep_case

    for multiple in EXFIL_MULTIPLES:
        for seed in seeds:
            batches, truth = exfil_sweep_case(seed, multiple, hosts=hosts)
            alerts = detect(batches)
            found = any(a.sip == truth.sip and a.kind == "exfil" for a in alerts)
            result.exfils.setdefault(multiple, []).append(found)
            logger.info("sweep exfil seed=%d multiple=%s found=%s", seed, multiple, found)


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


def _rate(found: list[bool]) -> str:
    return f"{sum(found)}/{len(found)}"


def report_sweep(sweep: SweepResult, seeds: Sequence[int], hosts: int) -> list[str]:
    """The detection curves as tables: detected days / days per cell."""
    per_1000 = sweep.false_alerts / (sweep.host_days / 1000) if sweep.host_days else 0.0
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(sweep.false_kinds.items())) or "none"
    lines = [
        "## Synthetic sweep",
        "",
        f"Synthetic days from `detectors.synthetic.synthetic_day` ({hosts} hosts, seeds "
        f"{', '.join(map(str, seeds))}); each cell is *days on which the planted channel was "
        "alerted / days*.",
        "",
        "### Beacons: one new TCP connection to :443 per callback, all day",
        "",
        f"Each day carries one beacon per period, each from its own host to its own controller "
        f"({sweep_pair(0)[0]} → {sweep_pair(0)[1]} and up), jitter uniform within ± the given "
        "share of the period.",
        "",
        "| period \\ jitter | " + " | ".join(f"±{j:.0%}" for j in BEACON_JITTERS) + " |",
        "|---|" + "---|" * len(BEACON_JITTERS),
    ]
    for period_s in BEACON_PERIODS_S:
        cells = " | ".join(_rate(sweep.beacons[(period_s, j)]) for j in BEACON_JITTERS)
        lines.append(f"| {period_s:,} s | {cells} |")
    lines += [
        "",
        "### Exfiltration: one host uploads *k* x its median working-hour client bytes",
        "",
        "| k x baseline | " + " | ".join(f"{m:g}x" for m in EXFIL_MULTIPLES) + " |",
        "|---|" + "---|" * len(EXFIL_MULTIPLES),
        "| detected | " + " | ".join(_rate(sweep.exfils[m]) for m in EXFIL_MULTIPLES) + " |",
        "",
        f"False alerts on the beacon-sweep days (alerts on no planted malicious pair or host; the "
        f"generator's benign periodic NTP and hourly update checks are traps): "
        f"{sweep.false_alerts} over {sweep.host_days:,} host-days = **{per_1000:.1f} per 1,000 "
        f"hosts per day** ({kinds}).",
    ]
    return lines


def commit_id() -> str:
    """The commit the run was made on, ``+dirty`` when the code it ran differs from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "detectors", "streams", "connectors")
    return git("rev-parse", "HEAD") + ("+dirty" if changed else "")


BEGIN = "<!-- BEGIN bench/evaluate.py output: everything up to END is regenerated -->"
END = "<!-- END bench/evaluate.py output -->"


def write_report(path: Path, text: str) -> None:
    """Replace the generated part of ``path`` (between the markers), keeping the prose."""
    current = path.read_text() if path.exists() else f"{BEGIN}\n{END}\n"
    head, _, rest = current.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")


def evaluate(data: Path = DATA, *, sweep: bool = True, seeds: int = 2, hosts: int = 60) -> str:
    """Run the whole evaluation; the markdown report.

    :param data: the ``data/real`` folder. Default - ``../shared/data/real`` beside the checkout
    :param sweep: also run the synthetic sweeps (minutes). Default - True
    :param seeds: synthetic days per sweep cell. Default - 2
    :param hosts: hosts per synthetic day. Default - 60
    """
    from streams.embedded import detect

    started = time.perf_counter()
    results = evaluate_real(data, detect)
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
    from bench.cases import report_cases, report_fccx, run_cases, run_fccx
    from bench.rita import report_rita

    if (data.parent / "silk").is_dir():
        lines += ["", *report_fccx(*run_fccx(detect, data.parent))]
    lines += ["", *report_rita()]
    if sweep:
        lines += ["", *report_cases(run_cases(detect, hosts=hosts), 1, hosts)]
        seed_list = list(range(1, seeds + 1))
        result = SweepResult()
        beacon_sweep(detect, seed_list, hosts, result)
        exfil_sweep(detect, seed_list, hosts, result)
        lines += ["", *report_sweep(result, seed_list, hosts)]
    lines += ["", f"Harness wall time: {time.perf_counter() - started:.0f} s."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.evaluate``: the same options as ``silkwatch eval``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
