"""A realistic synthetic day of flows with planted attacks and their ground truth.

Detectors need data where the answer is known. :func:`synthetic_day` draws a
network of client hosts behind two sensors whose activity follows a working
day, browsing the web (a few favourite sites each plus a long tail), resolving
names, syncing clocks and checking for updates (periodic but benign: the
false-positive traps a beacon detector must survive), and plants three beacons
with jitter, one exfiltration and one DNS tunnel. Every connection becomes two
unidirectional records (request, reply) sharing start and duration, as NetFlow
exporters write them.

Everything is drawn at once with numpy from one seed (no per-flow Python), so
a day of about a million flows takes about a second and the same seed gives
the same bytes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from silkwatch.detectors.schema import FLOW_DTYPE, HOUR_MS, FlowBatch, ip_strings, ipv4_to_v16

logger = logging.getLogger(__name__)

DAY_HOURS = 24

#: 2015-06-17 00:00 UTC, inside the FCCX reference data's span
DEFAULT_START_MS = 1_434_499_200_000

#: relative activity per hour of the day: night, morning ramp, lunch dip, evening
DIURNAL = np.array(
    [0.05, 0.04, 0.04, 0.04, 0.05, 0.08, 0.2, 0.5, 0.9, 1.0, 1.0, 0.95,
     0.8, 0.95, 1.0, 1.0, 0.9, 0.7, 0.45, 0.3, 0.22, 0.15, 0.1, 0.07]
)  # fmt: skip

TCP, UDP = 6, 17
#: SiLK "twoway" flowtypes (``silk-format.md`` §10.1)
IN, OUT, INWEB, OUTWEB, INT2INT = 0, 1, 2, 3, 6
WEB_PORTS = (80, 443, 8080)
#: FIN | SYN | PSH | ACK, a complete TCP conversation
TCP_FLAGS = 0x1B


def _ip(text: str) -> int:
    a, b, c, d = (int(part) for part in text.split("."))
    return a << 24 | b << 16 | c << 8 | d


CLIENT_BASE = _ip("10.1.0.1")
RESOLVER = _ip("10.0.0.53")
NTP_SERVERS = np.array([_ip("162.159.200.1"), _ip("162.159.200.123"), _ip("162.159.200.200")])
UPDATE_SERVER = _ip("13.107.4.50")
EXFIL_SERVER = _ip("203.0.113.77")
#: (C2 address, port, period s, jitter as a fraction of the period)
BEACONS = (
    (_ip("198.51.100.23"), 443, 60.0, 0.10),
    (_ip("198.51.100.45"), 8080, 300.0, 0.20),
    (_ip("198.51.100.67"), 443, 900.0, 0.05),
)


@dataclass(frozen=True)
class Planted:
    """One planted activity: who did what to whom, and when (event time, ms).

    :param kind: ``"beacon"``, ``"exfil"``, ``"dns_tunnel"`` (malicious) or
        ``"ntp"``, ``"update_check"`` (benign periodic traffic from many hosts;
        ``sip`` is then ``"*"``)
    :param detail: the generator's parameters (period, jitter, bytes…)
    """

    kind: str
    sip: str
    dip: str
    dport: int
    proto: int
    first_ms: int
    last_ms: int
    detail: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SyntheticDay:
    """The day's flows, time-ordered in batches, and what was planted in them."""

    batches: list[FlowBatch]
    planted: tuple[Planted, ...]
    start_ms: int
    hosts: int

    @property
    def flows(self) -> int:
        """Number of flow records."""
        return sum(len(batch) for batch in self.batches)

    def truth(self, kind: str) -> list[Planted]:
        """The planted activities of one kind."""
        return [p for p in self.planted if p.kind == kind]


