"""``timeline FIELD FIELD``: start-to-end bars of each pair's sessions.

FlowPlotter ran ``rwsort | rwgroup --delta-field=stime --delta-value=2`` and
drew one bar per group. Here a session is a run of flows of one
(FIELD, FIELD) pair in which each flow starts no more than ``gap_s`` after
the latest end so far; rows are the ``count`` pairs with the most bytes
(``rwstats`` order, from the shared group-by), bars run from the session's
first start to its last end.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from silkwatch.detectors import groupby
from silkwatch.detectors.alerts import iso_utc
from silkwatch.detectors.schema import FLOW_DTYPE, FlowBatch
from silkwatch.plots.exceptions import PlotArgumentError
from silkwatch.plots.page import Chart, Table
from silkwatch.plots.values import key_labels, ranked

DEFAULT_COUNT = 20
DEFAULT_GAP_S = 2
#: most bars drawn; past it the longest-byte sessions are kept and the title says so
MAX_SESSIONS = 2000
#: fields whose key is the raw column (times and derived classes make poor rows)
ROW_FIELDS = ("sip", "dip", "sport", "dport", "protocol", "sensor", "type", "in", "out", "nhip")


def key_rows(columns: list[np.ndarray]) -> np.ndarray:
    """Several key columns → one comparable ``V`` value per row (their raw bytes side by side)."""
    raw = [
        np.ascontiguousarray(c).view(np.uint8).reshape(len(c), c.dtype.itemsize) for c in columns
    ]
    joined = np.ascontiguousarray(np.concatenate(raw, axis=1))
    return joined.view(f"V{joined.shape[1]}").reshape(-1)


def sessions(
    pair: np.ndarray, start_ms: np.ndarray, end_ms: np.ndarray, gap_ms: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split flows into sessions → (session id per flow in sorted order, that order).

    A flow opens a new session when its pair differs from the previous flow's
    (flows sorted by pair, then start) or it starts more than ``gap_ms`` after
    the latest end seen so far in its pair.

    Examples
    --------
    >>> ids, order = sessions(np.array([0, 0, 0, 1]), np.array([0, 5, 100, 1]),
    ...                       np.array([10, 6, 120, 2]), gap_ms=20)
    >>> ids[np.argsort(order)].tolist()
    [0, 0, 1, 2]
    """
    order = np.lexsort((start_ms, pair))
    pair, start, end = pair[order], start_ms[order], end_ms[order]
    base = start.min(initial=0)
    offset = np.int64(1) << 44  # > any span of ms in one plot: keeps pairs apart
    running = np.maximum.accumulate(pair.astype(np.int64) * offset + (end - base))
    latest_end = running - pair.astype(np.int64) * offset + base
    new = np.ones(len(pair), bool)
    new[1:] = (pair[1:] != pair[:-1]) | (start[1:] > latest_end[:-1] + gap_ms)
    return np.cumsum(new) - 1, order


def pair_flows(
    batches: Sequence[FlowBatch], columns: list[str], wanted: np.ndarray
) -> tuple[np.ndarray, FlowBatch]:
    """The flows whose key is one of ``wanted`` → (row of ``wanted`` per flow, the flows)."""
    order = np.argsort(wanted)
    rows, chosen = [np.zeros(0, np.int64)], [np.zeros(0, FLOW_DTYPE)]
    for batch in batches:
        keys = key_rows([batch[column] for column in columns])
        hit = np.isin(keys, wanted)
        rows.append(order[np.searchsorted(wanted[order], keys[hit])])
        chosen.append(batch[hit])
    return np.concatenate(rows), np.concatenate(chosen)


def timeline(
    batches: Sequence[FlowBatch],
    *,
    fields: tuple[str, str],
    count: int = DEFAULT_COUNT,
    gap_s: float = DEFAULT_GAP_S,
) -> Chart:
    """Sessions of the ``count`` pairs with the most bytes, as bars on a UTC time axis."""
    names = groupby.parse_fields(list(fields))
    if len(names) != 2 or any(name not in ROW_FIELDS for name in names):
        raise PlotArgumentError(
            f"plot timeline: needs two fields from {', '.join(ROW_FIELDS)}, not {fields}"
        )
    top = ranked(batches, ",".join(names), "bytes", count=count).table
    labels = [label.replace("|", " → ") for label in key_labels(top)]
    wanted = key_rows([top.keys[name] for name in names])
    pair, flows = pair_flows(batches, [groupby.KEY_FIELDS[name][1] for name in names], wanted)
    start = flows["stime_ms"].astype(np.int64)
    end = start + flows["elapsed_ms"].astype(np.int64)
    ids, order = sessions(pair, start, end, int(gap_s * 1000))
    first = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else ids
    found = {
        "pair": pair[order][first],
        "start": np.minimum.reduceat(start[order], first) if len(ids) else start,
        "end": np.maximum.reduceat(end[order], first) if len(ids) else end,
        "bytes": np.add.reduceat(flows["bytes"][order], first) if len(ids) else start,
        "flows": np.diff(np.r_[first, len(ids)]),
    }
    keep = np.sort(np.argsort(-found["bytes"].astype(np.float64), kind="stable")[:MAX_SESSIONS])
    shown = f"{len(keep)} of {len(first)}" if len(keep) < len(first) else str(len(first))
    return Chart(
        kind="timeline",
        title=(
            f"{shown} sessions (gap ≤ {gap_s:g} s) of the top {len(labels)} "
            f"{names[0]} → {names[1]} pairs by bytes (UTC)"
        ),
        option=timeline_option(labels, found, keep),
        table=Table(
            columns=[" → ".join(names), "sessions", "flows", "bytes", "first start", "last end"],
            rows=[pair_row(label, found, found["pair"] == r) for r, label in enumerate(labels)],
        ),
        height_px=max(300, 26 * len(labels) + 120),
    )


def pair_row(label: str, found: dict[str, np.ndarray], mine: np.ndarray) -> list:
    """One table row: a pair's session count, flows, bytes and overall extent."""
    if not mine.any():
        return [label, 0, 0, 0, "", ""]
    return [
        label,
        int(mine.sum()),
        int(found["flows"][mine].sum()),
        int(found["bytes"][mine].sum()),
        iso_utc(int(found["start"][mine].min())),
        iso_utc(int(found["end"][mine].max())),
    ]


def timeline_option(labels: list[str], found: dict[str, np.ndarray], keep: np.ndarray) -> dict:
    """One row per pair, one custom-drawn bar per session (``[row, start, end, label, bytes]``)."""
    data = [
        [
            int(found["pair"][i]),
            int(found["start"][i]),
            int(found["end"][i]),
            labels[found["pair"][i]],
            int(found["bytes"][i]),
        ]
        for i in keep.tolist()
    ]
    return {
        "grid": {"left": 280, "right": 40, "top": 30, "bottom": 60},
        "xAxis": {"type": "time"},
        "yAxis": {
            "type": "category",
            "data": labels,
            "inverse": True,
            "axisLabel": {"interval": 0},
        },
        "dataZoom": [{"type": "inside", "xAxisIndex": 0}, {"type": "slider", "xAxisIndex": 0}],
        "series": [
            {
                "type": "custom",
                "name": "sessions",
                "encode": {"x": [1, 2], "y": 0},
                "itemStyle": {"color": "#5470c6", "opacity": 0.8},
                "data": data,
            }
        ],
    }
