"""The real captures and flow files: each through the detector, scored against the ground truth.

Each file of the data folder's ``real/`` (pcaps through the real softflowd →
nfcapd chain, flow files through :func:`silkwatch.connectors.flows.read_flows`) runs on
its own through the detector, and its alerts are matched with the findings of
:mod:`silkwatch.evaluation.truth`.

Matching rules (also printed in the report): an alert is right at *pair* level
when its two addresses are an expected (infected host, controller) pair in
either direction, and right at *host* level when its source is the infected
host or the controller. Anything else is a false alert.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from silkwatch.connectors.flows import read_flows
from silkwatch.connectors.pcapflows import pcap_to_flows
from silkwatch.detectors.schema import HOUR_MS, FlowBatch, ip_strings
from silkwatch.evaluation.truth import CAPTURES, Capture

logger = logging.getLogger(__name__)

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


def _ratio(numerator: int, denominator: int) -> str:
    return f"{numerator}/{denominator} = {numerator / denominator:.2f}" if denominator else "n/a"


def alert_text(alert) -> str:
    target = f"{alert.dip}:{alert.dport}" if alert.dip is not None else "(host)"
    return f"{alert.kind} {alert.sip} → {target} ({alert.score:.2f})"


def _alerts_cell(alerts: Iterable, limit: int = 4) -> str:
    alerts = list(alerts)
    shown = "<br>".join(alert_text(a) for a in alerts[:limit])
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
        span_days = max(r.span_ms / (24 * HOUR_MS), 1e-9)
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
