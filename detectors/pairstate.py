"""Every tracked pair of one partition, in columns: the beacon and DNS scorers' state.

A pair is (sip, dip, dport, proto). Its row (slot, from :class:`KeyIndex`) holds
first and last flow start and the source-port range; its flows live in one
pooled event store, 16 bytes a flow (start relative to :attr:`PairState.base_ms`,
duration, bytes, packets), grouped by slot and sorted by time, so a batch is a
few vectorised passes whatever the number of pairs, and a pair's history is a
slice. New flows are appended to a pending list and merged into the store when
someone reads it (:meth:`PairState.compact`): one linear pass over the store,
amortised over every batch since the last read.

Per pair at most ``max_events`` flows are kept, and none older than
``window_ms`` before the pair's newest; flows dropped by the cap still count in
the pair's hourly totals (:attr:`PairState.overflow`). At most ``max_pairs``
pairs are kept: :meth:`PairState.shed` evicts the stalest on every batch.

:meth:`PairState.history` gives one pair as the :class:`silkwatch.detectors.pairs.PairHistory`
the scorers read; the scorers never see the columns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from silkwatch.detectors import _keyindex
from silkwatch.detectors.growth import grown, held_bytes
from silkwatch.detectors.keyindex import KeyIndex
from silkwatch.detectors.links import SourceLinks
from silkwatch.detectors.pairs import HOUR_MS, PairConfig, PairHistory, PairKey, handshake
from silkwatch.detectors.schema import FlowBatch, ip_words

#: one retained flow: start (ms after the state's base), duration, bytes, packets
EVENT_DTYPE = np.dtype([("t", "<u4"), ("elapsed", "<u4"), ("bytes", "<u4"), ("packets", "<u4")])

_U32_MAX = 2**32 - 1
#: the base moves forward once the newest start is this far past it (fits 32 bits)
_REBASE_AFTER_MS = 2**32 - 8 * 86_400_000


@dataclass
class PairCounters:
    """What the pair state dropped, for the metrics (never silently)."""

    shed_pairs: int = 0  # evicted because the table was full
    idle_pairs: int = 0  # forgotten after a window without flows
    stale_flows: int = 0  # older than any window could hold


def pair_key_words(batch: FlowBatch) -> np.ndarray:
    """The (n, 5) uint64 key rows of a batch: sip, dip (two words each), dport << 8 | proto."""
    sip_hi, sip_lo = ip_words(batch["sip"])
    dip_hi, dip_lo = ip_words(batch["dip"])
    last = (batch["dport"].astype(np.uint64) << np.uint64(8)) | batch["proto"].astype(np.uint64)
    return np.stack([sip_hi, sip_lo, dip_hi, dip_lo, last], axis=1)


def key_of(words: np.ndarray) -> PairKey:
    """A key row back as the scorers' :data:`PairKey` (addresses as 16 raw bytes)."""
    raw = words[:4].astype(">u8").tobytes()
    return raw[:16], raw[16:], int(words[4] >> 8), int(words[4] & 0xFF)


def words_of(key: PairKey) -> np.ndarray:
    """A :data:`PairKey` as its key row (the inverse of :func:`key_of`)."""
    addresses = np.frombuffer(key[0] + key[1], dtype=">u8").astype(np.uint64)
    return np.append(addresses, np.uint64(key[2] << 8 | key[3]))


#: the per-pair columns of :class:`PairState`: name → (dtype, value of a new slot)
PAIR_COLUMNS: dict[str, tuple[type, int | bool]] = {
    "first_ms": (np.int64, 2**62),
    "last_ms": (np.int64, -(2**62)),
    "sport_lo": (np.uint16, 65535),
    "sport_hi": (np.uint16, 0),
    "touched": (np.int64, 0),  # sequence number of the last batch
    "opened": (np.int32, 0),  # flows that opened a TCP connection (SYN)
    "answered": (np.int32, 0),  # flows that answered one (SYN+ACK)
    "candidate": (np.bool_, False),  # some prefilter kept the pair when last scored
    # the pair's source is a host of this partition (False: it came as a received
    # copy, kept for its destination's sake, and is scored in its source's partition)
    "own": (np.bool_, True),
}


