"""Synthetic sweeps: beacons by period and jitter, exfiltrations by multiple of baseline.

Each cell plants its channel into synthetic days of :mod:`silkwatch.detectors.synthetic`
and counts the days on which the detector alerted it; alerts on nothing
planted are the sweep's false alerts.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from silkwatch.detectors.schema import HOUR_MS, FlowBatch, empty_batch, ipv4_to_v16
from silkwatch.evaluation.real import Detect

logger = logging.getLogger(__name__)

DAY_MS = 24 * HOUR_MS

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
    4 packets ~310 B, as :mod:`silkwatch.detectors.synthetic` draws its own beacons), every
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
    from silkwatch.detectors.synthetic import synthetic_day

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
    from silkwatch.detectors.synthetic import exfil_sweep_case

    for multiple in EXFIL_MULTIPLES:
        for seed in seeds:
            batches, truth = exfil_sweep_case(seed, multiple, hosts=hosts)
            alerts = detect(batches)
            found = any(a.sip == truth.sip and a.kind == "exfil" for a in alerts)
            result.exfils.setdefault(multiple, []).append(found)
            logger.info("sweep exfil seed=%d multiple=%s found=%s", seed, multiple, found)


def _rate(found: list[bool]) -> str:
    return f"{sum(found)}/{len(found)}"


def report_sweep(sweep: SweepResult, seeds: Sequence[int], hosts: int) -> list[str]:
    """The detection curves as tables: detected days / days per cell."""
    per_1000 = sweep.false_alerts / (sweep.host_days / 1000) if sweep.host_days else 0.0
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(sweep.false_kinds.items())) or "none"
    lines = [
        "## Synthetic sweep",
        "",
        f"Synthetic days from `silkwatch.detectors.synthetic.synthetic_day` ({hosts} hosts, seeds "
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
