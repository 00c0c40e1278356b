"""DNS tunnel and DNS exfiltration scoring from flow records alone.

Without the query names, a tunnel still shows in what one host sends to port
53, compared with what a stub resolver normally sends:

* **long queries**: a query is one packet, and its size is the name's length.
  Ordinary names give 60–100-byte packets; tunnels pack data into names of
  150–250 characters. Only single-packet flows are measured, because a flow of
  several packets mixes retries and answers (bidirectional records).
* **one UDP conversation of many packets**: a stub resolver uses a fresh
  source port per query, so one 5-tuple with many packets is a tunnel session
  (iodine, dns2tcp) or a misconfiguration.
* **machine-timed queries**: one query every N seconds like a clock (dnscat2
  polling); people and applications ask in bursts, and a stub asks for A and
  AAAA together, which breaks the rhythm.
* **volume far above peers**: bytes to port 53 many robust standard
  deviations above the hosts of the same network (needs enough hosts).

Hosts that themselves receive queries from several clients are resolvers: their
outbound DNS is recursion on behalf of others and is not scored (the trap the
README calls "DNS resolvers").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from silkwatch.detectors.alerts import Alert, severity_for
from silkwatch.detectors.pairs import PairHistory, PairKey
from silkwatch.detectors.robust import interval_timing
from silkwatch.detectors.schema import HOUR_MS, address_text
from silkwatch.detectors.site import SiteConfig, is_broadcast

DNS_PORT = 53
UDP = 17


@dataclass(frozen=True)
class DnsConfig:
    """Thresholds of the DNS tunnel scorer.

    Every field is documented, with the reason for its default, in
    ``detectors/defaults.toml`` (section ``[dns]``).
    """

    window_ms: int = 24 * HOUR_MS
    long_query_bytes: int = 180
    min_long_queries: int = 10
    full_long_queries: int = 100
    min_session_packets: int = 8
    full_session_packets: int = 30
    min_regular_queries: int = 10
    max_regular_rel_mad: float = 0.1
    min_regular_period_ms: int = 500
    max_regular_period_ms: int = 300_000
    min_peer_hosts: int = 20
    min_peer_z: float = 5.0
    min_volume_bytes: int = 1_000_000
    resolver_min_clients: int = 5
    alert_score: float = 0.6


@dataclass
class _HostDns:
    """One source host's port-53 traffic in the window (working state, not stored)."""

    flows: int = 0
    bytes: int = 0
    packets: int = 0
    duration_ms: int = 0
    single_queries: int = 0
    long_queries: int = 0
    max_udp_packets: int = 0
    first_ms: int = 2**63 - 1
    last_ms: int = 0
    top_dip: bytes = b""
    top_dport_proto: tuple[int, int] = (DNS_PORT, UDP)
    top_flows: int = 0
    regular_rel_mad: float = float("inf")
    regular_period_ms: float = 0.0


class DnsPopulation(NamedTuple):
    """Every host's DNS traffic over the window, when ``pairs`` holds only the hosts to score.

    :param clients: destination → source hosts that sent it queries (a resolver has many)
    :param host_bytes: each source host's bytes to port 53, all hosts (the peer comparison)
    """

    clients: Mapping[bytes, int]
    host_bytes: np.ndarray


