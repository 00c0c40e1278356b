"""What the stream does with each flow batch — written once, for Faust and the embedded runner.

A :class:`PartitionProcessor` applies flow batches of one Kafka partition to a
set of key → value stores and closes event-time hours. The stores are plain
``MutableMapping`` objects: Faust tables in the worker, dicts in the embedded
runner, so both run exactly this code.

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

import logging
from collections.abc import Callable, Hashable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from detectors.schema import FlowBatch
from detectors.timebins import BinVolumes, bin_volumes

logger = logging.getLogger(__name__)

HOUR_MS = 3_600_000

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

    :param bin_ms: width of a byte bin. Default - 1 h
    :param load_scheme: how a flow spanning bins is shared (rwcount's names).
        Default - ``time-proportional``, rwcount's default
    :param allowed_lateness_ms: an hour closes when the partition's event-time
        watermark (newest flow start seen) passes the hour's end by this much.
        SiLK exporters emit a long flow when its active timeout (commonly 30 min)
        fires, so its start can be that much older than its neighbours'.
        Default - 30 min
    :param retention_ms: bins older than this, measured from the watermark,
        are dropped. Default - 48 h
    """

    bin_ms: int = HOUR_MS
    load_scheme: str = "time-proportional"
    allowed_lateness_ms: int = 30 * 60_000
    retention_ms: int = 48 * HOUR_MS


@dataclass(frozen=True)
class Stamped:
    """A stored value with the source offset of the last message applied to it."""

    offset: int
    value: Any


class ClosedHour(NamedTuple):
    """One partition's bins of an hour whose event time has passed."""

    partition: int
    hour_start_ms: int
    volumes: dict[tuple[str, int], tuple[float, float, float]]  # (dimension, value) → r, b, p


@dataclass
class Progress:
    """Per-partition event-time progress: watermark and the last hour closed."""

    watermark_ms: int = -(2**62)
    closed_until_ms: int | None = None  # every hour starting before this is closed
    late_flows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def observe(state: Progress, batch: FlowBatch, config: StreamConfig) -> int:
    """Advance the watermark past a batch; return the instant hours may close before.

    Flows starting before an hour that is already closed are counted as late
    (they are still added to the state, so totals stay exact).
    """
    if batch.size:
        if state.closed_until_ms is not None:
            state.late_flows += int(np.count_nonzero(batch["stime_ms"] < state.closed_until_ms))
        state.watermark_ms = max(state.watermark_ms, int(batch["stime_ms"].max()))
    horizon_ms = state.watermark_ms - config.allowed_lateness_ms
    return horizon_ms - horizon_ms % config.bin_ms


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


def bin_deltas(batch: FlowBatch, config: StreamConfig) -> dict[tuple[str, int, int], np.ndarray]:
    """Hourly ``[records, bytes, packets]`` of a batch per (dimension, value, bin start).

    Examples
    --------
    >>> from detectors.schema import make_batch
    >>> b = make_batch(stime_ms=[0, 10], bytes=[100, 50], packets=[1, 1], proto=[6, 17])
    >>> {k: v.tolist() for k, v in bin_deltas(b, StreamConfig()).items()}
    {('total', 0, 0): [2.0, 150.0, 2.0], ('sensor', 65535, 0): [2.0, 150.0, 2.0],
     ('flowtype', 255, 0): [2.0, 150.0, 2.0], ('proto', 6, 0): [1.0, 100.0, 1.0],
     ('proto', 17, 0): [1.0, 50.0, 1.0]}
    """
    out: dict[tuple[str, int, int], np.ndarray] = {}
    for dimension, column in BIN_DIMENSIONS.items():
        volumes = bin_volumes(
            batch,
            bin_ms=config.bin_ms,
            scheme=config.load_scheme,
            group=None if column is None else batch[column],
        )
        for key, row in _rows(volumes):
            out[(dimension, *key)] = row
    return out


def add_volumes(old: np.ndarray | None, new: np.ndarray) -> np.ndarray:
    """Sum two ``[records, bytes, packets]`` vectors (``old`` may be absent)."""
    return new.copy() if old is None else old + new


def _rows(volumes: BinVolumes) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
    table = np.column_stack([volumes.records, volumes.bytes, volumes.packets])
    for group, start, row in zip(
        volumes.group.tolist(), volumes.bin_start_ms.tolist(), table, strict=True
    ):
        yield (group, start), row


class BinStores(NamedTuple):
    """Where the bins side of the stream keeps its state (tables or dicts)."""

    bins: MutableMapping[Hashable, Stamped]  # (partition, dimension, value, bin_start_ms)
    progress: MutableMapping[Hashable, Stamped]  # (partition, "bins") → Progress


class PartitionProcessor:
    """Applies one partition's flow batches to the bin stores and closes hours.

    :param stores: the mappings to update (Faust tables or dicts)
    :param partition: the Kafka partition this processor owns (0 when embedded)
    :param config: binning, lateness and retention
    """

    def __init__(self, stores: BinStores, partition: int, config: StreamConfig) -> None:
        self.stores = stores
        self.partition = partition
        self.config = config

    def process(self, batch: FlowBatch, offset: int) -> list[ClosedHour]:
        """Apply one batch (the message at ``offset``); return hours it closed."""
        progress = self._progress()
        if progress is not None and progress.offset >= offset:
            return []  # the whole message was applied before a restart
        state = progress.value if progress else Progress()
        apply_deltas(
            self.stores.bins, self.partition, bin_deltas(batch, self.config), add_volumes, offset
        )
        closed = self._close(state, until_ms=observe(state, batch, self.config))
        self.stores.progress[(self.partition, "bins")] = Stamped(offset, state)
        return closed

    def flush(self) -> list[ClosedHour]:
        """Close every hour up to the watermark (end of a finite input)."""
        progress = self._progress()
        if progress is None:
            return []
        state = progress.value
        closed = self._close(state, until_ms=final_horizon(state, self.config))
        self.stores.progress[(self.partition, "bins")] = Stamped(progress.offset, state)
        return closed

    @property
    def closed_until_ms(self) -> int | None:
        """Every hour of this partition starting before this instant is closed."""
        progress = self._progress()
        return None if progress is None else progress.value.closed_until_ms

    def _progress(self) -> Stamped | None:
        return self.stores.progress.get((self.partition, "bins"))

    def _close(self, state: Progress, *, until_ms: int) -> list[ClosedHour]:
        """Close the hours in [closed_until, until) that hold flows; expire old bins."""
        start_ms = state.closed_until_ms if state.closed_until_ms is not None else -(2**62)
        if until_ms <= start_ms:
            return []
        mine = self._bins_by_hour()
        hours = sorted(h for h in mine if start_ms <= h < until_ms)
        closed = [ClosedHour(self.partition, h, mine[h]) for h in hours]
        state.closed_until_ms = until_ms
        self._expire(state.watermark_ms - self.config.retention_ms)
        return closed

    def _bins_by_hour(self) -> dict[int, dict[tuple[str, int], tuple[float, float, float]]]:
        by_hour: dict[int, dict[tuple[str, int], tuple[float, float, float]]] = {}
        for key, stamped in list(self.stores.bins.items()):
            partition, dimension, value, start_ms = key
            if partition == self.partition:
                r, b, p = (float(x) for x in stamped.value)
                by_hour.setdefault(start_ms, {})[(dimension, value)] = (r, b, p)
        return by_hour

    def _expire(self, before_ms: int) -> None:
        stale = [
            key
            for key in list(self.stores.bins.keys())
            if key[0] == self.partition and key[3] < before_ms
        ]
        for key in stale:
            del self.stores.bins[key]
