"""rwcount's time binning: spread each flow's volume over fixed time bins.

SiLK's ``rwcount`` offers seven *load schemes* that decide how a flow that
spans several bins is shared among them (``silk-format.md`` §12.3). The same
numbers feed the ``silkwatch count`` command and the streaming byte bins, so
the computation lives here once, on whole batches. A small C kernel
(``_timebins.c``) adds each flow's shares into a dense window of bins per group,
with rwcount's own expressions and in rwcount's order, so the doubles are
rwcount's; flows scattered over a huge span are listed as (flow, bin) pieces
instead and summed per key in the same order. Bins lie on a grid of
``bin_ms`` through ``origin_ms`` (default: the epoch grid, which is rwcount's for
every bin size that divides a day; ``silkwatch count`` passes rwcount's origin).

Batches can be binned one at a time and combined with :func:`merge_bins`; the
result equals binning everything at once (up to float rounding of the shares).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from silkwatch.detectors import _timebins
from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.grouping import group_rows, key_words
from silkwatch.detectors.schema import FlowBatch

#: rwcount's load-scheme names and the numbers ``--load-scheme`` also accepts
LOAD_SCHEMES: dict[str, int] = {
    "bin-uniform": 0,
    "start-spike": 1,
    "end-spike": 2,
    "middle-spike": 3,
    "time-proportional": 4,
    "maximum-volume": 5,
    "minimum-volume": 6,
}
#: most (flow, bin) pieces listed at once (40 bytes each); larger batches are split
MAX_PIECES = 1 << 24
#: a dense window of bins (24 bytes a bin and group) is used up to this many cells...
DENSE_CELLS = 1 << 22
#: ...when it has at most this many cells per flow, or this few in all; sparser flows
#: (a record dated years ahead) are listed as (flow, bin) pieces and summed per key
DENSE_CELLS_PER_FLOW = 4
DENSE_MIN_CELLS = 1 << 16

BIN_UNIFORM, START_SPIKE, END_SPIKE, MIDDLE_SPIKE, TIME_PROPORTIONAL, MAXIMUM, MINIMUM = range(7)


class LoadSchemeError(SilkwatchError, ValueError):
    """A ``--load-scheme`` that is neither a known name nor a number 0-6."""

    reason = "bad_load_scheme"

    def __init__(self, text: str) -> None:
        names = ", ".join(f"{name} ({number})" for name, number in LOAD_SCHEMES.items())
        super().__init__(f"rwcount load scheme {text!r} unknown; choose one of {names}")
        self.text = text


#: the batch columns ``bin_volumes`` reads (readers may decode just these)
VOLUME_COLUMNS = frozenset({"stime_ms", "elapsed_ms", "bytes", "packets"})


def parse_load_scheme(text: str | int) -> int:
    """A load scheme given by name (or unique prefix, as SiLK allows) or number → its id.

    Examples
    --------
    >>> parse_load_scheme("time-proportional"), parse_load_scheme("5"), parse_load_scheme("min")
    (4, 5, 6)
    """
    key = str(text).strip().lower()
    if key.isdigit() and int(key) in LOAD_SCHEMES.values():
        return int(key)
    matches = [number for name, number in LOAD_SCHEMES.items() if name.startswith(key)]
    if key and len(matches) == 1:
        return matches[0]
    raise LoadSchemeError(str(text))


@dataclass(frozen=True)
class BinVolumes:
    """Volumes per (group, time bin), sorted by group then bin, one row per pair.

    ``records`` may be fractional (time-proportional and bin-uniform share a
    record among the bins a flow touches). Bins no flow touched are absent.
    """

    group: np.ndarray  # int64; 0 when binning without groups
    bin_start_ms: np.ndarray  # int64, a multiple of the bin size
    records: np.ndarray  # float64
    bytes: np.ndarray  # float64
    packets: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.bin_start_ms)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BinVolumes):
            return NotImplemented
        return all(np.array_equal(getattr(self, n), getattr(other, n)) for n in _COLUMNS)

    __hash__ = None  # type: ignore[assignment]  # arrays are mutable


def empty_bins() -> BinVolumes:
    """No bins at all: the start value for :func:`merge_bins` over batches."""
    return BinVolumes(
        group=np.zeros(0, np.int64),
        bin_start_ms=np.zeros(0, np.int64),
        records=np.zeros(0),
        bytes=np.zeros(0),
        packets=np.zeros(0),
    )


def bin_volumes(
    batch: FlowBatch,
    *,
    bin_ms: int,
    scheme: int | str = "time-proportional",
    group: np.ndarray | None = None,
) -> BinVolumes:
    """Share each flow's records, bytes and packets among ``bin_ms``-wide time bins.

    Parameters
    ----------
    batch
        Flows (``FLOW_DTYPE``); only ``stime_ms``, ``elapsed_ms``, ``bytes`` and
        ``packets`` are read. The batch is not modified.
    bin_ms
        Bin width in milliseconds; bins start at multiples of it since the epoch.
    scheme
        rwcount load scheme, by name or id (see :data:`LOAD_SCHEMES`).
        Default - ``"time-proportional"``, rwcount's default.
    group
        Optional integer per flow (sensor, flowtype, protocol...) to bin each
        group separately in the same pass. Default - ``None``, one group 0.

    Examples
    --------
    A 10 ms flow crossing a 100 ms boundary, time-proportional (the flow
    lasts ``elapsed + 1`` ms, end inclusive), then start-spike. The bytes are
    rwcount's doubles: (1 - 95/100) of a whole bin's 1100 * 100/11 bytes, and
    106/100 - 1 of it (rwcount prints 500.00 and 600.00):

    >>> from silkwatch.detectors.schema import make_batch
    >>> b = make_batch(stime_ms=[95], elapsed_ms=[10], bytes=[1100], packets=[11])
    >>> v = bin_volumes(b, bin_ms=100)
    >>> v.bin_start_ms.tolist(), v.records.round(6).tolist(), v.bytes.tolist()
    ([0, 100], [0.454545, 0.545455], [500.00000000000045, 600.0000000000006])
    >>> bin_volumes(b, bin_ms=100, scheme="start-spike").bytes.tolist()
    [1100.0]
    """
    (volumes,) = bin_volumes_by(batch, bin_ms=bin_ms, scheme=scheme, groups=[group])
    return volumes


def bin_volumes_by(
    batch: FlowBatch,
    *,
    bin_ms: int,
    scheme: int | str = "time-proportional",
    groups: Sequence[np.ndarray | None],
    origin_ms: int | None = None,
) -> list[BinVolumes]:
    """:func:`bin_volumes` for several groupings of the same flows (total, by sensor...).

    Each flow's shares are computed by the C kernel (``_timebins.c``) with
    rwcount's own expressions, relative to ``origin_ms`` as rwcount computes
    them relative to its first bin: rwcount's grid origin gives rwcount's very
    doubles. Default - the bin of the first flow, on the epoch grid.

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> b = make_batch(stime_ms=[5, 150], bytes=[10, 20], proto=[6, 17])
    >>> total, by_proto = bin_volumes_by(b, bin_ms=100, groups=[None, b["proto"]])
    >>> total.bytes.tolist(), by_proto.group.tolist(), by_proto.bytes.tolist()
    ([10.0, 20.0], [6, 17], [10.0, 20.0])
    """
    scheme_id = parse_load_scheme(scheme)
    if bin_ms <= 0:
        raise ValueError(f"bin_ms must be positive, not {bin_ms}")
    if not len(batch):
        return [empty_bins() for _ in groups]
    flows = _FlowColumns.of(batch)
    origin = bin_ms * (int(flows.start[0]) // bin_ms) if origin_ms is None else int(origin_ms)
    args = (*flows, origin, bin_ms, scheme_id)
    first_bin, last_bin = _timebins.span(*args)
    nbins = last_bin - first_bin + 1
    compact = [_compact_groups(group) for group in groups]
    dense = [_dense_enough(len(values) * nbins, len(batch)) for _, values in compact]
    pieces = 0 if all(dense) else _timebins.pieces_count(*args)
    if pieces > MAX_PIECES and len(batch) > 1:
        # long flows scattered over a long span: bound the memory by binning halves apart
        half = len(batch) // 2
        halves = [
            bin_volumes_by(
                batch[rows],
                bin_ms=bin_ms,
                scheme=scheme_id,
                groups=[None if g is None else np.asarray(g)[rows] for g in groups],
                origin_ms=origin,
            )
            for rows in (slice(None, half), slice(half, None))
        ]
        return [merge_bins(a, b) for a, b in zip(*halves, strict=True)]
    found: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    results = []
    for (ids, values), in_window in zip(compact, dense, strict=True):
        if in_window:
            cells = np.zeros((len(values), nbins, 3))
            if _timebins.accumulate(*args, ids, first_bin, nbins, cells) != len(batch):
                raise AssertionError("the window spans every flow's bins")
            results.append(_window_volumes(cells, values, first_bin, origin, bin_ms))
            continue
        if found is None:  # flows scattered over a long span: list the pieces, sum per key
            found = (np.empty(pieces, np.int64), np.empty(pieces, np.int64), np.empty((pieces, 3)))
            _timebins.pieces(*args, *found)
        bins, rows, shares = found
        owner = np.zeros(pieces, np.int64) if ids is None else ids[rows]
        results.append(_sum_by_key(values[owner], origin + bins * bin_ms, shares))
    return results


class VolumeCounter:
    """rwcount's array of bins, filled batch after batch: each bin gets rwcount's double.

    Merging per-batch sums (:func:`merge_bins`) adds the flows of a bin in
    another order than rwcount, which can move a printed cent. Here the flows
    are added into one window of bins, kept across batches and grown as they
    reach out (as rwcount's ``reallocBins``), so every bin is summed flow after
    flow in input order, as rwcount sums it. A batch that would stretch the
    window far beyond the work done (a record dated years ahead) is binned
    apart (:func:`bin_volumes_by`) and merged in at the end.

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> counter = VolumeCounter(bin_ms=100, scheme="start-spike", origin_ms=0)
    >>> counter.update(make_batch(stime_ms=[5, 150], bytes=[10, 20]))
    >>> counter.update(make_batch(stime_ms=[60, 10**12], bytes=[1, 2]))
    >>> v = counter.result()
    >>> v.bin_start_ms.tolist(), v.bytes.tolist()
    ([0, 100, 1000000000000], [11.0, 20.0, 2.0])
    >>> other = counter.empty()
    >>> other.update(make_batch(stime_ms=[170], bytes=[4]))
    >>> counter.merge(other)
    >>> counter.result().bytes.tolist()
    [11.0, 24.0, 2.0]
    """

    def __init__(self, *, bin_ms: int, scheme: int | str, origin_ms: int) -> None:
        if bin_ms <= 0:
            raise ValueError(f"bin_ms must be positive, not {bin_ms}")
        self.bin_ms, self.scheme, self.origin_ms = bin_ms, parse_load_scheme(scheme), origin_ms
        self._first_bin = 0  # of the window, relative to the origin
        self._cells = np.zeros((1, 0, 3))
        self._flows = 0
        self._apart = empty_bins()

    def empty(self) -> VolumeCounter:
        """No flows yet, on the same grid and load scheme."""
        return VolumeCounter(bin_ms=self.bin_ms, scheme=self.scheme, origin_ms=self.origin_ms)

    def update(self, batch: FlowBatch) -> None:
        """Count a batch's flows (``stime_ms``, ``elapsed_ms``, ``bytes``, ``packets``).

        The kernel adds flows until one reaches outside the window; only then are the
        remaining flows' bins looked at (a pass of their own) to grow the window.
        """
        self._flows += len(batch)
        while len(batch):
            args = (*_FlowColumns.of(batch), self.origin_ms, self.bin_ms, self.scheme)
            held = self._cells.shape[1]
            if held:
                batch = batch[
                    _timebins.accumulate(*args, None, self._first_bin, held, self._cells) :
                ]
                if not len(batch):
                    return
                args = (*_FlowColumns.of(batch), self.origin_ms, self.bin_ms, self.scheme)
            first, last = _timebins.span(*args)
            if held:
                first, last = min(first, self._first_bin), max(last, self._first_bin + held - 1)
            if not _dense_enough(last - first + 1, self._flows):
                (volumes,) = bin_volumes_by(
                    batch,
                    bin_ms=self.bin_ms,
                    scheme=self.scheme,
                    groups=[None],
                    origin_ms=self.origin_ms,
                )
                self._apart = merge_bins(self._apart, volumes)
                return
            self._grow(first, last)

    def merge(self, other: VolumeCounter) -> None:
        """Add another counter's bins (same grid and scheme), as :func:`merge_bins` adds them."""
        grid = (self.bin_ms, self.scheme, self.origin_ms)
        if (other.bin_ms, other.scheme, other.origin_ms) != grid:
            raise ValueError("cannot merge counters of different bins or load schemes")
        self._flows += other._flows
        self._apart = merge_bins(self._apart, other.result())

    def result(self) -> BinVolumes:
        """Every bin a flow touched, in time order."""
        window = _window_volumes(
            self._cells, np.zeros(1, np.int64), self._first_bin, self.origin_ms, self.bin_ms
        )
        return merge_bins(window, self._apart)

    def _grow(self, first: int, last: int) -> None:
        """Hold bins ``first`` .. ``last``, with as much again to spare on the side that grew
        (within :data:`DENSE_CELLS`), so a file in time order copies the window rarely."""
        held = self._cells.shape[1]
        spare = max(0, min(held, DENSE_CELLS - (last - first + 1)))
        if held and first < self._first_bin:
            first -= spare
        elif held:
            last += spare
        cells = np.zeros((1, last - first + 1, 3))
        at = self._first_bin - first
        cells[:, at : at + held] = self._cells
        self._cells, self._first_bin = cells, first


def _dense_enough(cells: int, flows: int) -> bool:
    """Whether a window of ``cells`` bins is worth it for ``flows`` flows (see DENSE_CELLS)."""
    return cells <= min(DENSE_CELLS, max(DENSE_MIN_CELLS, DENSE_CELLS_PER_FLOW * flows))


def _window_volumes(
    cells: np.ndarray, values: np.ndarray, first_bin: int, origin_ms: int, bin_ms: int
) -> BinVolumes:
    """The bins a flow touched in a window (groups x bins x 3), in (group, time) order."""
    where, offset = np.nonzero(cells[:, :, 0] > 0)  # every touched bin holds records
    start_ms = origin_ms + (first_bin + offset) * bin_ms
    return _volumes(values[where], start_ms, cells[where, offset])


class _FlowColumns(NamedTuple):
    """The four columns the kernel reads, as (strided, uncopied) views of a batch.

    The counters may be 32-bit (a batch that is a view of SiLK records, which store
    them so): the kernel reads either width in place.
    """

    start: np.ndarray  # int64
    elapsed: np.ndarray  # uint32
    bytes: np.ndarray  # uint32 or uint64
    packets: np.ndarray  # uint32 or uint64

    @classmethod
    def of(cls, batch: FlowBatch) -> _FlowColumns:
        counters = batch["bytes"], batch["packets"]
        if len({c.dtype for c in counters}) > 1 or counters[0].dtype not in _COUNTER_TYPES:
            counters = tuple(np.asarray(c, np.uint64) for c in counters)
        return cls(
            np.asarray(batch["stime_ms"], np.int64),
            np.asarray(batch["elapsed_ms"], np.uint32),
            *counters,
        )


#: counter types the kernel reads in place (bytes and packets of one type)
_COUNTER_TYPES = (np.dtype(np.uint32), np.dtype(np.uint64))


def _compact_groups(group: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray]:
    """(a dense group number per flow, in group-value order; the group values)."""
    if group is None:
        return None, np.zeros(1, np.int64)
    values = np.asarray(group, np.int64)
    found = group_rows(key_words(values))
    return found.inverse, values[found.first]


def merge_bins(a: BinVolumes, b: BinVolumes) -> BinVolumes:
    """Bins of two partial results added together (equal keys summed).

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> one = bin_volumes(make_batch(stime_ms=[5], bytes=[10]), bin_ms=100)
    >>> two = bin_volumes(make_batch(stime_ms=[7, 250], bytes=[1, 2]), bin_ms=100)
    >>> m = merge_bins(one, two)
    >>> m.bin_start_ms.tolist(), m.records.tolist(), m.bytes.tolist()
    ([0, 200], [2.0, 1.0], [11.0, 2.0])
    """
    if not len(a):
        return b
    if not len(b):
        return a
    return _sum_by_key(
        np.concatenate([a.group, b.group]),
        np.concatenate([a.bin_start_ms, b.bin_start_ms]),
        np.column_stack(
            [
                np.concatenate([getattr(a, n), getattr(b, n)])
                for n in ("records", "bytes", "packets")
            ]
        ),
    )


def fill_span(volumes: BinVolumes, *, bin_ms: int, skip_zeroes: bool = False) -> BinVolumes:
    """The rows rwcount prints: every bin from the first to the last with bytes.

    rwcount trims leading and trailing bins without bytes (so a bin holding
    only a share of a record, with no bytes, is not printed at the edges) and
    prints the empty bins in between unless ``--skip-zeroes`` (which drops bins
    without records). Applied per group.

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> b = make_batch(stime_ms=[0, 300], bytes=[5, 6], packets=[1, 1])
    >>> fill_span(bin_volumes(b, bin_ms=100), bin_ms=100).bin_start_ms.tolist()
    [0, 100, 200, 300]
    >>> fill_span(bin_volumes(b, bin_ms=100), bin_ms=100, skip_zeroes=True).bytes.tolist()
    [5.0, 6.0]
    """
    with_bytes = volumes.bytes > 0
    if not with_bytes.any():
        return empty_bins()
    groups, where = np.unique(volumes.group[with_bytes], return_inverse=True)
    first_ms = np.full(len(groups), np.iinfo(np.int64).max)
    last_ms = np.full(len(groups), np.iinfo(np.int64).min)
    np.minimum.at(first_ms, where, volumes.bin_start_ms[with_bytes])
    np.maximum.at(last_ms, where, volumes.bin_start_ms[with_bytes])
    slot = np.searchsorted(groups, volumes.group).clip(max=len(groups) - 1)
    inside = (
        (groups[slot] == volumes.group)
        & (volumes.bin_start_ms >= first_ms[slot])
        & (volumes.bin_start_ms <= last_ms[slot])
    )
    if skip_zeroes:
        keep = inside & (volumes.records > 0)
        return BinVolumes(*(getattr(volumes, name)[keep] for name in _COLUMNS))
    # a zero frame over each group's span, with the real volumes added onto it
    rows_per_group = (last_ms - first_ms) // bin_ms + 1
    owner, step = _runs(rows_per_group)
    zeros = np.zeros(len(owner))
    frame = BinVolumes(groups[owner], first_ms[owner] + step * bin_ms, zeros, zeros, zeros)
    return merge_bins(frame, BinVolumes(*(getattr(volumes, name)[inside] for name in _COLUMNS)))


_COLUMNS = ("group", "bin_start_ms", "records", "bytes", "packets")


def _runs(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand run lengths → (run index, position within the run) per element.

    ``_runs([2, 3])`` gives ``([0, 0, 1, 1, 1], [0, 1, 0, 1, 2])``: how a flow
    touching k bins becomes k pieces without a Python loop.
    """
    owner = np.repeat(np.arange(len(lengths)), lengths)
    return owner, np.arange(len(owner)) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def _volumes(group: np.ndarray, bin_start_ms: np.ndarray, sums: np.ndarray) -> BinVolumes:
    """``BinVolumes`` of rows already in key order; ``sums`` holds records, bytes, packets."""
    return BinVolumes(group, bin_start_ms, *(np.ascontiguousarray(sums[:, k]) for k in range(3)))


def _sum_by_key(group: np.ndarray, bin_start_ms: np.ndarray, values: np.ndarray) -> BinVolumes:
    """Rows sharing a (group, bin start) summed, in key order; ``values``: n x 3.

    ``np.bincount`` adds the rows of a key one after the other in row order,
    which is the order rwcount adds flows to a bin: pieces listed by the kernel
    sum to the doubles its dense window holds.
    """
    if not len(bin_start_ms):
        return empty_bins()
    found = group_rows([*key_words(group), *key_words(bin_start_ms)])
    sums = np.column_stack(
        [np.bincount(found.inverse, values[:, k], found.count) for k in range(3)]
    )
    return _volumes(group[found.first], bin_start_ms[found.first], sums)
