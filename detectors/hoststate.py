"""Every (host, hour) of one partition, in columns: the exfiltration scorer's state.

One row per (host, event-time hour) and direction, exact totals in int64
columns (flows, packets, bytes, the part that looks like a service's replies,
first and last time). A batch is one key-index pass and a few ``np.add.at``;
no per-key objects. The exfiltration scorer reads an hour's senders as columns
(:class:`silkwatch.detectors.hosts.SentHours`) and :class:`silkwatch.detectors.hosts.HostHour`
values
only for the few hosts that are scored, with the destination and port sketches
filled from the pair state.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from silkwatch.detectors.growth import grown, held_bytes
from silkwatch.detectors.hosts import HOUR_MS, HostHour, HostKey, HourSenders, Peer, Port, SentHours
from silkwatch.detectors.keyindex import KeyIndex
from silkwatch.detectors.pairstate import PairState
from silkwatch.detectors.schema import FlowBatch, ip_words

#: the int64 total columns, in :class:`HostHour`'s order
TOTALS = ("flows", "packets", "bytes", "served_packets", "served_bytes")

#: which side of a flow a :class:`HostHours` counts it for
Direction = Literal["sent", "received"]
_HOST_COLUMN: dict[str, str] = {"sent": "sip", "received": "dip"}
#: each column of :class:`HostHours` and the value of a new row
_FILL: dict[str, int] = {"totals": 0, "first_ms": 2**62, "last_ms": -(2**62)}

#: one (host, hour)'s destination and port sketches: (:data:`Peer` tuples, :data:`Port` tuples)
Sketch = tuple[tuple[Peer, ...], tuple[Port, ...]]


class HostHours:
    """One direction's per (host, hour) totals.

    :param direction: ``"sent"`` counts each flow for its source (sip),
        ``"received"`` for its destination (dip)
    :param seed: the key index's hash seed. Default - random

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch, parse_ip
    >>> b = make_batch(sip=["10.0.0.1", "10.0.0.1", "10.0.0.2"], dip=["8.8.8.8"] * 3,
    ...                sport=[5000, 5001, 53], dport=[53, 53, 5000], packets=[1, 10, 2],
    ...                bytes=[60, 9000, 130], stime_ms=[0, 1000, 3_600_000])
    >>> sent = HostHours("sent")
    >>> sent.update(b)
    >>> h = sent.hour_of(parse_ip("10.0.0.1")[0], 0)
    >>> h.flows, h.packets, h.bytes, h.served_bytes, h.first_ms, h.last_ms
    (2, 11, 9060, 0, 0, 1000)
    >>> sent.hour_of(parse_ip("10.0.0.2")[0], 3_600_000).served_bytes  # 53 → 5000: a reply
    130
    >>> received = HostHours("received")
    >>> received.update(b[:2])
    >>> later = received.empty()
    >>> later.update(b[2:])
    >>> received.merge(later)
    >>> [row[2:5] for row in received.result()]  # (hour, flows, packets) of 8.8.8.8
    [(0, 2, 11), (3600000, 1, 2)]
    """

    def __init__(self, direction: Direction, *, seed: int | None = None) -> None:
        if direction not in _HOST_COLUMN:
            raise ValueError(f"direction must be 'sent' or 'received', not {direction!r}")
        self.direction = direction
        self.index = KeyIndex(3, seed=seed)
        self.totals = np.zeros((0, len(TOTALS)), dtype=np.int64)
        self.first_ms = np.zeros(0, dtype=np.int64)
        self.last_ms = np.zeros(0, dtype=np.int64)
        self._room: dict[str, np.ndarray] = {}  # the columns' buffers (detectors/growth.py)

    def __len__(self) -> int:
        return len(self.index)

    def empty(self) -> HostHours:
        """No hours yet, in the same direction."""
        return HostHours(self.direction)

    def update(self, batch: FlowBatch) -> None:
        """Add a batch's flows to the hours of their sources (sent) or destinations (received)."""
        if len(batch) == 0:
            return
        stime = batch["stime_ms"].astype(np.int64)
        hi, lo = ip_words(batch[_HOST_COLUMN[self.direction]])
        hours = stime - stime % HOUR_MS
        slots = self.index.slots(np.stack([hi, lo, hours.astype(np.uint64)], axis=1))
        self._grow(len(self.index))
        packets = batch["packets"].astype(np.int64)
        octets = batch["bytes"].astype(np.int64)
        served = (batch["sport"] > 0) & (batch["sport"] < batch["dport"])
        np.add.at(self.totals[:, 0], slots, 1)
        np.add.at(self.totals[:, 1], slots, packets)
        np.add.at(self.totals[:, 2], slots, octets)
        np.add.at(self.totals[:, 3], slots, np.where(served, packets, 0))
        np.add.at(self.totals[:, 4], slots, np.where(served, octets, 0))
        np.minimum.at(self.first_ms, slots, stime)
        np.maximum.at(self.last_ms, slots, stime + batch["elapsed_ms"].astype(np.int64))

    def merge(self, other: HostHours) -> None:
        """Add another state's hours (the same direction): totals add, first and last widen."""
        if other.direction != self.direction:
            raise ValueError(f"cannot merge {other.direction} hours into {self.direction} hours")
        n = len(other)
        slots = self.index.slots(other.index.keys)
        self._grow(len(self.index))
        self.totals[slots] += other.totals[:n]
        self.first_ms[slots] = np.minimum(self.first_ms[slots], other.first_ms[:n])
        self.last_ms[slots] = np.maximum(self.last_ms[slots], other.last_ms[:n])

    def result(self) -> tuple[tuple[int, ...], ...]:
        """Every (host, hour) as ``(host hi, host lo, hour, *TOTALS, first_ms, last_ms)``,
        in key order."""
        n = len(self)
        keys = self.index.keys
        order = np.lexsort((keys[:, 2], keys[:, 1], keys[:, 0]))
        rows = zip(
            keys[order].tolist(),
            self.totals[:n][order].tolist(),
            self.first_ms[:n][order].tolist(),
            self.last_ms[:n][order].tolist(),
            strict=True,
        )
        return tuple((*key, *totals, first, last) for key, totals, first, last in rows)

    @property
    def hosts(self) -> np.ndarray:
        """Each slot's host as two words (hi, lo), shape (n, 2)."""
        return self.index.keys[:, :2]

    @property
    def hours(self) -> np.ndarray:
        """Each slot's hour start (int64)."""
        return self.index.keys[:, 2].astype(np.int64)

    def slot_of(self, host: bytes, hour_ms: int) -> int | None:
        """The slot of one (host, hour), or None."""
        words = np.frombuffer(host, dtype=">u8").astype(np.uint64)
        key = np.array([[words[0], words[1], hour_ms]], dtype=np.uint64)
        match = np.flatnonzero((self.index.keys == key).all(axis=1))
        return int(match[0]) if len(match) else None

    def hour_of(
        self,
        host: bytes,
        hour_ms: int,
        peers: tuple[tuple[int, int, int], ...] = (),
        ports: tuple[tuple[int, int], ...] = (),
    ) -> HostHour | None:
        """One (host, hour) as a :class:`HostHour`, with the sketches given (or empty)."""
        slot = self.slot_of(host, hour_ms)
        return None if slot is None else self.at(slot, peers, ports)

    def at(
        self,
        slot: int,
        peers: tuple[tuple[int, int, int], ...] = (),
        ports: tuple[tuple[int, int], ...] = (),
    ) -> HostHour:
        """The :class:`HostHour` of a slot."""
        [value] = self.hours_at(np.array([slot]), [(peers, ports)])
        return value

    def keys_at(self, slots: np.ndarray) -> list[HostKey]:
        """The (host, hour start) key of each slot, as the scorers' mappings use them."""
        return list(zip(host_addresses(self.hosts[slots]), self.hours[slots].tolist(), strict=True))

    def hours_at(self, slots: np.ndarray, sketches: list[Sketch]) -> list[HostHour]:
        """The :class:`HostHour` of each slot, with its (peers, ports) sketch from
        ``sketches``; one pass of ``tolist`` per column."""
        rows = zip(
            self.totals[slots].tolist(),
            self.first_ms[slots].tolist(),
            self.last_ms[slots].tolist(),
            sketches,
            strict=True,
        )
        return [HostHour(*totals, first, last, *sketch) for totals, first, last, sketch in rows]

    def expire(self, before_ms: int) -> int:
        """Forget hours starting before ``before_ms``; returns how many rows went."""
        old = self.hours < before_ms
        count = int(np.count_nonzero(old))
        if count:
            self.keep(~old)
        return count

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the slots where ``mask`` holds."""
        self.index.keep(mask)
        n = len(mask)
        self.totals = self.totals[:n][mask]
        self.first_ms = self.first_ms[:n][mask]
        self.last_ms = self.last_ms[:n][mask]

    @property
    def nbytes(self) -> int:
        """Memory held by the index and columns."""
        return self.index.nbytes + sum(
            held_bytes(getattr(self, name), self._room, name) for name in _FILL
        )

    def _grow(self, n: int) -> None:
        for name, fill in _FILL.items():
            setattr(self, name, grown(getattr(self, name), n, fill, self._room, name))


def host_bytes(words: np.ndarray) -> bytes:
    """A host's two key words as the 16 address bytes the scorers use."""
    [address] = host_addresses(np.asarray(words)[None, :2])
    return address