def synthetic_day(
    seed: int,
    *,
    hosts: int = 2000,
    start_ms: int = DEFAULT_START_MS,
    connections_per_hour: float = 20.0,
    exfil_multiple: float = 10.0,
    exfil_hour: int = 14,
    tunnel_hours: tuple[int, int] = (9, 17),
    batch_rows: int = 65_536,
) -> SyntheticDay:
    """Draw one day of flows with planted beacons, an exfiltration and a DNS tunnel.

    :param seed: the one source of randomness; same seed, same bytes
    :param hosts: client hosts (10.1.0.1 upwards), split over sensors 0 and 1.
        Default - 2000
    :param start_ms: midnight the day starts at (UTC ms). Default - 2015-06-17
    :param connections_per_hour: a typical host's connections in a busy hour
        (hosts vary log-normally around it). Default - 20
    :param exfil_multiple: the exfiltrated bytes as a multiple of the host's
        median client bytes per working hour before it (the evaluation sweeps
        10 down to 2). Default - 10
    :param exfil_hour: hour of the day of the exfiltration. Default - 14
    :param tunnel_hours: first and last-but-one hour of the DNS tunnel.
        Default - 09:00 to 17:00
    :param batch_rows: most flows per batch. Default - 65,536

    Examples
    --------
    >>> day = synthetic_day(7, hosts=50)
    >>> day.flows, len(day.batches), [p.kind for p in day.planted]
    (52138, 1, ['beacon', 'beacon', 'beacon', 'exfil', 'dns_tunnel', 'ntp', 'update_check'])
    >>> exfil = day.truth("exfil")[0]
    >>> exfil.sip, exfil.dip, exfil.detail["bytes"]
    ('10.1.0.45', '203.0.113.77', 1544580.0)
    """
    rng = np.random.default_rng(seed)
    activity = connections_per_hour * rng.lognormal(-0.32, 0.8, hosts)
    clients = CLIENT_BASE + np.arange(hosts)
    chosen = _pick_hosts(rng, activity)
    parts = [
        _browsing(rng, clients, activity, start_ms),
        _ntp(rng, clients, start_ms),
        _update_checks(rng, clients, start_ms),
    ]
    planted: list[Planted] = []
    for (server, port, period_s, jitter), host in zip(BEACONS, chosen[:3], strict=True):
        part = _beacon(rng, clients[host], server, port, period_s, jitter, start_ms)
        parts.append(part)
        planted.append(
            _planted("beacon", part, {"period_s": period_s, "jitter": jitter, "flows": part.size})
        )
    background = _Connections.concat(parts)
    exfil = _exfil(rng, background, clients[chosen[3]], exfil_multiple, exfil_hour, start_ms)
    tunnel = _dns_tunnel(rng, clients[chosen[4]], tunnel_hours, start_ms)
    planted.append(_planted("exfil", exfil, {"bytes": float(exfil.out_bytes.sum())}))
    planted.append(_planted("dns_tunnel", tunnel, {"queries": tunnel.size}))
    planted += [
        Planted("ntp", "*", "162.159.200.1", 123, UDP, start_ms, start_ms + 86_400_000,
                {"period_s": 1024.0}),
        Planted("update_check", "*", "13.107.4.50", 443, TCP, start_ms, start_ms + 86_400_000,
                {"period_s": 3600.0}),
    ]  # fmt: skip
    flows = _Connections.concat([background, exfil, tunnel]).records(hosts)
    batches = [flows[i : i + batch_rows] for i in range(0, len(flows), batch_rows)]
    logger.info("synthetic day seed=%d hosts=%d flows=%d", seed, hosts, len(flows))
    return SyntheticDay(batches, tuple(planted), start_ms, hosts)


def exfil_sweep_case(
    seed: int, multiple: float, *, hosts: int = 300
) -> tuple[list[FlowBatch], Planted]:
    """One point of the exfiltration sweep: a smaller day whose exfil is ``multiple`` x baseline.

    Returns the batches and the planted exfiltration; a detector finds it when it
    alerts on ``truth.sip`` in the hour starting at ``truth.first_ms // 3_600_000``.

    Examples
    --------
    >>> batches, truth = exfil_sweep_case(1, 4.0, hosts=40)
    >>> truth.kind, truth.detail["bytes"] > 0
    ('exfil', True)
    """
    day = synthetic_day(seed, hosts=hosts, exfil_multiple=multiple)
    return day.batches, day.truth("exfil")[0]


