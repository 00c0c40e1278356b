"""A partition's detection state as bytes and back: numpy arrays and JSON, never pickle.

A checkpoint is an ``.npz`` archive (numpy's zip of ``.npy`` arrays, read with
``allow_pickle=False``, so no byte of it can run code) holding every column of
:class:`silkwatch.streams.detection.DetectionState` plus one JSON document for the
scalars and the alert ledger. Reading validates every array's dtype and
shape and rebuilds the key indexes (which refuse repeated keys); anything
wrong raises :class:`CheckpointError`, and the caller starts the partition
afresh and replays it instead of trusting the checkpoint.

Examples
--------
>>> from silkwatch.detectors.config import DetectorsConfig
>>> from silkwatch.detectors.schema import make_batch
>>> from silkwatch.streams.detection import DetectionProcessor
>>> from silkwatch.streams.processing import StreamConfig
>>> p = DetectionProcessor(3, StreamConfig(), DetectorsConfig())
>>> _ = p.process(make_batch(sip=["10.0.0.1"], dip=["1.2.3.4"], stime_ms=[5]), offset=41)
>>> state = load_state(dump_state(p.state, partition=3), DetectorsConfig(), partition=3)
>>> state.offset, len(state.pairs), state.pairs.history(0).events[:, 0].tolist()
(41, 1, [5])
>>> load_state(b"not a checkpoint", DetectorsConfig(), partition=3)
Traceback (most recent call last):
...
silkwatch.streams.checkpoint.CheckpointError: checkpoint of partition 3: not an npz archive ...
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from typing import Any

import numpy as np

from silkwatch.detectors.config import DetectorsConfig
from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.hoststate import TOTALS, HostHours
from silkwatch.detectors.keyindex import KeyIndex
from silkwatch.detectors.ledger import AlertLedger
from silkwatch.detectors.pairstate import EVENT_DTYPE, PAIR_COLUMNS, PairCounters, PairState
from silkwatch.detectors.schema import FLOW_DTYPE
from silkwatch.streams.detection import DetectionState
from silkwatch.streams.processing import Progress

#: bumped when the layout changes; an older checkpoint is rebuilt by replay
VERSION = 5

_PAIR_COLUMNS = {name: dtype for name, (dtype, _) in PAIR_COLUMNS.items()} | {"counts": np.int64}
#: the state's lists of flows deferred to a later hour close (own flows, received copies)
_DEFERRED = ("deferred", "deferred_copies")
#: every list of flows not applied yet: quarantined, then deferred
_HELD = ("quarantine", "quarantined_copies", *_DEFERRED)


class CheckpointError(SilkwatchError):
    """A checkpoint that cannot be trusted (corrupt, foreign, or of another version)."""

    reason = "bad_checkpoint"

    def __init__(self, partition: int, detail: str) -> None:
        super().__init__(f"checkpoint of partition {partition}: {detail}")
        self.partition = partition


def dump_state(state: DetectionState, *, partition: int) -> bytes:
    """The state as one ``.npz`` archive (uncompressed: it is mostly random keys)."""
    pairs = state.pairs
    pairs.compact()
    arrays: dict[str, np.ndarray] = {
        "pairs.keys": pairs.index.keys,
        "pairs.events": pairs.events.view(np.uint32).reshape(-1, 4),
        "pairs.overflow": _overflow_rows(pairs),
    }
    for name in _HELD:
        held = getattr(state, name)
        arrays[name] = np.concatenate(held) if held else np.zeros(0, FLOW_DTYPE)
    for name in _PAIR_COLUMNS:
        arrays[f"pairs.{name}"] = getattr(pairs, name)[: len(pairs)]
    for side in ("sent", "received"):
        hosts: HostHours = getattr(state, side)
        arrays[f"{side}.keys"] = hosts.index.keys
        arrays[f"{side}.totals"] = hosts.totals[: len(hosts)]
        arrays[f"{side}.first_ms"] = hosts.first_ms[: len(hosts)]
        arrays[f"{side}.last_ms"] = hosts.last_ms[: len(hosts)]
    meta = {
        "version": VERSION,
        "partition": partition,
        "offset": state.offset,
        "seq": state.seq,
        "closed_seq": state.closed_seq,
        "looked_seq": state.looked_seq,
        "shed_host_hours": state.shed_host_hours,
        "scored_until_ms": state.scored_until_ms,
        "closing_until_ms": state.closing_until_ms,
        "base_ms": pairs.base_ms,
        "pair_counters": dataclasses.asdict(pairs.counters),
        "progress": dataclasses.asdict(state.progress),
        "ledger": state.ledger.to_columns(),
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def load_state(data: bytes, detectors: DetectorsConfig, *, partition: int) -> DetectionState:
    """A state back from :func:`dump_state`; :class:`CheckpointError` if it cannot be trusted."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(partition, f"not an npz archive ({exc})") from exc
    try:
        return _state(arrays, detectors, partition)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise CheckpointError(partition, f"{type(exc).__name__}: {exc}") from exc


