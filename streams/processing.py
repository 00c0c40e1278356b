"""What the stream does with each flow batch — written once, for Faust and the embedded runner.

A :class:`HourlyProcessor` applies flow batches of one Kafka partition to a
set of key → value stores and closes event-time hours; :class:`BinProcessor` here
and :class:`silkwatch.streams.detection.DetectionProcessor` say what applying and closing
mean. The stores are plain ``MutableMapping`` objects: Faust tables in the
worker, dicts in the embedded runner, so both run exactly this code.

Exactly once, without Kafka transactions: every stored value is
:class:`Stamped` with the source offset of the last message applied to it, and
an update whose offset is not newer is skipped. Flows are partitioned by source
address and every store key starts with the partition, so one key is only ever
written from one partition, in offset order. A worker killed mid-message and
restarted replays from its last committed offset; each key then either already
holds the message (and skips it) or does not (and applies it) — per-key
changelog writes are atomic, so no count is lost or doubled.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from silkwatch.detectors.schema import HOUR_MS, FlowBatch
from silkwatch.detectors.timebins import bin_volumes_by

#: the breakdowns kept for every hourly bin; "total" is the whole network
BIN_DIMENSIONS: dict[str, str | None] = {
    "total": None,
    "sensor": "sensor",
    "flowtype": "flowtype",
    "proto": "proto",
}


@dataclass(frozen=True)
class StreamConfig:
    """How the stream bins, waits for late flows and forgets.

    :param load_scheme: how a flow spanning bins is shared (rwcount's names).
        Default - ``time-proportional``, rwcount's default
    :param allowed_lateness_ms: an hour closes when the partition's event-time
        watermark (newest flow start seen) passes the hour's end by this much.
        SiLK exporters emit a long flow when its active timeout (commonly 30 min)
        fires, so its start can be that much older than its neighbours'.
        Default - 30 min
    :param retention_ms: bins older than this, measured from the watermark,
        are dropped. Default - 48 h
    :param future_tolerance_ms: a flow starting more than this after the
        partition's event time (the later of its watermark and the batch's
        median start; on a live feed, at most the wall clock) does not move the
        watermark: it is counted and quarantined (:func:`observe`). One record
        stamped a day ahead must not make every real flow late. Default - 1 h
        (a sorted replay batch may span twice that)
    :param max_quarantined_flows: flows the detection side holds back at most
        per partition; older ones are dropped and counted. Received copies waiting
        for an hour close are held up to as many, then the oldest are applied at
        once. Default - 100,000
    """

    #: the width of a byte bin: one hour, and not a setting. The network hours, the volume
    #: scores and the detection's hour closes all count whole hours; a width given here
    #: was honoured by the bins and by nothing after them (issue 16)
    bin_ms: ClassVar[int] = HOUR_MS
    load_scheme: str = "time-proportional"
    allowed_lateness_ms: int = 30 * 60_000
    retention_ms: int = 48 * HOUR_MS
    future_tolerance_ms: int = HOUR_MS
    max_quarantined_flows: int = 100_000


@dataclass(frozen=True)
class Stamped:
    """A stored value with the source offset of the last message applied to it."""

    offset: int
    value: Any


class ClosedHour(NamedTuple):
    """One partition's bins of an hour whose event time has passed.

    ``closed_until_ms`` is how far the partition has closed with it (every hour of the
    partition starting before it is closed), which the network hours wait on.
    """

    partition: int
    hour_start_ms: int
    volumes: dict[tuple[str, int], tuple[float, float, float]]  # (dimension, value) → r, b, p
    closed_until_ms: int


@dataclass
class Progress:
    """Per-partition event-time progress: watermark and the last hour closed."""

    watermark_ms: int = -(2**62)
    closed_until_ms: int | None = None  # every hour starting before this is closed
    late_flows: int = 0
    future_flows: int = 0  # flows stamped too far ahead to move the watermark
    dropped_future_flows: int = 0  # of those, dropped when the quarantine was full


def observe(
    state: Progress, batch: FlowBatch, config: StreamConfig, *, wall_ms: int | None = None
) -> tuple[int, np.ndarray]:
    """Advance the watermark past a batch's believable flows.

    Returns the instant hours may close before, and which flows are believable.
    Time may move forward as far as the batch's flows reach in a chain without
    a gap of more than ``future_tolerance_ms``, starting from the later of the
    watermark and the batch's median start, plus that tolerance once more. A
    sorted replay, however long its batches, is believed whole, and so is a
    whole feed that jumps to a later day (its median moves); a few flows
    stamped far ahead of the rest are not. On a live feed (``wall_ms``) no flow
    may start more than the tolerance after the wall clock either. The others
    are counted in ``future_flows``; what to do with them is the caller's
    choice. Believable flows starting before an hour already closed are late.

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> state, day = Progress(), 86_400_000
    >>> until, ok = observe(state, make_batch(stime_ms=[0, 60_000, day]), StreamConfig())
    >>> ok.tolist(), state.watermark_ms, state.future_flows
    ([True, True, False], 60000, 1)
    >>> steps = [i * 1_800_000 for i in range(20)]  # every 30 min for 10 h: one chain
    >>> bool(observe(Progress(), make_batch(stime_ms=steps), StreamConfig())[1].all())
    True
    """
    stime = batch["stime_ms"]
    believable = believed(state, batch, config, wall_ms=wall_ms)
    if batch.size:
        trusted = stime[believable]
        if trusted.size:
            if state.closed_until_ms is not None:
                state.late_flows += int(np.count_nonzero(trusted < state.closed_until_ms))
            state.watermark_ms = max(state.watermark_ms, int(trusted.max()))
    horizon_ms = state.watermark_ms - config.allowed_lateness_ms
    return horizon_ms - horizon_ms % config.bin_ms, believable


def close_reach(closed_until_ms: int, config: StreamConfig) -> int:
    """With every hour before ``closed_until_ms`` closed, where event time must pass to
    close the next one (its end plus the allowed lateness, as :func:`observe` closes):
    a flow starting before this instant counts in that close, a later one only after.

    >>> close_reach(3_600_000, StreamConfig())  # the hour from 01:00 closes at 02:30
    9000000
    """
    return closed_until_ms + config.bin_ms + config.allowed_lateness_ms


def believed(
    state: Progress, batch: FlowBatch, config: StreamConfig, *, wall_ms: int | None = None
) -> np.ndarray:
    """Which of a batch's flows :func:`observe` believes (the others are counted), time unmoved.

    >>> from silkwatch.detectors.schema import make_batch
    >>> state = Progress()
    >>> believed(state, make_batch(stime_ms=[0, 60_000, 86_400_000]), StreamConfig()).tolist()
    [True, True, False]
    >>> state.watermark_ms < 0, state.future_flows
    (True, 1)
    """
    stime = batch["stime_ms"]
    if not batch.size:
        return np.ones(0, dtype=bool)
    ceiling = _ceiling(np.sort(stime), state.watermark_ms, config.future_tolerance_ms)
    if wall_ms is not None:
        ceiling = min(ceiling, wall_ms + config.future_tolerance_ms)
    believable = stime <= ceiling
    state.future_flows += len(batch) - int(np.count_nonzero(believable))
    return believable


def _ceiling(ordered: np.ndarray, watermark_ms: int, tolerance_ms: int) -> int:
    """The latest believable start: the gap-free chain up from the reference, plus the tolerance."""
    reference = max(watermark_ms, int(ordered[len(ordered) // 2]))
    above = ordered[np.searchsorted(ordered, reference, side="right") :]
    chain = np.concatenate([[reference], above])
    gaps = np.flatnonzero(np.diff(chain) > tolerance_ms)
    reached = int(chain[gaps[0]]) if len(gaps) else int(chain[-1])
    return reached + tolerance_ms


def final_horizon(state: Progress, config: StreamConfig) -> int:
    """The end of the watermark's hour: closing up to it closes everything seen."""
    return state.watermark_ms - state.watermark_ms % config.bin_ms + config.bin_ms