@dataclass
class _Connections:
    """Columns of bidirectional connections, before they become two records each."""

    client: np.ndarray  # IPv4 as uint32 (the initiator)
    server: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    proto: np.ndarray
    stime_ms: np.ndarray
    elapsed_ms: np.ndarray
    out_packets: np.ndarray
    out_bytes: np.ndarray
    in_packets: np.ndarray
    in_bytes: np.ndarray

    @property
    def size(self) -> int:
        return len(self.stime_ms)

    @classmethod
    def build(cls, rng: np.random.Generator, **columns: np.ndarray) -> _Connections:
        """Broadcast the given columns to one length; random ephemeral source ports."""
        n = len(columns["stime_ms"])
        columns.setdefault("sport", rng.integers(49_152, 65_536, n))
        return cls(**{name: np.broadcast_to(value, n).copy() for name, value in columns.items()})

    @classmethod
    def concat(cls, parts: list[_Connections]) -> _Connections:
        names = cls.__dataclass_fields__
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in names})

    def records(self, hosts: int) -> FlowBatch:
        """Request and reply records (replies only where the server answered), by start time."""
        answered = np.flatnonzero(self.in_packets > 0)
        rows = np.r_[np.arange(self.size), answered]
        request = np.r_[np.ones(self.size, bool), np.zeros(len(answered), bool)]
        order = np.argsort(self.stime_ms[rows], kind="stable")
        rows, request = rows[order], request[order]
        client, server = self.client[rows], self.server[rows]
        sport, dport, proto = self.sport[rows], self.dport[rows], self.proto[rows]
        batch = np.zeros(len(rows), dtype=FLOW_DTYPE)  # calloc: untouched columns cost nothing
        batch["sip"] = ipv4_to_v16(np.where(request, client, server))
        batch["dip"] = ipv4_to_v16(np.where(request, server, client))
        batch["sport"] = np.where(request, sport, dport)
        batch["dport"] = np.where(request, dport, sport)
        batch["proto"] = proto
        batch["stime_ms"] = self.stime_ms[rows]
        batch["elapsed_ms"] = self.elapsed_ms[rows]
        batch["packets"] = np.where(request, self.out_packets[rows], self.in_packets[rows])
        batch["bytes"] = np.where(request, self.out_bytes[rows], self.in_bytes[rows])
        batch["flags"] = np.where(proto == TCP, TCP_FLAGS, 0)
        batch["sensor"] = (client - CLIENT_BASE) * 2 // max(hosts, 1) % 2
        web = (proto == TCP) & np.isin(dport, WEB_PORTS)
        outbound = np.where(web, OUTWEB, OUT)
        inbound = np.where(web, INWEB, IN)
        internal = (server >> 24) == 10
        batch["flowtype"] = np.where(internal, INT2INT, np.where(request, outbound, inbound))
        return batch


def _pick_hosts(rng: np.random.Generator, activity: np.ndarray) -> np.ndarray:
    """Five distinct hosts: three beacons, a busy exfiltrator (top decile), a tunnel."""
    busy = np.flatnonzero(activity >= np.quantile(activity, 0.9))
    exfiltrator = rng.choice(busy)
    others = rng.permutation(np.setdiff1d(np.arange(len(activity)), [exfiltrator]))[:4]
    return np.r_[others[:3], exfiltrator, others[3]]