def score_dns_tunnels(
    pairs: Mapping[PairKey, PairHistory],
    *,
    now_ms: int,
    config: DnsConfig | None = None,
    site: SiteConfig | None = None,
    population: DnsPopulation | None = None,
) -> list[Alert]:
    """One ``dns_tunnel`` alert per source host whose port-53 traffic is not normal DNS.

    :param pairs: the pair histories (a dict or a Faust table's items)
    :param now_ms: end of the scored window, event time
    :param config: thresholds. Default - ``DnsConfig()``
    :param site: accepted like every pair scorer's; internal networks do not
        matter here (tunnels go through the site's own resolvers), and
        queries to broadcast or multicast addresses are never a tunnel.
        Default - ``SiteConfig()``
    :param population: resolvers' client counts and every host's DNS bytes, counted
        by the engine over all pairs when ``pairs`` holds only the hosts that could
        alert. Default - counted from ``pairs``

    Examples
    --------
    >>> from silkwatch.detectors.pairs import pair_deltas
    >>> from silkwatch.detectors.schema import make_batch
    >>> n = 30
    >>> b = make_batch(sip=["10.0.0.7"] * n, dip=["10.0.0.53"] * n, dport=[53] * n,
    ...                sport=range(30_000, 30_000 + n), proto=[17] * n,
    ...                stime_ms=[i * 2_345 for i in range(n)], bytes=[230] * n, packets=[1] * n)
    >>> [(a.kind, a.sip, a.dip, a.evidence["long_queries"], a.score)
    ...  for a in score_dns_tunnels(pair_deltas(b), now_ms=70_000)]
    [('dns_tunnel', '10.0.0.7', '10.0.0.53', 30, 1.0)]
    """
    config = config or DnsConfig()
    since_ms = now_ms - config.window_ms
    hosts: dict[bytes, _HostDns] = defaultdict(_HostDns)
    clients_of: dict[bytes, set[bytes]] = defaultdict(set)
    for key, history in pairs.items():
        sip, dip, dport, _ = key
        if dport != DNS_PORT or history.is_reply(dport) or is_broadcast(dip):
            continue
        events = history.window(since_ms, now_ms)
        if len(events) == 0:
            continue
        clients_of[dip].add(sip)
        _add_pair(hosts[sip], key, history, events, since_ms, config)
    if population is None:
        population = DnsPopulation(
            {ip: len(clients) for ip, clients in clients_of.items()},
            np.array([host.bytes for host in hosts.values()], dtype=np.float64),
        )
    resolvers = {ip for ip, n in population.clients.items() if n >= config.resolver_min_clients}
    peer_z = _peer_z(hosts, population.host_bytes, config)
    alerts = []
    for sip, host in hosts.items():
        if sip in resolvers:
            continue
        alert = _host_alert(sip, host, peer_z.get(sip, 0.0), config)
        if alert is not None:
            alerts.append(alert)
    return sorted(alerts, key=lambda a: (-a.score, a.sip))


def _add_pair(
    host: _HostDns,
    key: PairKey,
    history: PairHistory,
    events: np.ndarray,
    since_ms: int,
    config: DnsConfig,
) -> None:
    """Fold one port-53 pair into its source host's totals."""
    flows, nbytes, packets, duration_ms = history.totals(since_ms, int(events[-1, 0])).tolist()
    host.flows += flows
    host.bytes += nbytes
    host.packets += packets
    host.duration_ms += duration_ms
    single = events[events[:, 3] == 1]
    host.single_queries += len(single)
    host.long_queries += int((single[:, 2] >= config.long_query_bytes).sum())
    if key[3] == UDP:
        host.max_udp_packets = max(host.max_udp_packets, int(events[:, 3].max()))
    host.first_ms = min(host.first_ms, int(events[0, 0]))
    host.last_ms = max(host.last_ms, int(events[-1, 0] + events[-1, 1]))
    if flows > host.top_flows:
        host.top_dip, host.top_dport_proto, host.top_flows = key[1], (key[2], key[3]), flows
    if len(single) >= config.min_regular_queries:
        timing = interval_timing(single[:, 0])
        if timing.rel_mad < host.regular_rel_mad:
            host.regular_rel_mad, host.regular_period_ms = timing.rel_mad, timing.period_ms


