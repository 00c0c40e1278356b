"""Per-pair history: the keyed aggregate the beacon and DNS scorers read.

One value per (sip, dip, dport, proto): hourly totals (flows, bytes, packets,
duration) over the last ``window_ms`` of event time, exact, plus a bounded
sample of the most recent flows (start, elapsed, bytes, packets) for timing
analysis. Both parts are trimmed relative to the newest event of the pair.
:class:`PairHistory` is what the scorers read; the stream keeps every pair of
a partition in columns (:mod:`silkwatch.detectors.pairstate`) and builds a history only
for the pairs it scores. :func:`pair_deltas` builds them from one batch (the
reference the columnar state is tested against, and the doctests' input).
:func:`merge_callbacks` joins a history's sampled flows into callbacks, the
unit the beacon and upload scorers time.

The source port is left out of the key on purpose: a beacon opens a new
connection (new source port) per callback, and those are the repeats we want
to see together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from silkwatch.detectors.schema import HOUR_MS, FlowBatch, address_text, ip_words

#: (sip 16 bytes, dip 16 bytes, dport, proto)
PairKey = tuple[bytes, bytes, int, int]


@dataclass(frozen=True)
class PairConfig:
    """How much history each pair keeps, and how many pairs at most.

    :param window_ms: event-time history kept per pair. Default - 24 h
    :param max_events: flows kept in the timing sample per pair. Default - 512
    :param max_pairs: pairs kept in total before the stream sheds. Default - 500,000
    :param max_host_hours: (host, hour) rows kept per direction before the oldest
        hours are shed. Default - 1,000,000
    """

    window_ms: int = 24 * HOUR_MS
    max_events: int = 512
    max_pairs: int = 500_000
    max_host_hours: int = 1_000_000


@dataclass(frozen=True, eq=False)
class PairHistory:
    """What one pair did over the window.

    :param hour_ms: start of each hour with traffic, ascending (int64)
    :param hour_totals: per hour ``[flows, bytes, packets, duration_ms]`` (int64, shape (h, 4))
    :param events: most recent flows, ``[stime_ms, elapsed_ms, bytes, packets]``
        sorted ascending (int64, shape (n, 4)), at most ``max_events`` rows
    :param sport_lo: lowest source port seen (over all time)
    :param sport_hi: highest source port seen; a pair whose only source port is
        below its destination port is the reply side of a connection
        (server:443 → client:51234), see :meth:`is_reply`
    :param opened: TCP flows whose first packet was a SYN without ACK (this side
        opened the connection); from SiLK's initial flags, 0 where records lack them
    :param answered: TCP flows whose first packet was a SYN+ACK (this side answered)
    """

    hour_ms: np.ndarray
    hour_totals: np.ndarray
    events: np.ndarray
    sport_lo: int
    sport_hi: int
    opened: int = 0
    answered: int = 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PairHistory):
            return NotImplemented
        return (
            np.array_equal(self.hour_ms, other.hour_ms)
            and np.array_equal(self.hour_totals, other.hour_totals)
            and np.array_equal(self.events, other.events)
            and (self.sport_lo, self.sport_hi, self.opened, self.answered)
            == (other.sport_lo, other.sport_hi, other.opened, other.answered)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-by-content arrays

    def is_reply(self, dport: int) -> bool:
        """True when this pair looks like the server's answers to a client.

        Bidirectional sources (Zeek, Argus) and unidirectional NetFlow both
        yield a server → client flow whose destination port is the client's
        ephemeral port and whose source port is one fixed service port below
        it; scoring those too would report every session twice.
        """
        return self.sport_lo == self.sport_hi < dport

    def window(self, since_ms: int, now_ms: int) -> np.ndarray:
        """The sampled events starting in ``(since_ms, now_ms]`` (no copy when all do)."""
        events = self.events
        if events[0, 0] > since_ms and events[-1, 0] <= now_ms:
            return events
        return events[(events[:, 0] > since_ms) & (events[:, 0] <= now_ms)]

    @property
    def last_ms(self) -> int:
        """Start of the newest flow seen (event time)."""
        return int(self.events[-1, 0])

    def totals(self, since_ms: int, until_ms: int | None = None) -> np.ndarray:
        """``[flows, bytes, packets, duration_ms]`` over the hours that end after ``since_ms``.

        :param until_ms: and start at or before this (the scored instant), so flows
            the state already holds from after it do not count. Default - no bound
        """
        keep = self.hour_ms > since_ms - HOUR_MS
        if until_ms is not None:
            keep &= self.hour_ms <= until_ms
        return self.hour_totals[keep].sum(axis=0)


def pair_deltas(batch: FlowBatch, config: PairConfig | None = None) -> dict[PairKey, PairHistory]:
    """Group one batch by (sip, dip, dport, proto) into pair histories.

    Vectorised: one ``np.lexsort`` of the batch; Python work is one slice per pair.

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> b = make_batch(sip=["10.0.0.1"] * 3, dip=["1.2.3.4"] * 3, dport=[443] * 3,
    ...                proto=[6] * 3, stime_ms=[60_000, 0, 3_600_000],
    ...                bytes=[300, 200, 100], packets=[3, 2, 1], elapsed_ms=[10, 10, 10])
    >>> [(pair_label(k), v.hour_totals.tolist()) for k, v in pair_deltas(b).items()]
    [('10.0.0.1 -> 1.2.3.4:443/6', [[2, 500, 5, 20], [1, 100, 1, 10]])]
    """
    config = config or PairConfig()
    if len(batch) == 0:
        return {}
    sip_hi, sip_lo = ip_words(batch["sip"])
    dip_hi, dip_lo = ip_words(batch["dip"])
    stime = batch["stime_ms"].astype(np.int64)
    events = np.stack(
        [
            stime,
            batch["elapsed_ms"].astype(np.int64),
            batch["bytes"].astype(np.int64),
            batch["packets"].astype(np.int64),
        ],
        axis=1,
    )
    order = np.lexsort(
        (*events[:, :0:-1].T, stime, batch["proto"], batch["dport"], dip_lo, dip_hi, sip_lo, sip_hi)
    )
    keys = np.stack(
        [sip_hi, sip_lo, dip_hi, dip_lo, batch["dport"].astype(np.uint64), batch["proto"]], axis=1
    )[order]
    events = events[order]
    new_pair = np.ones(len(keys), dtype=bool)
    new_pair[1:] = np.any(keys[1:] != keys[:-1], axis=1)
    starts = np.flatnonzero(new_pair)
    ends = np.append(starts[1:], len(keys))

    # hourly totals for every (pair, hour) at once
    hour = events[:, 0] - events[:, 0] % HOUR_MS
    new_hour = new_pair.copy()
    new_hour[1:] |= hour[1:] != hour[:-1]
    hour_starts = np.flatnonzero(new_hour)
    sums = np.add.reduceat(
        np.stack([np.ones(len(events), np.int64), events[:, 2], events[:, 3], events[:, 1]], 1),
        hour_starts,
        axis=0,
    )
    hour_of_pair = np.searchsorted(hour_starts, starts)
    hour_of_pair = np.append(hour_of_pair, len(hour_starts))

    sport = batch["sport"][order]
    sport_lo = np.minimum.reduceat(sport, starts).tolist()
    sport_hi = np.maximum.reduceat(sport, starts).tolist()
    opened, answered = (
        np.add.reduceat(column[order].astype(np.int64), starts).tolist()
        for column in handshake(batch)
    )
    # only pairs longer than the window or the sample cap need trimming
    too_long = (events[ends - 1, 0] - events[starts, 0] >= config.window_ms) | (
        ends - starts > config.max_events
    )
    sip_raw = batch["sip"][order][starts].tolist()
    dip_raw = batch["dip"][order][starts].tolist()
    dport = keys[starts, 4].tolist()
    proto = keys[starts, 5].tolist()
    hour_of_pair = hour_of_pair.tolist()
    hour_start_ms = hour[hour_starts]
    out: dict[PairKey, PairHistory] = {}
    for p, (lo, hi) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        h0, h1 = hour_of_pair[p], hour_of_pair[p + 1]
        history = PairHistory(
            hour_start_ms[h0:h1],
            sums[h0:h1],
            events[lo:hi],
            sport_lo[p],
            sport_hi[p],
            opened[p],
            answered[p],
        )
        out[(sip_raw[p], dip_raw[p], dport[p], proto[p])] = (
            _trim(history, config) if too_long[p] else history
        )
    return out


#: TCP flag bits (RFC 9293)
_SYN, _ACK = 0x02, 0x10


def handshake(batch: FlowBatch) -> tuple[np.ndarray, np.ndarray]:
    """Per flow: did its first packet open (SYN, no ACK) or answer (SYN+ACK) a TCP connection?

    From SiLK's initial flags; records without them (not expanded) say neither.

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> b = make_batch(proto=[6, 6, 6, 17], init_flags=[0x02, 0x12, 0x18, 0x02])
    >>> [column.tolist() for column in handshake(b)]
    [[True, False, False, False], [False, True, False, False]]
    """
    tcp = batch["proto"] == 6
    first = batch["init_flags"]
    syn = tcp & (first & _SYN != 0)
    return syn & (first & _ACK == 0), syn & (first & _ACK != 0)


def _trim(history: PairHistory, config: PairConfig) -> PairHistory:
    """Drop what lies outside the window from the pair's newest event; cap the sample."""
    events = history.events
    horizon_ms = int(events[-1, 0]) - config.window_ms
    if (
        events[0, 0] > horizon_ms
        and len(events) <= config.max_events
        and history.hour_ms[0] > horizon_ms - HOUR_MS
    ):
        return history
    events = history.events[history.events[:, 0] > horizon_ms][-config.max_events :]
    keep_hours = history.hour_ms > horizon_ms - HOUR_MS
    return PairHistory(
        history.hour_ms[keep_hours],
        history.hour_totals[keep_hours],
        events,
        history.sport_lo,
        history.sport_hi,
        history.opened,
        history.answered,
    )