def _state(
    arrays: dict[str, np.ndarray], detectors: DetectorsConfig, partition: int
) -> DetectionState:
    meta = json.loads(typed_array(arrays, "meta", np.uint8, 1).tobytes())
    if meta.get("version") != VERSION or meta.get("partition") != partition:
        raise ValueError(f"version {meta.get('version')} of partition {meta.get('partition')}")
    pairs = PairState(detectors.pairs)
    keys = typed_array(arrays, "pairs.keys", np.uint64, 2)
    if keys.shape[1] != 5:
        raise ValueError(f"pair keys of width {keys.shape[1]}")
    pairs.index = KeyIndex.from_keys(keys)
    for name, dtype in _PAIR_COLUMNS.items():
        column = typed_array(arrays, f"pairs.{name}", dtype, 1)
        if len(column) != len(keys):
            raise ValueError(f"pairs.{name} has {len(column)} rows for {len(keys)} pairs")
        setattr(pairs, name, column.copy())
    events = typed_array(arrays, "pairs.events", np.uint32, 2)
    if events.shape[1] != 4 or len(events) != int(pairs.counts.sum()) or (pairs.counts < 0).any():
        raise ValueError("pair events do not match their counts")
    pairs.events = np.ascontiguousarray(events).view(EVENT_DTYPE).reshape(-1).copy()
    for slot, hour, *row in typed_array(arrays, "pairs.overflow", np.int64, 2).tolist():
        if not 0 <= slot < len(keys):
            raise ValueError(f"overflow of slot {slot}")
        pairs.overflow.setdefault(slot, {})[hour] = np.array(row, dtype=np.int64)
    pairs.base_ms = None if meta["base_ms"] is None else int(meta["base_ms"])
    pairs.counters = PairCounters(**meta["pair_counters"])
    sides = {}
    for side in ("sent", "received"):
        hosts = HostHours(side)
        host_keys = typed_array(arrays, f"{side}.keys", np.uint64, 2)
        if host_keys.shape[1] != 3:
            raise ValueError(f"{side} keys of width {host_keys.shape[1]}")
        hosts.index = KeyIndex.from_keys(host_keys)
        hosts.totals = typed_array(arrays, f"{side}.totals", np.int64, 2).copy()
        hosts.first_ms = typed_array(arrays, f"{side}.first_ms", np.int64, 1).copy()
        hosts.last_ms = typed_array(arrays, f"{side}.last_ms", np.int64, 1).copy()
        rows = {len(host_keys), len(hosts.totals), len(hosts.first_ms), len(hosts.last_ms)}
        if len(rows) != 1 or hosts.totals.shape[1] != len(TOTALS):
            raise ValueError(f"{side} columns disagree")
        sides[side] = hosts
    closing = meta.get("closing_until_ms")
    held = {}
    for name in _HELD:
        flows = arrays[name]
        if flows.dtype != FLOW_DTYPE:
            raise ValueError(f"{name} flows of another layout")
        # the same fields and offsets, but read back without the "aligned" mark: numpy
        # would concatenate it with fresh flows into a packed layout
        flows = flows.view(FLOW_DTYPE)
        if name in _DEFERRED:  # the processor finds what is due by bisection
            flows = flows[np.argsort(flows["stime_ms"], kind="stable")]
        held[name] = [flows] if len(flows) else []
    return DetectionState(
        pairs,
        sides["sent"],
        sides["received"],
        AlertLedger.from_columns(meta["ledger"], detectors.alerts),
        progress=Progress(**meta["progress"]),
        offset=int(meta["offset"]),
        seq=int(meta["seq"]),
        closed_seq=int(meta["closed_seq"]),
        looked_seq=int(meta["looked_seq"]),
        **held,
        shed_host_hours=int(meta["shed_host_hours"]),
        scored_until_ms=int(meta["scored_until_ms"]),
        closing_until_ms=None if closing is None else int(closing),
    )


def typed_array(arrays: dict[str, np.ndarray], name: str, dtype: Any, ndim: int) -> np.ndarray:
    """``arrays[name]`` when it has this dtype and number of dimensions, else ValueError
    (an archive read back from Kafka is checked before any of it is used)."""
    array = arrays[name]
    if array.dtype != np.dtype(dtype) or array.ndim != ndim:
        raise ValueError(f"{name} is {array.dtype} with {array.ndim} dimensions")
    return array


def _overflow_rows(pairs: PairState) -> np.ndarray:
    """The overflow totals as rows of (slot, hour_ms, flows, bytes, packets, duration_ms)."""
    rows = [
        [slot, hour, *row.tolist()]
        for slot, hours in pairs.overflow.items()
        for hour, row in hours.items()
    ]
    return np.array(rows, dtype=np.int64).reshape(-1, 6)