def _peer_z(
    hosts: Mapping[bytes, _HostDns], every_host_bytes: np.ndarray, config: DnsConfig
) -> dict[bytes, float]:
    """Robust z of ln(bytes to port 53) against all hosts, when there are enough of them."""
    if len(every_host_bytes) < config.min_peer_hosts:
        return {}
    log_bytes = np.log1p(np.asarray(every_host_bytes, dtype=np.float64))
    median = np.median(log_bytes)
    mad = max(float(np.median(np.abs(log_bytes - median))) * 1.4826, 0.25)
    return {k: float((np.log1p(host.bytes) - median) / mad) for k, host in hosts.items()}


def _ramp_up(value: float, low: float, high: float) -> float:
    """0 at ``low``, 1 at ``high``, linear between."""
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


def _host_alert(sip: bytes, host: _HostDns, peer_z: float, config: DnsConfig) -> Alert | None:
    """Score one host on the four signs; the strongest sign sets the score."""
    signs = {}
    if host.long_queries >= config.min_long_queries:
        signs["long_queries"] = 0.6 + 0.4 * _ramp_up(
            host.long_queries, config.min_long_queries, config.full_long_queries
        )
    if host.max_udp_packets >= config.min_session_packets:
        signs["udp_session"] = 0.6 + 0.4 * _ramp_up(
            host.max_udp_packets, config.min_session_packets, config.full_session_packets
        )
    if (
        host.regular_rel_mad <= config.max_regular_rel_mad
        and config.min_regular_period_ms <= host.regular_period_ms <= config.max_regular_period_ms
    ):
        signs["regular_timing"] = 0.6 + 0.4 * (
            1.0 - host.regular_rel_mad / config.max_regular_rel_mad
        )
    if peer_z >= config.min_peer_z and host.bytes >= config.min_volume_bytes:
        signs["volume"] = 0.6 + 0.4 * _ramp_up(peer_z, config.min_peer_z, 2 * config.min_peer_z)
    if not signs:
        return None
    strongest = max(signs, key=signs.__getitem__)
    score = round(signs[strongest], 4)
    if score < config.alert_score:
        return None
    sip_text, dip_text = address_text(sip), address_text(host.top_dip)
    bytes_per_packet = host.bytes / max(host.packets, 1)
    return Alert(
        kind="dns_tunnel",
        severity=severity_for(score),
        score=score,
        sip=sip_text,
        dip=dip_text,
        dport=host.top_dport_proto[0],
        proto=host.top_dport_proto[1],
        first_seen_ms=host.first_ms,
        last_seen_ms=host.last_ms,
        evidence={
            "flows": host.flows,
            "bytes": host.bytes,
            "packets": host.packets,
            "bytes_per_packet": round(bytes_per_packet, 1),
            "duration_s": round(host.duration_ms / 1000, 3),
            "long_queries": host.long_queries,
            "single_packet_queries": host.single_queries,
            "max_udp_packets_per_flow": host.max_udp_packets,
            "period_s": round(host.regular_period_ms / 1000, 3),
            "jitter_rel_mad": None
            if host.regular_rel_mad == float("inf")
            else host.regular_rel_mad,
            "peer_z": round(peer_z, 2),
            "signs": sorted(signs),
            **{f"part_{name}": round(value, 4) for name, value in sorted(signs.items())},
        },
        reason=_REASONS[strongest].format(h=host, sip=sip_text, dip=dip_text, z=peer_z),
    )


_REASONS = {
    "long_queries": "{sip} sent {h.long_queries} DNS queries of 180+ bytes to {dip}, "
    "names far longer than normal lookups.",
    "udp_session": "{sip} kept one UDP conversation with {dip}:53 of {h.max_udp_packets} "
    "packets, where a resolver client sends one query per source port.",
    "regular_timing": "{sip} queried {dip} every {h.regular_period_ms:.0f} ms like a clock "
    "(jitter {h.regular_rel_mad:.1%} MAD), a polling tunnel rather than lookups.",
    "volume": "{sip} sent {h.bytes} bytes to port 53, {z:.1f} robust deviations above "
    "the other hosts.",
}
