"""Sorting more flows than memory holds, as rwsort does: sorted runs on disk, then a merge.

``silkwatch sort`` keeps records in memory up to its buffer (104 bytes each); past it,
each buffer-full is sorted (stably) and written to a temporary file as raw
``FLOW_DTYPE`` records, and the runs are merged a block at a time. Each run is a
stable sort of consecutive input, so merging by (key, run, position) gives exactly
the stable sort of the whole input: the same output as sorting in memory.

With ``--presorted-input`` the inputs themselves are the runs (:func:`merge_presorted`):
files sorted apart by the same keys, merged into the bytes one sort of them all gives.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from typing import BinaryIO

import numpy as np

from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.flowsort import KeyColumns, sort_order
from silkwatch.detectors.schema import FLOW_DTYPE, FlowBatch, empty_batch, take_rows

#: records taken from the sorted buffer and written at a time
WRITE_ROWS = 1 << 16


class SortSpillError(SilkwatchError):
    """A sorted run cannot be written to the temporary directory."""

    reason = "spill_failed"


class PresortedOrderError(SilkwatchError):
    """A ``--presorted-input`` input that is not in the order of the sort keys."""

    reason = "unsorted_input"


class SortedRuns:
    """Records sorted in memory up to ``buffer`` bytes; beyond it, in sorted runs on disk.

    Each run is a stable sort of consecutive input, so merging the runs by
    (key, run, position) gives exactly the stable sort of the whole input: the
    in-memory sort's output.
    """

    def __init__(
        self,
        keys: Sequence[KeyColumns],
        reverse: bool,
        buffer: int,
        temp_dir: str,
        stack: ExitStack,
    ) -> None:
        self.keys, self.reverse, self.temp_dir, self.stack = keys, reverse, temp_dir, stack
        self.rows = max(1, buffer // FLOW_DTYPE.itemsize)  # records the buffer holds
        self.held: list[np.ndarray] = []
        self.held_rows = 0
        self.runs: list[_Run] = []
        self.folder: str | None = None

    def add(self, batch: np.ndarray) -> None:
        while len(batch):
            room = self.rows - self.held_rows
            self.held.append(batch[:room])
            self.held_rows += len(self.held[-1])
            batch = batch[room:]
            if self.held_rows == self.rows:
                self._spill()

    def sorted_blocks(self) -> Iterator[np.ndarray]:
        """The records in order, a block at a time."""
        if not self.runs:  # everything fit: one sort in memory
            yield from _blocks(*self._sorted_held())
            return
        if self.held_rows:
            self._spill()
        block = max(1, self.rows // (len(self.runs) + 1))
        yield from _merge(self.runs, self.keys, self.reverse, block)

    def _sorted_held(self) -> tuple[FlowBatch, np.ndarray]:
        flows = np.concatenate(self.held) if self.held else empty_batch()
        self.held, self.held_rows = [], 0
        return flows, sort_order(flows, self.keys, reverse=self.reverse)

    def _spill(self) -> None:
        if self.folder is None:
            try:
                self.folder = self.stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="silkwatch-sort-", dir=self.temp_dir)
                )
            except OSError as exc:
                raise SortSpillError(
                    f"sort: --temp-directory {self.temp_dir}: {exc.strerror or exc}"
                ) from exc
        flows, order = self._sorted_held()
        path = os.path.join(self.folder, f"run-{len(self.runs)}")
        try:
            with open(path, "wb") as raw:
                for start in range(0, len(order), WRITE_ROWS):
                    take_rows(flows, order[start : start + WRITE_ROWS]).tofile(raw)
        except OSError as exc:
            raise SortSpillError(f"sort: {path}: {exc.strerror or exc}") from exc
        self.runs.append(self.stack.enter_context(_Run(path, len(flows))))


class _Run:
    """One sorted run on disk, read back a block at a time."""

    def __init__(self, path: str, rows: int) -> None:
        self.path, self.left = path, rows
        self.raw: BinaryIO | None = None

    def __enter__(self) -> _Run:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.raw is not None:
            self.raw.close()

    def read(self, rows: int) -> FlowBatch:
        if self.raw is None:
            self.raw = open(self.path, "rb")  # noqa: SIM115 - closed by __exit__
        block = np.fromfile(self.raw, dtype=FLOW_DTYPE, count=min(rows, self.left))
        self.left -= len(block)
        return block


class _Presorted:
    """One input already sorted by the keys, read a block at a time as a run to merge.

    Each block is checked to continue the order of the records before it (a stable
    sort of a sorted sequence leaves it as it is): merging an unsorted input would
    give unsorted output, in rounds of a few records each.
    """

    def __init__(
        self, name: str, batches: Iterator[FlowBatch], keys: Sequence[KeyColumns], reverse: bool
    ) -> None:
        self.name, self.batches, self.keys, self.reverse = name, batches, keys, reverse
        self.held: list[FlowBatch] = []
        self.held_rows = 0
        self.read_rows = 0  # records handed out so far
        self.last = empty_batch()  # the last of them

    @property
    def left(self) -> bool:
        """Whether records remain to be read."""
        self._fill(1)
        return self.held_rows > 0

    def read(self, rows: int) -> FlowBatch:
        self._fill(rows)
        parts: list[FlowBatch] = []
        while self.held and rows:
            part = self.held[0][:rows]  # views: the rest of a batch is not copied
            self.held[0] = self.held[0][rows:]
            if not len(self.held[0]):
                self.held.pop(0)
            parts.append(part)
            rows -= len(part)
            self.held_rows -= len(part)
        block = parts[0] if len(parts) == 1 else np.concatenate(parts or [empty_batch()])
        self._check(block)
        self.read_rows += len(block)
        self.last = block[-1:] if len(block) else self.last
        return block

    def _fill(self, rows: int) -> None:
        while self.held_rows < rows:
            batch = next(self.batches, None)
            if batch is None:
                return
            self.held.append(batch)
            self.held_rows += len(batch)

    def _check(self, block: FlowBatch) -> None:
        both = np.concatenate([self.last, block])
        rank = np.empty(len(both), np.int64)
        rank[sort_order(both, self.keys, reverse=self.reverse)] = np.arange(len(both))
        before = np.flatnonzero(rank[1:] < rank[:-1])  # records sorting before the one ahead
        if len(before):
            record = self.read_rows - len(self.last) + int(before[0]) + 2  # counted from 1
            raise PresortedOrderError(
                f"sort: {self.name}: record {record:,} is out of the --fields order; "
                "--presorted-input needs every input sorted by the same --fields and --reverse"
            )


def merge_presorted(
    inputs: Sequence[tuple[str, Iterator[FlowBatch]]],
    keys: Sequence[KeyColumns],
    reverse: bool,
    buffer: int,
) -> Iterator[FlowBatch]:
    """rwsort ``--presorted-input``: (name, batches) inputs, each sorted by ``keys``, merged
    with ties in input order (the stable sort of them all), ``buffer`` bytes held at most."""
    runs = [_Presorted(name, batches, keys, reverse) for name, batches in inputs]
    block = max(1, buffer // FLOW_DTYPE.itemsize // (len(runs) + 1))
    yield from _merge(runs, keys, reverse, block)


def _merge(
    runs: Sequence[_Run | _Presorted], keys: Sequence[KeyColumns], reverse: bool, block: int
) -> Iterator[FlowBatch]:
    """The runs merged, in ``block``-row reads per run.

    The pending rows of every run are sorted together, in run order, so ties fall
    in (run, position) order. A run's unread rows all sort after its last pending
    row, so every row up to the earliest such last row (over the runs not yet
    exhausted) is final: it is emitted, and the runs whose pending rows are used up
    read their next block. That run's whole block goes each round, so it ends.
    """
    pending = [run.read(block) for run in runs]
    while any(len(rows) for rows in pending):
        merged = np.concatenate(pending)
        order = sort_order(merged, keys, reverse=reverse)
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order))
        ends = np.cumsum([len(rows) for rows in pending])
        lasts = [
            rank[end - 1]
            for end, run, rows in zip(ends, runs, pending, strict=True)
            if run.left and len(rows)
        ]
        bound = min(lasts) if lasts else len(merged) - 1
        yield take_rows(merged, order[: bound + 1])
        for i, run in enumerate(runs):
            start = ends[i] - len(pending[i])
            rest = pending[i][rank[start : ends[i]] > bound]  # a suffix: the run is sorted
            pending[i] = rest if len(rest) or not run.left else run.read(block)


def _blocks(flows: FlowBatch, order: np.ndarray) -> Iterator[FlowBatch]:
    for start in range(0, len(order), WRITE_ROWS):
        yield take_rows(flows, order[start : start + WRITE_ROWS])
