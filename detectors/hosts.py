"""Per (host, hour) traffic statistics, as the exfiltration scorer reads them.

:class:`HostHour` is one host's traffic in one direction during one hour:
exact totals (flows, packets, bytes, first and last time) plus two bounded
sketches, the ``k`` destinations and the ``k`` destination ports that carried
the largest single flows. The stream keeps the totals of every (host, hour) in
columns (:mod:`silkwatch.detectors.hoststate`) and builds these values only for the hosts
it scores; :func:`host_deltas` builds them from one batch (the doctests' and
tests' input).

Why "largest single flow" and not "most bytes": the top ``k`` keys by a
per-key *maximum* do not depend on how the flows were batched; by a *sum* they
do. It also asks the right question for exfiltration: "has this host ever sent
a large flow to this destination before?".

Keys are ``(host, hour_start_ms)`` with ``host`` the 16 bytes of the address column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from silkwatch.detectors.schema import HOUR_MS, FlowBatch, ip_words

if TYPE_CHECKING:
    pass


#: default size of the destination and port sketches (``ExfilConfig.max_destinations``)
MAX_DESTINATIONS = 32

HostKey = tuple[bytes, int]
#: (address high 64 bits, low 64 bits, bytes of the largest single flow)
Peer = tuple[int, int, int]
#: (proto << 16 | dport, bytes of the largest single flow)
Port = tuple[int, int]


@dataclass(frozen=True, slots=True)
class HostHour:
    """One host's traffic in one direction during one hour.

    :param flows: flow records
    :param packets: packets
    :param bytes: bytes
    :param served_packets: packets of flows that look like a service's replies
        (a non-zero source port below the destination port, e.g. 443 → 51234;
        ICMP has no source port and counts as sent); the rest is
        what the host sent as a client, the part exfiltration hides in
    :param served_bytes: bytes of those replies
    :param first_ms: earliest flow start (ms since the epoch)
    :param last_ms: latest flow end, start + elapsed (ms)
    :param peers: the ``k`` peers (destinations for what was sent, sources for
        what was received) with the largest single flow, as :data:`Peer`
        tuples, largest first, ties by address
    :param ports: the ``k`` destination ports likewise, as :data:`Port` tuples

    The sketches are tuples of Python ints rather than numpy arrays: they hold
    at most ``k`` entries, and tuples compare, hash and pickle natively and
    merge without numpy's per-call overhead (this object is built per key per
    batch, the stream's hot path).
    """

    flows: int
    packets: int
    bytes: int
    served_packets: int
    served_bytes: int
    first_ms: int
    last_ms: int
    peers: tuple[Peer, ...]
    ports: tuple[Port, ...]

    @property
    def bytes_per_packet(self) -> float:
        """Mean packet size of everything sent; 0 for an hour without packets."""
        return self.bytes / self.packets if self.packets else 0.0

    @property
    def client_bytes(self) -> int:
        """Bytes sent other than service replies (uploads, requests, peer-to-peer)."""
        return self.bytes - self.served_bytes

    @property
    def client_packets(self) -> int:
        """Packets sent other than service replies."""
        return self.packets - self.served_packets

    @property
    def distinct_peers(self) -> int:
        """Distinct peers, exact up to the sketch size and saturating there."""
        return len(self.peers)

    @property
    def distinct_ports(self) -> int:
        """Distinct (proto, dport), exact up to the sketch size and saturating there."""
        return len(self.ports)

    def peer_addresses(self) -> np.ndarray:
        """The sketched peers as a ``V16`` address column (for :func:`ip_strings`)."""
        words = np.array([peer[:2] for peer in self.peers], dtype=">u8").reshape(-1, 2)
        return words.view("V16").reshape(-1)


@dataclass(frozen=True, eq=False)
class HourSenders:
    """Every host that sent something as a client in one hour, in address order:
    what the exfiltration scorer's fit across hosts and peer median read.

    Columns, because the stream's hour holds thousands of senders and only a
    few are scored: building a :class:`HostHour` for each of the others was most
    of an hour close's exfiltration cost.

    :param hour_ms: the hour's start (ms)
    :param hosts: 16-byte addresses, sorted (the fit does not depend on the
        order a mapping was filled in)
    :param client_bytes: :attr:`HostHour.client_bytes` per host (int64)
    :param client_packets: :attr:`HostHour.client_packets` per host (int64, all > 0)

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch, parse_ip
    >>> b = make_batch(sip=["10.0.0.2", "10.0.0.1", "10.0.0.3"], dip=["8.8.8.8"] * 3,
    ...                sport=[5000, 5001, 443], dport=[443, 443, 5000],
    ...                packets=[3, 2, 9], bytes=[300, 200, 900])
    >>> senders = HourSenders.of(host_deltas(b)[0], 0)  # 10.0.0.3 only replied: not a client
    >>> [host == parse_ip(ip)[0] for host, ip in zip(senders.hosts, ["10.0.0.1", "10.0.0.2"])]
    [True, True]
    >>> senders.client_bytes.tolist(), senders.client_packets.tolist()
    ([200, 300], [2, 3])
    """

    hour_ms: int
    hosts: list[bytes]
    client_bytes: np.ndarray
    client_packets: np.ndarray

    @classmethod
    def of(cls, sent: Mapping[HostKey, HostHour], hour_ms: int) -> HourSenders:
        """The senders of ``hour_ms`` in ``sent``: its own when it is a
        :class:`SentHours` (which may hold only the scored hosts), else read from
        every value of that hour.

        Raises ValueError when a :class:`SentHours` holds another hour's senders.
        """
        if isinstance(sent, SentHours):
            if sent.senders.hour_ms != hour_ms:
                raise ValueError(
                    f"sent hours hold the senders of hour {sent.senders.hour_ms}, not {hour_ms}"
                )
            return sent.senders
        hosts = sorted(
            host
            for (host, hour), value in sent.items()
            if hour == hour_ms and value.client_packets > 0
        )
        now = [sent[(host, hour_ms)] for host in hosts]
        return cls(
            hour_ms,
            hosts,
            np.array([value.client_bytes for value in now], dtype=np.int64),
            np.array([value.client_packets for value in now], dtype=np.int64),
        )


class SentHours(dict[HostKey, HostHour]):
    """What hosts sent, for scoring one hour: the scored hosts' hours as
    :class:`HostHour` values, and every sender of the hour as :class:`HourSenders`
    columns (the other hosts have no value here).

    :param senders: every host that sent as a client in the scored hour
    :param hours: (host, hour_start_ms) → what the host sent, for the scored hosts
    """

    def __init__(
        self, senders: HourSenders, hours: Iterable[tuple[HostKey, HostHour]] = ()
    ) -> None:
        super().__init__(hours)
        self.senders = senders


def host_deltas(
    batch: FlowBatch, *, hour_ms: int = HOUR_MS, max_destinations: int = MAX_DESTINATIONS
) -> tuple[dict[HostKey, HostHour], dict[HostKey, HostHour]]:
    """One batch's per (host, hour) statistics: (sent by sip, received by dip).

    Each flow counts in the hour it started (event time). Grouping is done with
    sorts over the whole batch; Python only touches one object per key.

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch, parse_ip
    >>> b = make_batch(sip=["10.0.0.1", "10.0.0.1", "10.0.0.2"],
    ...                dip=["8.8.8.8", "1.1.1.1", "8.8.8.8"], dport=[53, 443, 53],
    ...                proto=[17, 6, 17], packets=[1, 10, 2], bytes=[60, 9000, 130],
    ...                stime_ms=[0, 1000, 3_600_000])
    >>> sent, received = host_deltas(b)
    >>> h = sent[(parse_ip("10.0.0.1")[0], 0)]
    >>> h.flows, h.packets, h.bytes, h.bytes_per_packet, h.served_bytes, h.distinct_peers
    (2, 11, 9060, 823.636..., 0, 2)
    >>> h.ports  # (6 << 16 | 443, largest flow), (17 << 16 | 53, largest flow)
    ((393659, 9000), (1114165, 60))
    >>> sorted((hour, r.flows, r.bytes) for (_, hour), r in received.items())
    [(0, 1, 60), (0, 1, 9000), (3600000, 1, 130)]
    """
    hours = batch["stime_ms"] // hour_ms * hour_ms
    sent = _side(batch, batch["sip"], batch["dip"], hours, max_destinations)
    received = _side(batch, batch["dip"], batch["sip"], hours, max_destinations)
    return sent, received


def _side(
    batch: FlowBatch, host_col: np.ndarray, peer_col: np.ndarray, hours: np.ndarray, k: int
) -> dict[HostKey, HostHour]:
    """Group one direction of the batch by (host, hour) into :class:`HostHour` values."""
    if len(batch) == 0:
        return {}
    host_hi, host_lo = ip_words(host_col)
    order = np.lexsort((hours, host_lo, host_hi))
    keys = np.stack([host_hi[order], host_lo[order], hours[order].astype(np.uint64)], axis=1)
    new_key = np.r_[True, np.any(keys[1:] != keys[:-1], axis=1)]
    starts = np.flatnonzero(new_key)
    group = np.empty(len(batch), dtype=np.int64)
    group[order] = np.cumsum(new_key) - 1

    flow_bytes = batch["bytes"]
    packets = np.add.reduceat(batch["packets"][order], starts)
    octets = np.add.reduceat(flow_bytes[order], starts)
    served = ((batch["sport"] > 0) & (batch["sport"] < batch["dport"]))[order]
    served_packets = np.add.reduceat(np.where(served, batch["packets"][order], 0), starts)
    served_bytes = np.add.reduceat(np.where(served, flow_bytes[order], 0), starts)
    flows = np.diff(np.r_[starts, len(batch)])
    first_ms = np.minimum.reduceat(batch["stime_ms"][order], starts)
    end_ms = batch["stime_ms"] + batch["elapsed_ms"].astype(np.int64)
    last_ms = np.maximum.reduceat(end_ms[order], starts)

    peer_hi, peer_lo = ip_words(peer_col)
    peer_group, p_hi, p_lo, p_max = _top_per_group(group, peer_hi, peer_lo, flow_bytes, k)
    port_keys = (batch["proto"].astype(np.uint64) << np.uint64(16)) | batch["dport"]
    port_group, _, port_key, port_max = _top_per_group(
        group, np.zeros_like(port_keys), port_keys, flow_bytes, k
    )
    peer_bounds = np.searchsorted(peer_group, np.arange(len(starts) + 1))
    port_bounds = np.searchsorted(port_group, np.arange(len(starts) + 1))

    host_words = np.stack([host_hi, host_lo], axis=1).astype(">u8")[order[starts]]
    peer_at, port_at = peer_bounds.tolist(), port_bounds.tolist()
    peers = list(zip(p_hi.tolist(), p_lo.tolist(), p_max.tolist(), strict=True))
    ports = list(zip(port_key.tolist(), port_max.tolist(), strict=True))
    rows = zip(
        host_words,
        keys[starts, 2].tolist(),
        flows.tolist(),
        packets.tolist(),
        octets.tolist(),
        served_packets.tolist(),
        served_bytes.tolist(),
        first_ms.tolist(),
        last_ms.tolist(),
        strict=True,
    )
    out: dict[HostKey, HostHour] = {}
    for i, (host, hour, n, pk, by, spk, sby, t0, t1) in enumerate(rows):
        peer_slice = tuple(peers[peer_at[i] : peer_at[i + 1]])
        port_slice = tuple(ports[port_at[i] : port_at[i + 1]])
        out[(host.tobytes(), hour)] = HostHour(n, pk, by, spk, sby, t0, t1, peer_slice, port_slice)
    return out


def _top_per_group(
    group: np.ndarray, key_hi: np.ndarray, key_lo: np.ndarray, values: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per group, the ``k`` keys with the largest per-key maximum of ``values``.

    Returns (group, key_hi, key_lo, max) sorted by group, then by max
    descending, ties by key ascending, so the result is one canonical order.
    """
    values = np.asarray(values, dtype=np.uint64)
    order = np.lexsort((key_lo, key_hi, group))
    g, hi, lo = group[order], key_hi[order], key_lo[order]
    new_run = np.r_[True, (g[1:] != g[:-1]) | (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])]
    starts = np.flatnonzero(new_run)
    if len(starts) == 0:
        empty = np.zeros(0, dtype=np.uint64)
        return np.zeros(0, dtype=np.int64), empty, empty, empty
    run_max = np.maximum.reduceat(values[order], starts)
    g, hi, lo = g[starts], hi[starts], lo[starts]
    ranked = np.lexsort((lo, hi, ~run_max, g))
    g, hi, lo, run_max = g[ranked], hi[ranked], lo[ranked], run_max[ranked]
    group_start = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    rank = np.arange(len(g)) - np.repeat(group_start, np.diff(np.r_[group_start, len(g)]))
    keep = rank < k
    return g[keep], hi[keep], lo[keep], run_max[keep]