@dataclass(frozen=True)
class Callbacks:
    """A pair's flows merged into callbacks (bursts and back-to-back records joined).

    All arrays have one entry per callback, in time order.
    """

    start_ms: np.ndarray
    end_ms: np.ndarray
    bytes: np.ndarray
    packets: np.ndarray


def merge_callbacks(events: np.ndarray, gap_ms: int) -> Callbacks:
    """Join flows that start within ``gap_ms`` of the end of everything before them.

    Examples
    --------
    >>> ev = np.array([[0, 100, 10, 1], [500, 0, 5, 1], [5_000, 10, 7, 2]])
    >>> c = merge_callbacks(ev, gap_ms=1_000)
    >>> c.start_ms.tolist(), c.end_ms.tolist(), c.bytes.tolist(), c.packets.tolist()
    ([0, 5000], [500, 5010], [15, 7], [2, 2])
    """
    start = events[:, 0]
    running_end = np.maximum.accumulate(start + events[:, 1])
    first = np.ones(len(start), dtype=bool)
    first[1:] = start[1:] > running_end[:-1] + gap_ms
    heads = np.flatnonzero(first)
    tails = np.append(heads[1:], len(start)) - 1
    return Callbacks(
        start[heads],
        running_end[tails],
        np.add.reduceat(events[:, 2], heads),
        np.add.reduceat(events[:, 3], heads),
    )


def pair_label(key: PairKey) -> str:
    """``sip -> dip:dport/proto`` for logs and doctests.

    Examples
    --------
    >>> from silkwatch.detectors.schema import parse_ip
    >>> pair_label((parse_ip("10.0.0.1")[0], parse_ip("192.0.2.1")[0], 443, 6))
    '10.0.0.1 -> 192.0.2.1:443/6'
    """
    return f"{address_text(key[0])} -> {address_text(key[1])}:{key[2]}/{key[3]}"
