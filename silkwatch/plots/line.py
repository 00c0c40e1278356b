"""``linechart BIN_SECONDS VALUES``: volumes per time bin, straight segments, empty bins as zero.

FlowPlotter piped ``rwcount`` into a smoothed Google line chart, which drew
curves through bins nobody measured and overshot below zero. Here every bin
from the first to the last is a point (bins without flows are 0, as rwcount
prints them), segments are straight, and each value gets its own panel so a
records line is not flattened by a bytes line a million times larger.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from silkwatch.detectors.alerts import iso_utc
from silkwatch.detectors.schema import FlowBatch
from silkwatch.detectors.timebins import BinVolumes, bin_volumes, empty_bins, fill_span, merge_bins
from silkwatch.plots.exceptions import PlotArgumentError
from silkwatch.plots.page import Chart, Table
from silkwatch.plots.values import distinct_per_bin

#: value names as rwcount and rwuniq spell them, lower-cased
VOLUME_VALUES = ("records", "bytes", "packets")
DISTINCT_VALUES = ("sip-distinct", "dip-distinct")
LINE_VALUES = VOLUME_VALUES + DISTINCT_VALUES
PANEL_HEIGHT_PX = 220


def parse_values(text: str) -> list[str]:
    """``"Bytes,packets"`` → ``["bytes", "packets"]``, rejecting names rwcount does not know.

    Examples
    --------
    >>> parse_values("Bytes,sIP-Distinct")
    ['bytes', 'sip-distinct']
    """
    values = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [value for value in values if value not in LINE_VALUES]
    if unknown or not values:
        named = ",".join(unknown) or text
        raise PlotArgumentError(
            f"plot linechart: value {named!r} unknown; choose from {', '.join(LINE_VALUES)}"
        )
    return values


def binned(batches: Iterable[FlowBatch], *, bin_ms: int, scheme: str) -> BinVolumes:
    """The rows ``silkwatch count`` prints: rwcount's bins over all batches, gaps as zero."""
    volumes = empty_bins()
    for batch in batches:
        volumes = merge_bins(volumes, bin_volumes(batch, bin_ms=bin_ms, scheme=scheme))
    return fill_span(volumes, bin_ms=bin_ms)


def on_grid(starts_ms: np.ndarray, values: np.ndarray, grid_ms: np.ndarray) -> np.ndarray:
    """``values`` at ``starts_ms`` placed on the bins of ``grid_ms`` (zero elsewhere)."""
    out = np.zeros(len(grid_ms))
    slot = np.searchsorted(grid_ms, starts_ms).clip(max=max(len(grid_ms) - 1, 0))
    inside = (grid_ms[slot] == starts_ms) if len(grid_ms) else np.zeros(len(starts_ms), bool)
    out[slot[inside]] = values[inside]
    return out


def linechart(
    batches: Sequence[FlowBatch],
    *,
    bin_s: int,
    values: Sequence[str],
    scheme: str = "time-proportional",
    log_scale: bool = False,
) -> Chart:
    """One panel per value, one point per ``bin_s`` bin from the first bin with bytes to the last.

    :param batches: the flows (iterated once, plus once per distinct-count value)
    :param bin_s: bin width in seconds, as ``rwcount --bin-size``
    :param values: from :data:`LINE_VALUES`
    :param scheme: rwcount load scheme for records/bytes/packets. Default - time-proportional
    :param log_scale: logarithmic y axes; empty bins then leave a gap instead of 0
    """
    if bin_s <= 0:
        raise PlotArgumentError(f"plot linechart: bin size must be positive seconds, not {bin_s}")
    bin_ms = bin_s * 1000
    volumes = binned(batches, bin_ms=bin_ms, scheme=scheme)
    grid_ms = volumes.bin_start_ms
    columns = {}
    for value in values:
        if value in DISTINCT_VALUES:
            starts, counts = distinct_per_bin(batches, field=value.split("-")[0], bin_ms=bin_ms)
            columns[value] = on_grid(starts, counts, grid_ms)
        else:
            columns[value] = getattr(volumes, value)
    return Chart(
        kind="line",
        title=f"{', '.join(values)} per {bin_s} s bin (UTC)",
        option=line_option(grid_ms, columns, log_scale=log_scale),
        table=Table(
            columns=["bin start (UTC)", *values],
            rows=[
                [iso_utc(int(start)), *(float(columns[v][i]) for v in values)]
                for i, start in enumerate(grid_ms)
            ],
        ),
        height_px=PANEL_HEIGHT_PX * max(len(values), 1) + 80,
    )


def line_option(grid_ms: np.ndarray, columns: dict[str, np.ndarray], *, log_scale: bool) -> dict:
    """Stacked panels sharing one time axis and one zoom slider."""
    panels = len(columns)
    option: dict = {
        "grid": [],
        "xAxis": [],
        "yAxis": [],
        "series": [],
        "tooltip": {"trigger": "axis"},
        "axisPointer": {"link": [{"xAxisIndex": "all"}]},
        "dataZoom": [{"type": "inside", "xAxisIndex": list(range(panels))}],
    }
    for i, (value, column) in enumerate(columns.items()):
        points = [
            [int(t), None if log_scale and v <= 0 else round(float(v), 3)]
            for t, v in zip(grid_ms.tolist(), column.tolist(), strict=True)
        ]
        option["grid"].append(
            {
                "left": 80,
                "right": 40,
                "top": 20 + i * PANEL_HEIGHT_PX,
                "height": PANEL_HEIGHT_PX - 60,
            }
        )
        option["xAxis"].append({"type": "time", "gridIndex": i})
        option["yAxis"].append(
            {"type": "log" if log_scale else "value", "gridIndex": i, "name": value, "scale": False}
        )
        option["series"].append(
            {
                "name": value,
                "type": "line",
                "xAxisIndex": i,
                "yAxisIndex": i,
                "smooth": False,
                "showSymbol": len(points) <= 200,
                "connectNulls": False,
                "data": points,
            }
        )
    return option
