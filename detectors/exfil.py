"""Exfiltration scoring: a host sending far more than usual, in big packets.

An exfiltration shows as one source host whose outbound bytes in an hour jump
far above its own history, carried in few large packets (high bytes/packet),
often to a destination or port it never used, turning a consumer (workstations
download more than they upload) into a producer. Any one of these alone is
common in benign traffic (backups, uploads, BitTorrent), so an alert needs the
volume jump *and* ``min_evidence`` supporting signs; hosts without enough
history are never scored (warm-up), and every baseline is a median/MAD.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExfilConfig:
    """Thresholds and weights of the exfiltration scorer.

    The volume gate (all three of ``min_sent_bytes``, ``min_baseline_ratio``,
    ``min_robust_z``) must pass, then at least ``min_evidence`` of the five
    supporting signs (bytes/packet, producer/consumer shift, new destinations,
    bubble residual, peers).

    :param baseline_hours: earlier hours (event time, before the scored hour)
        that form a host's own baseline. A day covers the diurnal cycle.
        Default - 24
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
    :param weight_volume: score weight of the volume term, which grows from 0 at
        ``min_baseline_ratio`` to 1 at ``full_ratio``. Default - 0.5
    :param weight_evidence: score weight of the share of supporting signs that
        hold. Default - 0.5
    :param full_ratio: baseline multiple at which the volume term saturates.
        Default - 50.0
    :param max_destinations: size of the per host-hour bottom-k sketches of
        destinations and ports (exact below this many distinct values).
        Default - 32
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
    weight_volume: float = 0.5
    weight_evidence: float = 0.5
    full_ratio: float = 50.0
    max_destinations: int = 32
