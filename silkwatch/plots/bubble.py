"""``bubblechart FIELD``: the top hosts as bubbles, x = packets, y = bytes, size = records.

FlowPlotter drew the same three numbers for rwstats' top 20 and left the
reading to the eye. Here the axes are logarithmic (volumes span decades), the
exfiltration detector's robust bytes-vs-packets line is drawn through the
cloud, and the bins it would call outliers (``ExfilConfig.min_bubble_residual``
robust sigmas off the line) are coloured and added even when they are not in
the top N — they are usually small, which is why they matter.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from silkwatch.detectors import groupby
from silkwatch.detectors.schema import FlowBatch
from silkwatch.plots.page import Chart, Table
from silkwatch.plots.values import group, key_labels

DEFAULT_COUNT = 20
MIN_SYMBOL_PX, MAX_SYMBOL_PX = 8.0, 60.0
#: series name → colour; the names say which side of the line a bin is on
GROUPS = {
    "typical": "#5470c6",
    "above the line (many bytes per packet: upload, exfiltration)": "#d62728",
    "below the line (few bytes per packet: beacons, scans)": "#ff9f0e",
}


def bubblechart(
    batches: Sequence[FlowBatch],
    *,
    field: str,
    count: int = DEFAULT_COUNT,
    sigmas: float | None = None,
) -> Chart:
    """Top ``count`` bins of ``field`` by bytes, plus every outlier of the fitted line.

    :param field: rwstats key field(s), e.g. ``sip``, ``dcc`` or ``sip,dport``
    :param count: bins drawn besides the outliers. Default - 20 (FlowPlotter's)
    :param sigmas: distance from the line, in robust sigmas, that makes an
        outlier. Default - ``ExfilConfig().min_bubble_residual``
    """
    # scipy's optimiser: not for plot --help
    from silkwatch.detectors.exfil import ExfilConfig, fit_bubble

    sigmas = ExfilConfig().min_bubble_residual if sigmas is None else sigmas
    table = group(batches, field, "bytes,packets,records")
    fit = fit_bubble(table.columns["bytes"], table.columns["packets"])
    side = np.zeros(len(table), np.int64)
    side[fit.above(sigmas)] = 1
    side[fit.below(sigmas)] = 2
    ranked = groupby.top(table, "bytes", count=count).table
    outliers = np.flatnonzero(side)
    rows = np.unique(np.concatenate([rank_rows(table, ranked), outliers]))
    shown = table.take(rows)
    labels = key_labels(shown)
    records = shown.columns["records"].astype(np.float64)
    size = MIN_SYMBOL_PX + (MAX_SYMBOL_PX - MIN_SYMBOL_PX) * np.sqrt(
        records / max(records.max(initial=1), 1)
    )
    series = []
    for number, (name, colour) in enumerate(GROUPS.items()):
        chosen = np.flatnonzero(side[rows] == number)
        series.append(
            {
                "type": "scatter",
                "name": name,
                "itemStyle": {"color": colour, "opacity": 0.75},
                "data": [
                    {
                        "key": labels[i],
                        "value": [
                            int(shown.columns["packets"][i]),
                            int(shown.columns["bytes"][i]),
                            int(shown.columns["records"][i]),
                        ],
                        "symbolSize": round(float(size[i]), 1),
                    }
                    for i in chosen.tolist()
                ],
            }
        )
    series.append(fit_line(fit.slope, fit.intercept, shown.columns["packets"]))
    residual_sigmas = fit.sigmas[rows]
    return Chart(
        kind="bubble",
        title=(
            f"bytes vs packets for the top {len(ranked)} {field} by bytes and "
            f"{len(outliers)} outliers (±{sigmas:g} robust sigmas from the fitted line "
            f"bytes = 10^{fit.intercept:.2f} × packets^{fit.slope:.2f})"
        ),
        option={
            "legend": {"top": 0},
            "grid": {"left": 90, "right": 40, "top": 50, "bottom": 60},
            "xAxis": {"type": "log", "name": "packets", "nameLocation": "middle", "nameGap": 30},
            "yAxis": {"type": "log", "name": "bytes"},
            "series": series,
        },
        table=Table(
            columns=[field, "bytes", "packets", "records", "sigmas from line"],
            rows=[
                [
                    labels[i],
                    int(shown.columns["bytes"][i]),
                    int(shown.columns["packets"][i]),
                    int(shown.columns["records"][i]),
                    round(float(residual_sigmas[i]), 2),
                ]
                for i in np.argsort(-shown.columns["bytes"].astype(np.float64), kind="stable")
            ],
        ),
    )


def rank_rows(table: groupby.GroupTable, ranked: groupby.GroupTable) -> np.ndarray:
    """Row numbers in ``table`` of the bins ``ranked`` holds (both come from one group-by)."""
    index = {label: row for row, label in enumerate(key_labels(table))}
    return np.array([index[label] for label in key_labels(ranked)], dtype=np.int64)


def fit_line(slope: float, intercept: float, packets: np.ndarray) -> dict:
    """The fitted line as a two-point series across the drawn packet range."""
    low = max(float(packets.min(initial=1)), 1.0)
    high = max(float(packets.max(initial=1)), low * 10)
    ends = [[x, 10 ** (intercept + slope * np.log10(x))] for x in (low / 2, high * 2)]
    return {
        "type": "line",
        "name": "fitted line (Huber, log bytes vs log packets)",
        "data": [[round(x, 3), round(y, 3)] for x, y in ends],
        "showSymbol": False,
        "lineStyle": {"type": "dashed", "color": "#444"},
        "itemStyle": {"color": "#444"},
        "silent": True,
    }
