"""rwcount's time binning: spread each flow's volume over fixed time bins.

SiLK's ``rwcount`` offers seven *load schemes* that decide how a flow that
spans several bins is shared among them (``silk-format.md`` §12.3). The same
numbers feed the ``silkwatch count`` command and the streaming byte bins, so
the computation lives here once, on whole batches: a flow touching ``k`` bins
becomes ``k`` weighted pieces (``np.repeat``), and pieces with the same
(group, bin) are summed. Bins are multiples of ``bin_ms`` since the epoch,
which is what rwcount does for every bin size that divides a day.

Batches can be binned one at a time and combined with :func:`merge_bins`; the
result equals binning everything at once (up to float rounding of the shares).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detectors.exceptions import SilkwatchError
from detectors.groupby import group_rows, key_words, stable_order
from detectors.schema import FlowBatch

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
#: most (flow, bin) pieces built at once (~40 bytes each); larger batches are split
MAX_PIECES = 1 << 24

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
    lasts ``elapsed + 1`` ms, end inclusive), then start-spike:

    >>> from detectors.schema import make_batch
    >>> b = make_batch(stime_ms=[95], elapsed_ms=[10], bytes=[1100], packets=[11])
    >>> v = bin_volumes(b, bin_ms=100)
    >>> v.bin_start_ms.tolist(), v.records.tolist(), v.bytes.tolist()
    ([0, 100], [0.4545454545454546, 0.5454545454545454], [500.0, 600.0])
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
) -> list[BinVolumes]:
    """:func:`bin_volumes` for several groupings of the same flows (total, by sensor...).

    The flows are split among bins once; only the summing is done per grouping.

    Examples
    --------
    >>> from detectors.schema import make_batch
    >>> b = make_batch(stime_ms=[5, 150], bytes=[10, 20], proto=[6, 17])
    >>> total, by_proto = bin_volumes_by(b, bin_ms=100, groups=[None, b["proto"]])
    >>> total.bytes.tolist(), by_proto.group.tolist(), by_proto.bytes.tolist()
    ([10.0, 20.0], [6, 17], [10.0, 20.0])
    """
    scheme_id = parse_load_scheme(scheme)
    if bin_ms <= 0:
        raise ValueError(f"bin_ms must be positive, not {bin_ms}")
    start_ms = batch["stime_ms"].astype(np.int64)
    elapsed_ms = batch["elapsed_ms"].astype(np.int64)
    end_ms = start_ms + elapsed_ms  # rwcount's eTime: the last millisecond of the flow
    columns = [
        np.zeros(len(batch), np.int64) if group is None else np.asarray(group, np.int64)
        for group in groups
    ]
    byte_counts = batch["bytes"].astype(np.float64)
    packet_counts = batch["packets"].astype(np.float64)

    if scheme_id in (START_SPIKE, END_SPIKE, MIDDLE_SPIKE):
        if scheme_id == START_SPIKE:
            spike_ms = start_ms
        elif scheme_id == END_SPIKE:
            spike_ms = end_ms
        else:  # C integer division, as rwcount's middleAdd
            spike_ms = start_ms + elapsed_ms // 2
        ones = np.ones(len(batch))
        bins = spike_ms // bin_ms
        return [_sum_pieces(g, bins, bin_ms, ones, byte_counts, packet_counts) for g in columns]

    first_bin = start_ms // bin_ms
    bins_touched = end_ms // bin_ms - first_bin + 1
    if len(batch) > 1 and int(bins_touched.sum()) > MAX_PIECES:
        # long flows in small bins: bound the memory by binning halves apart
        half = len(batch) // 2
        halves = [
            bin_volumes_by(part, bin_ms=bin_ms, scheme=scheme_id, groups=[g[rows] for g in columns])
            for part, rows in ((batch[:half], slice(None, half)), (batch[half:], slice(half, None)))
        ]
        return [merge_bins(a, b) for a, b in zip(*halves, strict=True)]
    flow, step = _runs(bins_touched)
    bins = first_bin[flow] + step
    span = bins_touched[flow]
    if scheme_id == TIME_PROPORTIONAL:
        inside_ms = np.minimum(end_ms[flow] + 1, (bins + 1) * bin_ms) - np.maximum(
            start_ms[flow], bins * bin_ms
        )
        share = inside_ms / (elapsed_ms[flow] + 1.0)
        record_share = volume_share = share
    elif scheme_id == BIN_UNIFORM:
        record_share = volume_share = 1.0 / span
    elif scheme_id == MAXIMUM:
        record_share = volume_share = np.ones(len(flow))
    else:  # MINIMUM: volume only where the whole flow fits in one bin
        record_share = np.ones(len(flow))
        volume_share = (span == 1).astype(np.float64)
    piece_bytes = byte_counts[flow] * volume_share
    piece_packets = packet_counts[flow] * volume_share
    return [
        _sum_pieces(g[flow], bins, bin_ms, record_share, piece_bytes, piece_packets)
        for g in columns
    ]


def merge_bins(a: BinVolumes, b: BinVolumes) -> BinVolumes:
    """Bins of two partial results added together (equal keys summed).

    Examples
    --------
    >>> from detectors.schema import make_batch
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
    return _sum_pieces(
        np.concatenate([a.group, b.group]),
        np.concatenate([a.bin_start_ms, b.bin_start_ms]),
        1,
        np.concatenate([a.records, b.records]),
        np.concatenate([a.bytes, b.bytes]),
        np.concatenate([a.packets, b.packets]),
    )


def fill_span(volumes: BinVolumes, *, bin_ms: int, skip_zeroes: bool = False) -> BinVolumes:
    """The rows rwcount prints: every bin from the first to the last with bytes.

    rwcount trims leading and trailing bins without bytes (so a bin holding
    only a share of a record, with no bytes, is not printed at the edges) and
    prints the empty bins in between unless ``--skip-zeroes`` (which drops bins
    without records). Applied per group.

    Examples
    --------
    >>> from detectors.schema import make_batch
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


def _sum_pieces(
    groups: np.ndarray,
    bins: np.ndarray,
    bin_ms: int,
    records: np.ndarray,
    byte_counts: np.ndarray,
    packet_counts: np.ndarray,
) -> BinVolumes:
    """Sum pieces sharing a (group, bin index); ``bins * bin_ms`` is the bin start.

    The pieces are put in key order by a stable sort of their (few, small)
    group ids, then each run is summed with ``add.reduceat``: numpy's pairwise,
    vectorised sum, where ``bincount`` would add one piece at a time into the
    same few cells.
    """
    if not len(bins):
        return empty_bins()
    found = group_rows([*key_words(groups), *key_words(bins)])
    order = stable_order(found.inverse, found.count)
    starts = np.cumsum(found.sizes) - found.sizes
    return BinVolumes(
        group=groups[found.first],
        bin_start_ms=bins[found.first] * bin_ms,
        records=np.add.reduceat(records[order], starts),
        bytes=np.add.reduceat(byte_counts[order], starts),
        packets=np.add.reduceat(packet_counts[order], starts),
    )