def apply_deltas(
    store: MutableMapping[Hashable, Stamped],
    partition: int,
    deltas: dict[Hashable, Any],
    combine: Callable[[Any, Any], Any],
    offset: int,
) -> int:
    """Fold per-key deltas into a store, skipping keys that already hold ``offset``.

    Returns how many keys were written.

    Examples
    --------
    >>> store = {}
    >>> apply_deltas(store, 0, {"a": 1}, lambda old, new: (old or 0) + new, offset=7)
    1
    >>> apply_deltas(store, 0, {"a": 1}, lambda old, new: (old or 0) + new, offset=7)  # replay
    0
    >>> store[(0, "a")].value
    1
    """
    written = 0
    for key, delta in deltas.items():
        full_key = (partition, *key) if isinstance(key, tuple) else (partition, key)
        old = store.get(full_key)
        if old is not None and old.offset >= offset:
            continue
        store[full_key] = Stamped(offset, combine(old.value if old else None, delta))
        written += 1
    return written


def bin_deltas(
    batch: FlowBatch, config: StreamConfig
) -> dict[int, dict[tuple[str, int], np.ndarray]]:
    """Hourly ``[records, bytes, packets]`` of a batch: bin start → (dimension, value) → row.

    One entry per hour, not per (dimension, value): each is one table write, and
    in the worker one changelog message.

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> b = make_batch(stime_ms=[0, 10], bytes=[100, 50], packets=[1, 1], proto=[6, 17])
    >>> {k: v.tolist() for k, v in bin_deltas(b, StreamConfig())[0].items()}
    {('total', 0): [2.0, 150.0, 2.0], ('sensor', 65535): [2.0, 150.0, 2.0],
     ('flowtype', 255): [2.0, 150.0, 2.0], ('proto', 6): [1.0, 100.0, 1.0],
     ('proto', 17): [1.0, 50.0, 1.0]}
    """
    out: dict[int, dict[tuple[str, int], np.ndarray]] = {}
    groupings = [None if column is None else batch[column] for column in BIN_DIMENSIONS.values()]
    every = bin_volumes_by(batch, bin_ms=config.bin_ms, scheme=config.load_scheme, groups=groupings)
    for dimension, volumes in zip(BIN_DIMENSIONS, every, strict=True):
        table = np.column_stack([volumes.records, volumes.bytes, volumes.packets])
        for value, start, row in zip(
            volumes.group.tolist(), volumes.bin_start_ms.tolist(), table, strict=True
        ):
            out.setdefault(start, {})[(dimension, value)] = row
    return out


