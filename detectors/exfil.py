"""Exfiltration scoring: a host sending far more than usual, in big packets.

An exfiltration shows as one source host whose outbound bytes in an hour jump
far above its own history, carried in few large packets (high bytes/packet),
often to a destination or port it never used, turning a consumer (workstations
download more than they upload) into a producer. Any one of these alone is
common in benign traffic (backups, uploads, BitTorrent), so an alert needs the
volume jump *and* ``min_evidence`` supporting signs; hosts without enough
history are never scored (warm-up), and every baseline is a median/MAD (over
the busier half of a host's hours, so its nights do not make each morning a jump).

Exfiltration is asymmetric, so outbound dominance is required, not just
evidence: the producer/consumer ratio PCR = (sent - received) / (sent +
received) (Bullard & Gerth, FloCon 2014) of the host over the hour, or of the
pair with its top destination, must reach ``min_producer_ratio``. A video
call or a screen share sends about as much as it receives (PCR near 0) however
big it is.

Measured (scorer alone, ``exfil_sweep_case`` with 300 hosts, seeds 1-5): found
at 10x in 5/5 days, 8x 4/5, 6x 4/5, 4x 2/5, 3x and 2x 0/5, with no other host
alerting in those 30 days; no alert on the three 24 h Stratosphere benign days.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from silkwatch.detectors.alerts import Alert, severity_for
from silkwatch.detectors.hosts import HostHour, HostKey, HourSenders
from silkwatch.detectors.huber import huber_line
from silkwatch.detectors.robust import busy_half, robust_sd
from silkwatch.detectors.schema import HOUR_MS, address_text


@dataclass(frozen=True)
class ExfilConfig:
    """Thresholds and weights of the exfiltration scorer.

    Volumes are what the host sent as a client (:attr:`HostHour.client_bytes`:
    service replies such as a web server's downloads are not uploads). The
    volume gate (all three of ``min_sent_bytes``, ``min_baseline_ratio``,
    ``min_robust_z``) must pass, then the defining sign of exfiltration, bulk
    packets (``min_bytes_per_packet``, or the host above the bubble fit), and
    at least ``min_evidence`` of the five supporting signs in all (bytes/packet,
    producer/consumer shift, new destinations, bubble residual, peers).

    :param baseline_hours: earlier hours (event time, before the scored hour)
        that form a host's own baseline: of the hours in which it sent
        anything as a client, the busier half (its working regime), whose
        median and MAD the hour is compared with. Default - 24
    :param min_history_hours: warm-up: a host must have sent something in at
        least this many of those hours before it can be scored, so a host seen
        for the first time (or a one-off burst while learning) never alerts.
        Default - 6
    :param min_sent_bytes: an hour sending less than this is never an
        exfiltration alert; small leaks are the DNS-tunnel detector's job and
        tiny hosts would otherwise make huge ratios out of noise. Default - 1 MB
    :param min_baseline_ratio: sent bytes must be at least this multiple of the
        host's median hourly bytes. With the defaults 10x fires and 2x does not
        (2x is within a workstation's ordinary hour-to-hour swing). Default - 4.0
    :param min_robust_z: and at least this many robust standard deviations
        (1.4826 x MAD of ln bytes) above that median. Default - 4.0
    :param mad_floor_ln: lower bound of the MAD of ln(bytes), so a host with a
        perfectly flat history does not turn a 30 % rise into a huge z.
        Default - 0.25
    :param min_bytes_per_packet: evidence: the hour's outbound bytes/packet is
        at least this (bulk data fills packets; requests and ACKs do not).
        Default - 700.0
    :param min_ratio_shift: evidence: the producer/consumer ratio
        ``(sent - received) / (sent + received)`` rose by at least this much
        over the host's median. Default - 0.4
    :param min_new_share: evidence: at least this share of the hour's sampled
        outbound bytes went to destinations or destination ports absent from
        the host's baseline hours. Default - 0.5
    :param min_bubble_residual: evidence: the host lies at least this many
        robust standard deviations above the log(bytes)-vs-log(packets) fit
        across all hosts of the hour. Default - 3.0
    :param min_peer_z: evidence: ln(bytes) is at least this many robust
        standard deviations above the median host of the hour. Default - 3.0
    :param min_evidence: how many of the five supporting signs must hold.
        Default - 2
    :param min_producer_ratio: required: the hour's PCR of the host, or of the
        host with its top destination, is at least this. The pair's PCR
        compares the largest single flow each way (what the bounded sketches
        of :mod:`silkwatch.detectors.hosts` keep), so a split call still reads ~0 and
        an upload with ACKs back ~1; when the received statistics carry no
        peer sketch, only the host's PCR is known and decides. Default - 0.4
    :param weight_volume: score weight of the volume term, which grows from 0.5
        at ``min_baseline_ratio`` to 1 at ``full_ratio`` (log scale). Default - 0.5
    :param weight_evidence: score weight of the share of supporting signs that
        hold. Default - 0.5
    :param full_ratio: baseline multiple at which the volume term saturates.
        Default - 50.0
    :param max_destinations: size of the per host-hour sketches of
        destinations and of ports, each keeping the ``k`` with the largest
        single flow (:mod:`silkwatch.detectors.hosts`); distinct counts are exact below
        this and saturate at it. Default - 32
    """

    baseline_hours: int = 24
    min_history_hours: int = 6
    min_sent_bytes: int = 1_000_000
    min_baseline_ratio: float = 4.0
    min_robust_z: float = 4.0
    mad_floor_ln: float = 0.25
    min_bytes_per_packet: float = 700.0
    min_ratio_shift: float = 0.4
    min_new_share: float = 0.5
    min_bubble_residual: float = 3.0
    min_peer_z: float = 3.0
    min_evidence: int = 2
    min_producer_ratio: float = 0.4
    weight_volume: float = 0.5
    weight_evidence: float = 0.5
    full_ratio: float = 50.0
    max_destinations: int = 32


@dataclass(frozen=True, eq=False)
class BubbleFit:
    """A robust line through the hosts' bubble chart: log10(bytes) vs log10(packets).

    Most hosts sit near one line (bytes grow with packets at a typical packet
    size). Hosts far *above* it move many bytes in few packets (bulk upload,
    exfiltration candidates); far *below* it, many packets carry almost nothing
    (keep-alives, beacons, scans).

    :param slope: decades of bytes per decade of packets
    :param intercept: log10(bytes) at one packet
    :param scale: robust standard deviation of the residuals (1.4826 x MAD),
        floored at ``min_scale``, in decades
    :param residuals: log10(bytes) minus the line, per host, in decades
    """

    slope: float
    intercept: float
    scale: float
    residuals: np.ndarray

    @property
    def sigmas(self) -> np.ndarray:
        """Residuals in robust standard deviations."""
        return self.residuals / self.scale

    def above(self, threshold: float) -> np.ndarray:
        """Indices of hosts at least ``threshold`` sigmas above the line (exfil candidates)."""
        return np.flatnonzero(self.sigmas >= threshold)

    def below(self, threshold: float) -> np.ndarray:
        """Indices of hosts at least ``threshold`` sigmas below the line (beacon candidates)."""
        return np.flatnonzero(self.sigmas <= -threshold)


def fit_bubble(bytes_: np.ndarray, packets: np.ndarray, *, min_scale: float = 0.05) -> BubbleFit:
    """Fit log10(bytes) against log10(packets) across hosts, robust to outliers.

    A Huber regression (:func:`~silkwatch.detectors.huber.huber_line`) keeps the
    few hosts we are looking for from dragging the line towards themselves. With
    fewer than three hosts or a single packet count there is no slope to learn (nor
    when the fit fails): the line then has slope 1 through the median bytes/packet.
    Zeros are counted as 1.

    :param bytes_: bytes per host
    :param packets: packets per host
    :param min_scale: floor of the residual scale, in decades, so that hosts on
        an exact line do not make every tiny deviation infinite. Default - 0.05

    Examples
    --------
    >>> packets = np.array([1, 10, 100, 1000, 10000])
    >>> fit = fit_bubble(100 * packets, packets)  # 100 bytes per packet
    >>> round(fit.slope, 3), round(fit.intercept, 3), fit.residuals.round(3).tolist()
    (1.0, 2.0, [0.0, 0.0, 0.0, 0.0, 0.0])
    >>> packets = np.array([10, 20, 40, 80, 160, 320, 640, 5])
    >>> bytes_ = 100 * packets
    >>> bytes_[3], bytes_[7] = 80 * 1400, 5 * 40  # a bulk sender and a tiny beacon
    >>> fit = fit_bubble(bytes_, packets)
    >>> round(fit.slope, 3), fit.above(3.0).tolist(), fit.below(3.0).tolist()
    (1.0, [3], [7])
    """
    x = np.log10(np.maximum(np.asarray(packets, dtype=np.float64), 1.0))
    y = np.log10(np.maximum(np.asarray(bytes_, dtype=np.float64), 1.0))
    line = huber_line(x, y) if len(x) >= 3 and np.ptp(x) > 0.0 else None
    if line is None:
        slope, intercept = 1.0, float(np.median(y - x)) if len(x) else 0.0
    else:
        slope, intercept = line.slope, line.intercept
    residuals = y - (intercept + slope * x)
    scale = max(robust_sd(residuals), min_scale)
    return BubbleFit(slope, intercept, scale, residuals)


def score_exfil(
    sent: Mapping[HostKey, HostHour],
    received: Mapping[HostKey, HostHour],
    *,
    hour_start_ms: int,
    config: ExfilConfig | None = None,
) -> list[Alert]:
    """Exfiltration alerts for the hour starting at ``hour_start_ms``.

    Reads whole mappings of :func:`silkwatch.detectors.hosts.host_deltas` statistics
    (combined with :func:`silkwatch.detectors.hosts.combine_hosts`) and keeps no other
    state: each host sending in that hour is compared with its own earlier
    hours, with its peers of the hour and with the bubble-chart fit.

    :param sent: (host, hour_start_ms) → what the host sent; a
        :class:`silkwatch.detectors.hosts.SentHours` (the stream's) may hold only the hosts
        to score, its columns standing for every other sender of the hour
    :param received: (host, hour_start_ms) → what the host received
    :param hour_start_ms: the hour to score (event time)
    :param config: thresholds. Default - ``ExfilConfig()``

    Examples
    --------
    >>> from silkwatch.detectors.hosts import host_deltas
    >>> from silkwatch.detectors.schema import make_batch
    >>> h = 3_600_000
    >>> usual = make_batch(sip=["10.0.0.5"] * 8, dip=["192.0.2.1"] * 8, dport=[443] * 8,
    ...                    proto=[6] * 8, packets=[2000] * 8, bytes=[300_000] * 8,
    ...                    stime_ms=[i * h for i in range(8)])
    >>> leak = make_batch(sip=["10.0.0.5"] * 3, dip=["203.0.113.9"] * 3, dport=[443] * 3,
    ...                   proto=[6] * 3, packets=[700] * 3, bytes=[1_000_000] * 3,
    ...                   stime_ms=[8 * h + 60_000 * i for i in range(3)])
    >>> sent, received = host_deltas(np.concatenate([usual, leak]))
    >>> [a.sip for a in score_exfil(sent, received, hour_start_ms=7 * h)]
    []
    >>> [alert] = score_exfil(sent, received, hour_start_ms=8 * h)
    >>> alert.kind, alert.sip, alert.severity, alert.evidence["baseline_ratio"]
    ('exfil', '10.0.0.5', 'medium', 10.0)
    >>> alert.reason
    '10.0.0.5 sent 3,000,000 bytes in an hour, 10.0x its busy-hour median, largest
     flow to 203.0.113.9; big packets, new destination.'

    """
    config = config or ExfilConfig()
    # peers: hosts that sent something as clients this hour (pure servers would
    # pile up at zero and drag both the bubble fit and the peer median down)
    senders = HourSenders.of(sent, hour_start_ms)
    octets = senders.client_bytes.astype(np.float64)
    candidates = np.flatnonzero(octets >= config.min_sent_bytes).tolist()
    if not candidates:
        return []
    fit = fit_bubble(octets, senders.client_packets.astype(np.float64))
    ln_bytes = np.log(octets)
    peer_z = (ln_bytes - np.median(ln_bytes)) / max(robust_sd(ln_bytes), config.mad_floor_ln)
    since_ms = hour_start_ms - config.baseline_hours * HOUR_MS
    alerts = []
    for i in candidates:
        host = senders.hosts[i]
        evidence = _host_evidence(
            _hours(sent, host, since_ms, hour_start_ms),
            _hours(received, host, since_ms, hour_start_ms),
            hour_start_ms,
            config,
        )
        if evidence is None:
            continue
        evidence["bubble_sigmas"] = float(fit.sigmas[i])
        evidence["peer_z"] = float(peer_z[i])
        alert = _alert(host, sent[(host, hour_start_ms)], evidence, config)
        if alert is not None:
            alerts.append(alert)
    return alerts


def _host_evidence(
    sent_hours: Mapping[int, HostHour],
    received_hours: Mapping[int, HostHour],
    hour_start_ms: int,
    config: ExfilConfig,
) -> dict[str, Any] | None:
    """The host's numbers against its own history, or None (warm-up or no volume jump)."""
    history = [
        hour
        for hour, value in sent_hours.items()
        if hour < hour_start_ms and value.client_bytes > 0
    ]
    if len(history) < config.min_history_hours:
        return None
    now = sent_hours[hour_start_ms]
    past_ln = np.log([sent_hours[hour].client_bytes for hour in history])
    past_ln = busy_half(past_ln)
    median_ln = float(np.median(past_ln))
    robust_z = (np.log(now.client_bytes) - median_ln) / max(robust_sd(past_ln), config.mad_floor_ln)
    ratio = now.client_bytes / np.exp(median_ln)
    if ratio < config.min_baseline_ratio or robust_z < config.min_robust_z:
        return None
    past_pcr = [_producer_ratio(sent_hours[hour], received_hours.get(hour)) for hour in history]
    pcr = _producer_ratio(now, received_hours.get(hour_start_ms))
    known_peers = {peer[:2] for hour in history for peer in sent_hours[hour].peers}
    known_ports = {port[:1] for hour in history for port in sent_hours[hour].ports}
    top_hi, top_lo, top_bytes = now.peers[0]  # the sketches are sorted, largest flow first
    top_port = now.ports[0][0]
    received_now = received_hours.get(hour_start_ms)
    pair_pcr: float | None = None  # unknown when the received side keeps no peer sketch
    back = 0
    if received_now is None or received_now.peers:
        peers = received_now.peers if received_now else ()
        back = max((p[2] for p in peers if p[:2] == (top_hi, top_lo)), default=0)
        pair_pcr = (top_bytes - back) / (top_bytes + back) if top_bytes + back else 0.0
    return {
        "client_bytes": now.client_bytes,
        "client_packets": now.client_packets,
        "sent_bytes": now.bytes,
        "sent_flows": now.flows,
        "received_bytes": received_now.bytes if received_now else 0,
        "bytes_per_packet": now.client_bytes / now.client_packets if now.client_packets else 0.0,
        "baseline_median_bytes": float(np.exp(median_ln)),
        "baseline_ratio": round(float(ratio), 3),
        "robust_z": float(robust_z),
        "history_hours": len(history),
        "producer_consumer_ratio": pcr,
        "pair_producer_ratio": pair_pcr,
        "top_flow_bytes_back": back,
        "ratio_shift": pcr - float(np.median(past_pcr)),
        "new_destination_share": _new_share(now.peers, known_peers),
        "new_port_share": _new_share(now.ports, known_ports),
        "distinct_destinations": now.distinct_peers,
        "top_destination": address_text(top_hi.to_bytes(8, "big") + top_lo.to_bytes(8, "big")),
        "top_flow_bytes": top_bytes,
        "top_dport": top_port & 0xFFFF,
        "top_proto": top_port >> 16,
    }


def _alert(
    host: bytes, now: HostHour, evidence: dict[str, Any], config: ExfilConfig
) -> Alert | None:
    """Count the supporting signs, score, and phrase the alert; None if too few signs."""
    signs = {
        "big packets": evidence["bytes_per_packet"] >= config.min_bytes_per_packet,
        "turned producer": evidence["ratio_shift"] >= config.min_ratio_shift,
        "new destination": max(evidence["new_destination_share"], evidence["new_port_share"])
        >= config.min_new_share,
        "above the bubble fit": evidence["bubble_sigmas"] >= config.min_bubble_residual,
        "far above peers": evidence["peer_z"] >= config.min_peer_z,
    }
    held = [name for name, holds in signs.items() if holds]
    evidence["signs"] = len(held)
    defining = signs["big packets"] or signs["above the bubble fit"]
    pair_pcr = evidence["pair_producer_ratio"]
    outbound = max(evidence["producer_consumer_ratio"], -1.0 if pair_pcr is None else pair_pcr)
    if outbound < config.min_producer_ratio:
        return None  # as much came back as went out: a call or a sync, not a leak
    if not defining or len(held) < config.min_evidence:
        return None
    volume = np.log(evidence["baseline_ratio"] / config.min_baseline_ratio) / np.log(
        config.full_ratio / config.min_baseline_ratio
    )
    evidence["part_volume"] = 0.5 + 0.5 * float(np.clip(volume, 0.0, 1.0))
    evidence["part_evidence"] = len(held) / len(signs)
    evidence["signs_held"] = held
    score = config.weight_volume * evidence["part_volume"]
    score += config.weight_evidence * evidence["part_evidence"]
    host_text = address_text(host)
    return Alert(
        kind="exfil",
        severity=severity_for(score),
        score=score,
        sip=host_text,
        dip=None,
        dport=None,
        proto=None,
        first_seen_ms=now.first_ms,
        last_seen_ms=now.last_ms,
        evidence=evidence,
        reason=(
            f"{host_text} sent {now.client_bytes:,} bytes in an hour, "
            f"{evidence['baseline_ratio']:.1f}x its busy-hour median, largest flow "
            f"to {evidence['top_destination']}; {', '.join(held)}."
        ),
    )


def _hours(
    mapping: Mapping[HostKey, HostHour], host: bytes, since_ms: int, hour_start_ms: int
) -> dict[int, HostHour]:
    """One host's statistics from ``since_ms`` up to and including ``hour_start_ms``."""
    hours = range(since_ms, hour_start_ms + HOUR_MS, HOUR_MS)
    return {hour: mapping[(host, hour)] for hour in hours if (host, hour) in mapping}


def _producer_ratio(sent: HostHour, received: HostHour | None) -> float:
    """(sent - received) / (sent + received): +1 pure producer, -1 pure consumer."""
    inbound = received.bytes if received is not None else 0
    total = sent.bytes + inbound
    return (sent.bytes - inbound) / total if total else 0.0


def _new_share(sketch: tuple[tuple[int, ...], ...], known: set[tuple[int, ...]]) -> float:
    """Share of a sketch's largest-flow bytes whose key is not in ``known`` (0 if empty)."""
    total = sum(entry[-1] for entry in sketch)
    fresh = sum(entry[-1] for entry in sketch if entry[:-1] not in known)
    return fresh / total if total else 0.0