def _browsing(
    rng: np.random.Generator, clients: np.ndarray, activity: np.ndarray, start_ms: int
) -> _Connections:
    """Web, DNS and SSH connections, Poisson per host and hour, following :data:`DIURNAL`."""
    counts = rng.poisson(activity[:, None] * DIURNAL[None, :])
    host = np.repeat(np.arange(len(clients)).repeat(DAY_HOURS), counts.ravel())
    hour = np.repeat(np.tile(np.arange(DAY_HOURS), len(clients)), counts.ravel())
    n = len(host)
    kind = rng.random(n)
    dns, ssh = kind >= 0.82, (kind >= 0.80) & (kind < 0.82)
    web = ~(dns | ssh)
    # a few favourite sites per host (hashing host and slot) plus a Zipf long tail
    sites = _ip("23.0.0.0") + rng.choice(1 << 20, 4000, replace=False)
    favourite = (host * 7919 + rng.integers(0, 6, n) * 104_729) % len(sites)
    tail = np.minimum(rng.zipf(1.4, n) - 1, len(sites) - 1)
    server = sites[np.where(rng.random(n) < 0.6, favourite, tail)]
    server = np.where(dns, RESOLVER, np.where(ssh, _ip("10.0.1.22"), server))
    # downloads dominate; 2 % of web connections upload something
    in_bytes = np.clip(rng.lognormal(np.log(15_000), 1.6, n), 300, 200e6).astype(np.int64)
    in_packets = -(-in_bytes // 1380) + 2
    request = rng.lognormal(np.log(2500), 0.9, n).astype(np.int64)
    upload = np.where(web & (rng.random(n) < 0.02), rng.lognormal(np.log(20_000), 1.0, n), 0)
    out_packets = in_packets // 2 + 3 + (upload // 1380).astype(np.int64)
    out_bytes = request + 52 * out_packets + upload.astype(np.int64)
    dns_out = rng.integers(60, 100, n)
    return _Connections.build(
        rng,
        client=clients[host],
        server=server,
        dport=np.where(dns, 53, np.where(ssh, 22, np.where(rng.random(n) < 0.88, 443, 80))),
        proto=np.where(dns, UDP, TCP),
        stime_ms=start_ms + hour * HOUR_MS + rng.integers(0, HOUR_MS, n),
        elapsed_ms=np.where(
            dns, rng.integers(2, 60, n), np.minimum(rng.lognormal(np.log(1500), 1.2, n), 1.8e6)
        ).astype(np.int64),
        out_packets=np.where(dns, 1, out_packets),
        out_bytes=np.where(dns, dns_out, out_bytes),
        in_packets=np.where(dns, 1, in_packets),
        in_bytes=np.where(dns, dns_out + rng.integers(16, 250, n), in_bytes),
    )


def _periodic(
    rng: np.random.Generator, clients: np.ndarray, period_s: float, jitter_s: float, start_ms: int
) -> tuple[np.ndarray, np.ndarray]:
    """Start times of a timer per client (random phase, uniform jitter): (client, stime_ms)."""
    ticks = int(86_400 // period_s)
    phase_ms = rng.uniform(0, period_s * 1000, len(clients))
    offset_ms = np.arange(ticks) * period_s * 1000
    times = phase_ms[:, None] + offset_ms[None, :]
    times += rng.uniform(-jitter_s * 1000, jitter_s * 1000, times.shape)
    times = np.clip(times, 0, 86_400_000 - 1).astype(np.int64)
    return np.repeat(clients, ticks), start_ms + times.ravel()


def _ntp(rng: np.random.Generator, clients: np.ndarray, start_ms: int) -> _Connections:
    """A third of the hosts poll an NTP server every 1024 s (one 76-byte packet each way)."""
    client, stime_ms = _periodic(rng, clients[::3], 1024.0, 0.5, start_ms)
    server = NTP_SERVERS[client % len(NTP_SERVERS)]
    return _Connections.build(
        rng, client=client, server=server, sport=123, dport=123, proto=UDP, stime_ms=stime_ms,
        elapsed_ms=rng.integers(5, 40, len(client)), out_packets=1, out_bytes=76,
        in_packets=1, in_bytes=76,
    )  # fmt: skip


def _update_checks(rng: np.random.Generator, clients: np.ndarray, start_ms: int) -> _Connections:
    """A quarter of the hosts ask the update server for news every hour (±5 min)."""
    client, stime_ms = _periodic(rng, clients[1::4], 3600.0, 300.0, start_ms)
    n = len(client)
    return _Connections.build(
        rng, client=client, server=UPDATE_SERVER, dport=443, proto=TCP, stime_ms=stime_ms,
        elapsed_ms=rng.integers(200, 900, n), out_packets=rng.integers(7, 10, n),
        out_bytes=rng.integers(1500, 2200, n), in_packets=rng.integers(6, 9, n),
        in_bytes=rng.integers(4000, 6500, n),
    )  # fmt: skip


def _beacon(
    rng: np.random.Generator,
    client: int,
    server: int,
    port: int,
    period_s: float,
    jitter: float,
    start_ms: int,
) -> _Connections:
    """An implant calling home all day: a new small connection every period (± jitter)."""
    clients, stime_ms = _periodic(rng, np.array([client]), period_s, jitter * period_s, start_ms)
    n = len(clients)
    return _Connections.build(
        rng, client=clients, server=server, dport=port, proto=TCP, stime_ms=stime_ms,
        elapsed_ms=rng.integers(150, 600, n), out_packets=5,
        out_bytes=rng.normal(420, 30, n).astype(np.int64), in_packets=4,
        in_bytes=rng.normal(310, 25, n).astype(np.int64),
    )  # fmt: skip


def _exfil(
    rng: np.random.Generator,
    background: _Connections,
    client: int,
    multiple: float,
    hour: int,
    start_ms: int,
) -> _Connections:
    """Six bulk uploads to a never-seen server within one hour.

    The volume is ``multiple`` x the host's median client bytes per working
    hour (DIURNAL >= 0.5) before ``hour``, so the sweep's multiples mean what
    an analyst would call "10x a normal busy hour".
    """
    mine = background.client == client
    hours = (background.stime_ms[mine] - start_ms) // HOUR_MS
    per_hour = np.bincount(hours, weights=background.out_bytes[mine], minlength=DAY_HOURS)
    working = np.flatnonzero(DIURNAL[:hour] >= 0.5)
    total = int(multiple * np.median(per_hour[working]))
    flows = 6
    out_bytes = np.full(flows, total // flows)
    out_bytes[0] += total - out_bytes.sum()
    out_packets = -(-out_bytes // 1420)
    stime_ms = (
        start_ms + hour * HOUR_MS + np.arange(flows) * 8 * 60_000 + rng.integers(0, 60_000, flows)
    )
    return _Connections.build(
        rng, client=client, server=EXFIL_SERVER, dport=443, proto=TCP, stime_ms=stime_ms,
        elapsed_ms=rng.integers(240_000, 420_000, flows), out_packets=out_packets,
        out_bytes=out_bytes, in_packets=out_packets // 2, in_bytes=out_packets // 2 * 52,
    )  # fmt: skip


def _dns_tunnel(
    rng: np.random.Generator, client: int, hours: tuple[int, int], start_ms: int
) -> _Connections:
    """A tunnel through the resolver: a long query from a new source port every ~2 s."""
    first_ms = start_ms + hours[0] * HOUR_MS
    span_ms = (hours[1] - hours[0]) * HOUR_MS
    stime_ms = first_ms + np.cumsum(rng.exponential(2000.0, span_ms // 2000)).astype(np.int64)
    stime_ms = stime_ms[stime_ms < first_ms + span_ms]
    n = len(stime_ms)
    return _Connections.build(
        rng, client=client, server=RESOLVER, dport=53, proto=UDP, stime_ms=stime_ms,
        elapsed_ms=rng.integers(5, 80, n), out_packets=1,
        out_bytes=rng.normal(190, 25, n).astype(np.int64), in_packets=1,
        in_bytes=rng.normal(240, 40, n).astype(np.int64),
    )  # fmt: skip


def _planted(kind: str, part: _Connections, detail: dict[str, float]) -> Planted:
    """Describe one planted part by its (single) client, server and port."""
    sip, dip = ip_strings(
        ipv4_to_v16(np.array([part.client[0], part.server[0]])), np.zeros(2, bool)
    )
    return Planted(
        kind, sip, dip, int(part.dport[0]), int(part.proto[0]),
        int(part.stime_ms.min()), int((part.stime_ms + part.elapsed_ms).max()), detail,
    )  # fmt: skip