def add_hour(
    old: dict[tuple[str, int], np.ndarray] | None, new: dict[tuple[str, int], np.ndarray]
) -> dict[tuple[str, int], np.ndarray]:
    """One hour's volumes plus a delta, per (dimension, value) (``old`` may be absent)."""
    merged = dict(old or {})
    for key, row in new.items():
        merged[key] = row.copy() if key not in merged else merged[key] + row
    return merged


class BinStores(NamedTuple):
    """Where the bins side of the stream keeps its state (tables or dicts)."""

    bins: MutableMapping[Hashable, Stamped]  # (partition, bin_start_ms) → (dim, value) → row
    progress: MutableMapping[Hashable, Stamped]  # (partition, "bins") → Progress


class HourlyProcessor:
    """The event-time lifecycle one partition's processors share.

    Per message: skip it when the progress record already holds its offset (a
    replay after a restart), apply it, advance the watermark, close the hours it
    passed, and stamp the progress with the offset. Subclasses say what applying a
    batch means (:meth:`_apply`) and what closing hours does (:meth:`_close_hours`).

    :param progress: ``(partition, progress_key)`` → :class:`Progress`
    :param partition: the Kafka partition this processor owns (0 when embedded)
    :param config: binning, lateness and retention
    """

    progress_key: ClassVar[str]

    def __init__(
        self, progress: MutableMapping[Hashable, Stamped], partition: int, config: StreamConfig
    ) -> None:
        self.progress = progress
        self.partition = partition
        self.config = config

    def process(self, batch: FlowBatch, offset: int) -> list[Any]:
        """Apply one batch (the message at ``offset``); return what the hours it closed gave."""
        stamped = self._progress()
        if stamped is not None and stamped.offset >= offset:
            return []  # the whole message was applied before a restart
        state = stamped.value if stamped else Progress()
        self._apply(batch, offset)
        # bins count every flow (their totals equal rwcount's); only believable ones move time
        until_ms, _ = observe(state, batch, self.config)
        closed = self._close(state, until_ms=until_ms)
        self.progress[(self.partition, self.progress_key)] = Stamped(offset, state)
        return closed

    def flush(self) -> list[Any]:
        """Close every hour up to the watermark (end of a finite input)."""
        stamped = self._progress()
        if stamped is None:
            return []
        closed = self._close(stamped.value, until_ms=final_horizon(stamped.value, self.config))
        self.progress[(self.partition, self.progress_key)] = Stamped(stamped.offset, stamped.value)
        return closed

    @property
    def watermark_ms(self) -> int:
        """The newest believable flow start of this partition (ms; very negative before any)."""
        stamped = self._progress()
        return -(2**62) if stamped is None else stamped.value.watermark_ms

    @property
    def closed_until_ms(self) -> int | None:
        """Every hour of this partition starting before this instant is closed."""
        stamped = self._progress()
        return None if stamped is None else stamped.value.closed_until_ms

    def _progress(self) -> Stamped | None:
        return self.progress.get((self.partition, self.progress_key))

    def _close(self, state: Progress, *, until_ms: int) -> list[Any]:
        start_ms = state.closed_until_ms if state.closed_until_ms is not None else -(2**62)
        if until_ms <= start_ms:
            return []
        closed = self._close_hours(state, start_ms, until_ms)
        state.closed_until_ms = until_ms
        return closed

    def _mine(self, store: Mapping[Hashable, Stamped]) -> dict[Any, Any]:
        """This partition's entries, keys without the partition, values unstamped."""
        return {
            key[1:]: stamped.value
            for key, stamped in list(store.items())
            if key[0] == self.partition
        }

    def _apply(self, batch: FlowBatch, offset: int) -> None:
        raise NotImplementedError

    def _close_hours(self, state: Progress, start_ms: int, until_ms: int) -> list[Any]:
        raise NotImplementedError


class BinProcessor(HourlyProcessor):
    """Hourly byte bins of one partition; closing an hour hands its bins on.

    :param stores: the bins and progress mappings (Faust tables or dicts)
    """

    progress_key = "bins"

    def __init__(self, stores: BinStores, partition: int, config: StreamConfig) -> None:
        super().__init__(stores.progress, partition, config)
        self.bins = stores.bins

    def _apply(self, batch: FlowBatch, offset: int) -> None:
        apply_deltas(self.bins, self.partition, bin_deltas(batch, self.config), add_hour, offset)

    def _close_hours(self, state: Progress, start_ms: int, until_ms: int) -> list[ClosedHour]:
        """The hours in [start, until) that hold flows; bins past retention are dropped."""
        by_hour = {hour: volumes for (hour,), volumes in self._mine(self.bins).items()}
        closed = [
            ClosedHour(
                self.partition,
                hour,
                {key: tuple(float(x) for x in row) for key, row in by_hour[hour].items()},
                until_ms,
            )
            for hour in sorted(h for h in by_hour if start_ms <= h < until_ms)
        ]
        before_ms = state.watermark_ms - self.config.retention_ms
        for hour in by_hour:
            if hour < before_ms:
                del self.bins[(self.partition, hour)]
        return closed