def host_addresses(words: np.ndarray) -> list[bytes]:
    """Hosts' key words, shape (n, 2), as the 16 address bytes each, in one pass."""
    column = np.ascontiguousarray(np.asarray(words, dtype=np.uint64)[:, :2]).astype(">u8")
    return column.view("V16").reshape(-1).tolist()


def sender_columns(sent: HostHours, hour_ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hosts that sent as clients in the hour: key words (n, 2), client bytes and packets.

    What the exfiltration fit across hosts reads, unordered (a partition's share of
    the site: :func:`hour_senders` orders the whole).
    """
    in_hour = np.flatnonzero(sent.hours == hour_ms)
    totals = sent.totals[in_hour]
    client_bytes = totals[:, 2] - totals[:, 4]
    client_packets = totals[:, 1] - totals[:, 3]
    clients = client_packets > 0
    return sent.hosts[in_hour[clients]], client_bytes[clients], client_packets[clients]


def hour_senders(
    hour_ms: int, words: np.ndarray, client_bytes: np.ndarray, client_packets: np.ndarray
) -> HourSenders:
    """:func:`sender_columns` (of one partition, or all of them together) in address order."""
    order = np.lexsort((words[:, 1], words[:, 0]))  # (hi, lo): the addresses' byte order
    return HourSenders(
        hour_ms, host_addresses(words[order]), client_bytes[order], client_packets[order]
    )


def exfil_inputs(
    sent: HostHours,
    received: HostHours,
    pairs: PairState,
    *,
    hour_ms: int,
    baseline_hours: int,
    min_sent_bytes: int,
    max_destinations: int,
    senders: HourSenders | None = None,
) -> tuple[SentHours, dict[HostKey, HostHour]] | None:
    """What :func:`~silkwatch.detectors.exfil.score_exfil` reads for one hour, from the columns.

    None when no host sent enough in the hour to be scored (the common case).

    Every host sending in the hour as columns, for the fit across hosts (``senders``:
    the whole site's, when this state holds one partition's hosts); for the
    hosts that sent at least ``min_sent_bytes`` as clients (the only ones
    scored), their baseline hours in both directions as :class:`HostHour`
    values, with destination and port sketches from the pair state's retained
    flows.
    """
    in_hour = np.flatnonzero(sent.hours == hour_ms)
    totals = sent.totals[in_hour]
    chosen = in_hour[totals[:, 2] - totals[:, 4] >= min_sent_bytes]
    if len(chosen) == 0:
        return None
    senders = senders or hour_senders(hour_ms, *sender_columns(sent, hour_ms))
    candidates = KeyIndex.from_keys(sent.hosts[chosen])
    since_ms = hour_ms - baseline_hours * HOUR_MS
    sketches = _sketches(pairs, candidates, since_ms, hour_ms, max_destinations)
    # the sources a host received from (their largest flow), for the pair's producer ratio
    sources = _sketches(pairs, candidates, since_ms, hour_ms, max_destinations, received=True)
    sent_map = SentHours(senders)
    received_map: dict[HostKey, HostHour] = {}
    for table, out, sketched in ((sent, sent_map, sketches), (received, received_map, sources)):
        hours = table.hours
        rows = np.flatnonzero(
            (candidates.find(table.hosts) >= 0) & (hours >= since_ms) & (hours <= hour_ms)
        )
        keys = table.keys_at(rows)
        empty: Sketch = ((), ())
        values = table.hours_at(rows, [sketched.get(key, empty) for key in keys])
        out.update(zip(keys, values, strict=True))
    return sent_map, received_map


def _sketches(
    pairs: PairState,
    hosts: KeyIndex,
    since_ms: int,
    until_ms: int,
    k: int,
    *,
    received: bool = False,
) -> dict[HostKey, Sketch]:
    """Per (host, hour): the ``k`` destinations and ports with the largest single flow
    (``received``: the ``k`` sources that sent the host its largest flows, no ports)."""
    pairs.compact()
    own, peer = (slice(2, 4), (0, 1)) if received else (slice(0, 2), (2, 3))
    owner = hosts.find(pairs.index.keys[:, own])
    slots = np.flatnonzero(owner >= 0)
    if len(slots) == 0:
        return {}
    rows, which = pairs.rows_of(slots)
    events = pairs.events[rows]
    start = events["t"].astype(np.int64) + pairs.base_ms
    hour = start - start % HOUR_MS
    inside = (hour >= since_ms) & (hour <= until_ms)
    which, hour, size = which[inside], hour[inside], events["bytes"][inside].astype(np.int64)
    words = pairs.index.keys[slots][which]
    host = owner[slots][which]
    port = ((words[:, 4] & np.uint64(0xFF)) << np.uint64(16)) | (words[:, 4] >> np.uint64(8))
    out: dict[HostKey, tuple] = {}
    peer_top = _top(host, hour, words[:, peer[0]], words[:, peer[1]], size, k)
    host_words = hosts.keys
    for (h, hr), entries in peer_top.items():
        out[(host_bytes(host_words[h]), hr)] = (tuple(entries), ())
    if received:
        return out
    port_top = _top(host, hour, np.zeros_like(port), port, size, k)
    for (h, hr), entries in port_top.items():
        key = (host_bytes(host_words[h]), hr)
        peers = out.get(key, ((), ()))[0]
        out[key] = (peers, tuple((lo, value) for _, lo, value in entries))
    return out


def _top(
    host: np.ndarray, hour: np.ndarray, hi: np.ndarray, lo: np.ndarray, size: np.ndarray, k: int
) -> dict[tuple[int, int], list[tuple[int, int, int]]]:
    """Per (host, hour), the ``k`` keys (hi, lo) with the largest ``size``, largest first."""
    order = np.lexsort((lo, hi, hour, host))
    host, hour, hi, lo, size = host[order], hour[order], hi[order], lo[order], size[order]
    new = np.r_[
        True,
        (host[1:] != host[:-1])
        | (hour[1:] != hour[:-1])
        | (hi[1:] != hi[:-1])
        | (lo[1:] != lo[:-1]),
    ]
    starts = np.flatnonzero(new)
    biggest = np.maximum.reduceat(size, starts) if len(starts) else size[:0]
    host, hour, hi, lo = host[starts], hour[starts], hi[starts], lo[starts]
    ranked = np.lexsort((lo, hi, -biggest, hour, host))
    out: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for i in ranked.tolist():
        entries = out.setdefault((int(host[i]), int(hour[i])), [])
        if len(entries) < k:
            entries.append((int(hi[i]), int(lo[i]), int(biggest[i])))
    return out