class PairState:
    """The pairs of one partition.

    :param config: window, per-pair event cap and pair cap
    :param seed: the key index's hash seed. Default - random

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> state = PairState(PairConfig(max_events=2))
    >>> slots = state.update(make_batch(sip=["10.0.0.1"] * 3, dip=["1.2.3.4"] * 3, dport=[443] * 3,
    ...                         proto=[6] * 3, stime_ms=[0, 60_000, 3_600_000],
    ...                         bytes=[300, 200, 100], packets=[3, 2, 1]))
    >>> len(state), state.compact()
    (1, 1)
    >>> h = state.history(0)
    >>> h.events[:, :3].tolist(), h.hour_totals.tolist()  # the oldest flow is over the cap
    ([[60000, 0, 200], [3600000, 0, 100]], [[2, 500, 5, 0], [1, 100, 1, 0]])
    """

    first_ms: np.ndarray
    last_ms: np.ndarray
    sport_lo: np.ndarray
    sport_hi: np.ndarray
    touched: np.ndarray
    opened: np.ndarray
    answered: np.ndarray
    candidate: np.ndarray
    own: np.ndarray

    def __init__(self, config: PairConfig | None = None, *, seed: int | None = None) -> None:
        self.config = config or PairConfig()
        self.index = KeyIndex(5, seed=seed)
        self.base_ms: int | None = None
        for name, (dtype, _) in PAIR_COLUMNS.items():
            setattr(self, name, np.zeros(0, dtype=dtype))
        self.events = np.zeros(0, dtype=EVENT_DTYPE)  # grouped by slot, by time within
        self.counts = np.zeros(0, dtype=np.int64)  # events per slot in self.events
        #: slot → hour_ms → [flows, bytes, packets, duration_ms] of flows over the cap
        self.overflow: dict[int, dict[int, np.ndarray]] = {}
        self.counters = PairCounters()
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_rows = 0
        self._room: dict[str, np.ndarray] = {}  # the columns' buffers (detectors/growth.py)
        self.links = SourceLinks()  # who contacts whom, for prevalence
        #: (ports by slot, of this index, at this generation)
        self._dports = np.zeros(0, dtype=np.uint16), self.index, 0

    def __len__(self) -> int:
        return len(self.index)

    @property
    def dports(self) -> np.ndarray:
        """Each pair's destination port (uint16; the key's last word holds port << 8 | proto).

        Read at every hour close; worked out once per slot, and again for every slot
        only after the slots were renumbered (:attr:`KeyIndex.generation`).
        """
        ports, index, generation = self._dports
        if index is not self.index or generation != index.generation:
            ports = np.zeros(0, dtype=np.uint16)  # a new buffer: views handed out stay as they were
            self._room.pop("dports", None)
        keys, have = self.index.keys, len(ports)
        if have < len(keys):
            ports = grown(ports, len(keys), 0, self._room, "dports")
            ports[have:] = keys[have:, 4] >> np.uint64(8)
            self._dports = ports, self.index, self.index.generation
        return ports[: len(keys)]

    @property
    def pending_rows(self) -> int:
        """Flows applied but not merged into the event store yet."""
        return self._pending_rows

    def update(self, batch: FlowBatch, *, seq: int = 0, own: bool = True) -> np.ndarray:
        """Apply one batch; returns each flow's slot (-1 for flows too old to keep).

        :param seq: a number that grows with every batch, stamped on the pairs it
            touches (:attr:`touched`), so a scorer can pick what changed since it
            last looked. Default - 0
        :param own: the flows' sources are this partition's hosts (False: received
            copies, see :attr:`own`). Default - True
        """
        if len(batch) == 0:
            return np.zeros(0, dtype=np.int32)
        stime = batch["stime_ms"].astype(np.int64)
        self._rebase(int(stime.min()), int(stime.max()))
        keep = stime >= self.base_ms
        if not keep.all():
            self.counters.stale_flows += int(np.count_nonzero(~keep))
            slots = np.full(len(batch), -1, dtype=np.int32)
            slots[keep] = self.update(batch[keep], seq=seq, own=own)
            return slots
        slots = self.index.slots(pair_key_words(batch))
        self._grow(len(self.index))
        np.minimum.at(self.first_ms, slots, stime)
        np.maximum.at(self.last_ms, slots, stime)
        sport = batch["sport"]
        np.minimum.at(self.sport_lo, slots, sport)
        np.maximum.at(self.sport_hi, slots, sport)
        self.touched[slots] = seq
        self.own[slots] = own
        opened, answered = handshake(batch)
        np.add.at(self.opened, slots[opened], 1)
        np.add.at(self.answered, slots[answered], 1)
        events = np.empty(len(batch), dtype=EVENT_DTYPE)
        events["t"] = stime - self.base_ms
        events["elapsed"] = np.minimum(batch["elapsed_ms"], _U32_MAX)
        events["bytes"] = np.minimum(batch["bytes"], _U32_MAX)
        events["packets"] = np.minimum(batch["packets"], _U32_MAX)
        self._pending.append((slots, events))
        self._pending_rows += len(batch)
        return slots

    def compact(self) -> int:
        """Fold pending flows into the event store, trim windows and caps; returns slots.

        One compiled pass (:func:`silkwatch.detectors._keyindex.merge_events`) merges each
        slot's old run with its new flows, in (t, elapsed, bytes, packets) order
        so the order never depends on arrival, into a store allocated for the
        worst case and shrunk in place.
        """
        if not self._pending:
            return len(self)
        slots = np.concatenate([s for s, _ in self._pending])
        new = np.concatenate([e for _, e in self._pending])
        self._pending, self._pending_rows = [], 0
        n, room = len(self), len(self.events) + len(new)
        counts, newest = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
        events, over = np.empty(room, dtype=EVENT_DTYPE), np.empty(room, dtype=EVENT_DTYPE)
        over_slots = np.empty(room, dtype=np.int32)
        store = (self.events, self.counts, slots, new)
        limits = (self.config.window_ms, self.config.max_events)
        kept, capped = _keyindex.merge_events(
            *store, *limits, counts, newest, events, over_slots, over
        )
        events.resize(kept, refcheck=False)  # the unused tail goes back, nothing is copied
        if capped:
            self._add_overflow(over_slots[:capped], over[:capped])
        self._forget_overflow(newest)
        self.events, self.counts = events, counts
        return n

    def history(self, slot: int, start: int | None = None) -> PairHistory:
        """One pair's merged history as the scorers read it (times absolute again).

        :param start: where its events start (:meth:`segment_starts`), when known
        """
        if start is None:
            start = int(self.counts[:slot].sum())
        return self._history(slot, self._events_of(slot, start))

    def histories(self, slots: np.ndarray) -> dict[PairKey, PairHistory]:
        """Several pairs' histories by key (merged first), for the scorers."""
        return dict(self.view(slots).items())

    def view(self, slots: np.ndarray) -> PairView:
        """The pairs of ``slots`` for the scorers, every other pair reachable by key."""
        self.compact()
        return PairView(self, np.asarray(slots, dtype=np.int64), self.segment_starts())

    def _events_of(self, slot: int, start: int) -> np.ndarray:
        """A slot's events as ``[stime_ms, elapsed_ms, bytes, packets]`` int64 rows."""
        segment = self.events[start : start + int(self.counts[slot])]
        events = np.empty((len(segment), 4), dtype=np.int64)
        events[:, 0] = segment["t"].astype(np.int64) + self.base_ms
        events[:, 1] = segment["elapsed"]
        events[:, 2] = segment["bytes"]
        events[:, 3] = segment["packets"]
        return events

    def rows_of(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where the events of ``slots`` are in :attr:`events` (after :meth:`compact`).

        Returns (rows, owner): the event rows, slot by slot in time order, and for
        each row the index in ``slots`` it belongs to.
        """
        counts = self.counts[slots]
        return _runs(self.segment_starts()[slots], counts), np.repeat(np.arange(len(slots)), counts)

    def segment_starts(self) -> np.ndarray:
        """Where each slot's events start in :attr:`events` (after :meth:`compact`)."""
        return np.cumsum(self.counts) - self.counts

    def expire(self, watermark_ms: int) -> int:
        """Forget pairs without a flow in the window before ``watermark_ms``; returns how many."""
        idle = self.last_ms < watermark_ms - self.config.window_ms
        count = int(np.count_nonzero(idle))
        if count:
            self._keep(~idle)
            self.counters.idle_pairs += count
        return count

    def shed(self, *, slack: float = 0.05) -> int:
        """Evict the stalest pairs when more than ``max_pairs`` are held; returns how many.

        Evicts down to ``(1 - slack) * max_pairs`` so a full table is compacted
        once per many batches, not on every one. Stalest first: oldest newest
        flow, then fewest retained flows, then slot (arrival order).
        """
        limit = self.config.max_pairs
        if len(self) <= limit:
            return 0
        self.compact()
        evict = len(self) - int(limit * (1.0 - slack))
        # the `evict` stalest without sorting them all: those older than the newest
        # flow of the evict-th stalest, then the fewest flows among its ties
        last = self.last_ms
        edge = np.partition(last, evict - 1)[evict - 1]
        keep = last >= edge
        tied = np.flatnonzero(last == edge)
        fewest = np.argsort(self.counts[tied], kind="stable")  # ties: by slot
        keep[tied[fewest[: evict - int(np.count_nonzero(~keep))]]] = False
        self._keep(keep)
        self.counters.shed_pairs += evict
        return evict

    @property
    def nbytes(self) -> int:
        """Memory held: index, columns, event store (pending flows included)."""
        columns = sum(
            held_bytes(getattr(self, name), self._room, name) for name in [*PAIR_COLUMNS, "counts"]
        ) + held_bytes(self._dports[0], self._room, "dports")
        pending = sum(s.nbytes + e.nbytes for s, e in self._pending)
        return self.index.nbytes + columns + self.events.nbytes + pending + self.links.nbytes

    def _history(self, slot: int, events: np.ndarray) -> PairHistory:
        hours = events[:, 0] - events[:, 0] % HOUR_MS  # sorted, as the events are
        firsts = np.flatnonzero(hours[1:] != hours[:-1]) + 1
        firsts = np.concatenate([[0], firsts]) if len(hours) else firsts
        hour_ms = hours[firsts]
        totals = np.empty((len(firsts), 4), dtype=np.int64)  # flows, bytes, packets, duration
        if len(firsts):
            totals[:, 0] = np.diff(firsts, append=len(events))
            totals[:, 1:] = np.add.reduceat(events[:, [2, 3, 1]], firsts, axis=0)
        extra = self.overflow.get(slot)
        if extra:
            merged = dict(zip(hour_ms.tolist(), totals, strict=True))
            for hour, row in extra.items():
                merged[hour] = merged.get(hour, 0) + row
            hour_ms = np.array(sorted(merged), dtype=np.int64)
            totals = np.array([merged[h] for h in hour_ms.tolist()], dtype=np.int64)
        return PairHistory(
            hour_ms,
            totals,
            events,
            int(self.sport_lo[slot]),
            int(self.sport_hi[slot]),
            int(self.opened[slot]),
            int(self.answered[slot]),
        )

    def _forget_overflow(self, newest: np.ndarray) -> None:
        """Drop overflow hours that ended before the window of their pair's newest flow."""
        for slot, hours in list(self.overflow.items()):
            horizon_ms = int(newest[slot]) + self.base_ms - self.config.window_ms
            kept_hours = {hour: row for hour, row in hours.items() if hour > horizon_ms - HOUR_MS}
            if kept_hours:
                self.overflow[slot] = kept_hours
            else:
                del self.overflow[slot]

    def _add_overflow(self, slots: np.ndarray, events: np.ndarray) -> None:
        """Count flows over the per-pair cap in their pair's hourly totals."""
        start = events["t"].astype(np.int64) + self.base_ms
        groups, inverse = np.unique(
            np.stack([slots.astype(np.int64), start - start % HOUR_MS], axis=1),
            axis=0,
            return_inverse=True,
        )
        rows = np.zeros((len(groups), 4), dtype=np.int64)
        columns = [
            np.ones(len(events), np.int64),
            events["bytes"],
            events["packets"],
            events["elapsed"],
        ]
        for i, column in enumerate(columns):
            np.add.at(rows[:, i], inverse.ravel(), column.astype(np.int64))
        for (slot, hour), row in zip(groups.tolist(), rows, strict=True):
            hours = self.overflow.setdefault(slot, {})
            hours[hour] = hours.get(hour, 0) + row

    def _keep(self, keep: np.ndarray) -> None:
        """Keep only the slots where ``keep`` holds, in every column and the event store."""
        self.compact()
        remap = self.index.keep(keep)
        self.links.keep(keep)
        self.events = self.events[np.repeat(keep, self.counts)]
        self.counts = self.counts[keep]
        for name in PAIR_COLUMNS:
            setattr(self, name, getattr(self, name)[: len(keep)][keep])
        self.overflow = {int(remap[s]): hours for s, hours in self.overflow.items() if keep[s]}

    def _grow(self, n: int) -> None:
        """Columns for slots up to ``n`` (new slots start empty)."""
        for name, (_, fill) in [*PAIR_COLUMNS.items(), ("counts", (np.int64, 0))]:
            setattr(self, name, grown(getattr(self, name), n, fill, self._room, name))

    def _rebase(self, oldest_ms: int, newest_ms: int) -> None:
        """Choose the base on the first flows; move it forward before starts overflow 32 bits."""
        if self.base_ms is None:
            self.base_ms = oldest_ms - self.config.window_ms - HOUR_MS
            return
        if newest_ms - self.base_ms < _REBASE_AFTER_MS:
            return
        self.compact()
        new_base = newest_ms - self.config.window_ms - 2 * HOUR_MS
        shift = new_base - self.base_ms
        segment = np.repeat(np.arange(len(self.counts)), self.counts)
        keep = self.events["t"].astype(np.int64) >= shift
        self.events = self.events[keep]
        self.events["t"] -= np.uint32(shift)
        self.counts = np.bincount(segment[keep], minlength=len(self.counts)).astype(np.int64)
        self.base_ms = new_base

    def empty(self) -> PairState:
        """No pairs yet, with the same window and caps."""
        return PairState(self.config)

    def merge(self, other: PairState) -> None:
        """Fold another state's pairs into this one, as if its flows had come after ours.

        Per pair the columns combine (first and last start, source-port range,
        handshakes; ``own`` as the later flows left it), the other's flows (stored and
        pending) join the pending ones here and its overflow hours add up. The window
        and the cap apply at the next :meth:`compact`, to both sides' flows together,
        as in one state fed both inputs. (A side compacted before, like a state read
        between batches, may have counted a flow of the window's first hour as
        overflow that one compaction of everything would have dropped.)

        Examples
        --------
        >>> from silkwatch.detectors.schema import make_batch
        >>> flows = make_batch(sip=["10.0.0.1"] * 3, dip=["1.2.3.4"] * 3, dport=[443] * 3,
        ...                    stime_ms=[0, 60_000, 3_600_000], bytes=[300, 200, 100])
        >>> whole, first = PairState(PairConfig(max_events=2)), PairState(PairConfig(max_events=2))
        >>> _ = whole.update(flows), first.update(flows[:2])
        >>> second = first.empty()
        >>> _ = second.update(flows[2:])
        >>> first.merge(second)
        >>> first.result() == whole.result()
        True
        >>> first.compact(), first.history(0).hour_totals[:, :2].tolist()  # 300 B over the cap
        (1, [[2, 500], [1, 100]])
        """
        n = len(other)
        if n == 0:
            return
        slots = self.index.slots(other.index.keys)
        self._grow(len(self.index))
        self.first_ms[slots] = np.minimum(self.first_ms[slots], other.first_ms[:n])
        self.last_ms[slots] = np.maximum(self.last_ms[slots], other.last_ms[:n])
        self.sport_lo[slots] = np.minimum(self.sport_lo[slots], other.sport_lo[:n])
        self.sport_hi[slots] = np.maximum(self.sport_hi[slots], other.sport_hi[:n])
        self.touched[slots] = np.maximum(self.touched[slots], other.touched[:n])
        self.opened[slots] += other.opened[:n]
        self.answered[slots] += other.answered[:n]
        self.candidate[slots] |= other.candidate[:n]
        self.own[slots] = other.own[:n]
        for slot, hours in other.overflow.items():
            mine = self.overflow.setdefault(int(slots[slot]), {})
            for hour, row in hours.items():
                mine[hour] = mine.get(hour, 0) + row
        for counter in dataclasses.fields(PairCounters):
            held = getattr(self.counters, counter.name) + getattr(other.counters, counter.name)
            setattr(self.counters, counter.name, held)
        owners = [np.repeat(np.arange(n), other.counts[:n]), *(s for s, _ in other._pending)]
        events = np.concatenate([other.events, *(e for _, e in other._pending)])
        if len(events) == 0:
            return
        start = events["t"].astype(np.int64) + other.base_ms
        if self.base_ms is None:
            self.base_ms = other.base_ms  # as if this state had seen the other's first batch
        self._rebase(int(start.min()), int(start.max()))
        fresh = start >= self.base_ms
        self.counters.stale_flows += int(np.count_nonzero(~fresh))
        events = events[fresh]
        events["t"] = start[fresh] - self.base_ms
        self._pending.append((slots[np.concatenate(owners)][fresh], events))
        self._pending_rows += len(events)

    def result(self) -> tuple[tuple, ...]:
        """Every pair in key order: its key words, first and last start, source-port range,
        handshakes, retained flows (``[stime_ms, elapsed_ms, bytes, packets]`` int64 rows
        as bytes) and overflow hours.

        Read from a compacted copy: compacting this state between batches could move
        a flow of the window's first hour from dropped to overflow (a cap applied
        before the window had moved past it), and reading must change nothing.
        """
        copy = self.empty()
        copy.merge(self)
        copy.compact()
        n = len(copy)
        keys = copy.index.keys
        order = np.lexsort(keys.T[::-1])
        starts = copy.segment_starts()
        columns = ("first_ms", "last_ms", "sport_lo", "sport_hi", "opened", "answered")
        values = [getattr(copy, name)[:n][order].tolist() for name in columns]
        rows = zip(order.tolist(), keys[order].tolist(), *values, strict=True)
        return tuple(
            (
                tuple(key),
                *numbers,
                copy._events_of(slot, int(starts[slot])).tobytes(),
                copy._overflow_rows(slot),
            )
            for slot, key, *numbers in rows
        )

    def _overflow_rows(self, slot: int) -> tuple[tuple[int, ...], ...]:
        """A slot's overflow hours as ``(hour, flows, bytes, packets, duration_ms)``, in order."""
        return tuple(
            sorted((hour, *row.tolist()) for hour, row in self.overflow.get(slot, {}).items())
        )


class PairView(Mapping[PairKey, PairHistory]):
    """The pairs worth scoring, as a mapping; every other pair is still there by key.

    Iterating gives only the chosen pairs (those that changed and could alert);
    looking a key up finds any pair the state holds, so a scorer can consult
    the opposite direction of a conversation. Histories are built on first
    use and kept for the view's life (one scoring round).
    """

    def __init__(self, state: PairState, slots: np.ndarray, starts: np.ndarray) -> None:
        self._state = state
        self._slots = slots
        self._starts = starts
        self._built: dict[int, PairHistory] = {}

    def __iter__(self) -> Iterator[PairKey]:
        keys = self._state.index.keys
        return (key_of(keys[slot]) for slot in self._slots.tolist())

    def __len__(self) -> int:
        return len(self._slots)

    def __getitem__(self, key: PairKey) -> PairHistory:
        slot = int(self._state.index.find(words_of(key))[0])
        if slot < 0:
            raise KeyError(key)
        return self._at(slot)

    def items(self) -> Iterator[tuple[PairKey, PairHistory]]:  # type: ignore[override]
        """The chosen pairs and their histories (without a key lookup each)."""
        keys = self._state.index.keys
        return ((key_of(keys[slot]), self._at(slot)) for slot in self._slots.tolist())

    def _at(self, slot: int) -> PairHistory:
        built = self._built.get(slot)
        if built is None:
            built = self._built[slot] = self._state.history(slot, int(self._starts[slot]))
        return built


def _runs(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The indices of runs ``[start, start + length)``, one after another.

    Examples
    --------
    >>> _runs(np.array([5, 0]), np.array([2, 3])).tolist()
    [5, 6, 0, 1, 2]
    """
    return np.repeat(starts, lengths) + (
        np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    )
