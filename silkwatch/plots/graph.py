"""``forcegraph SRC DST VALUE COUNT``: who talks to whom, as a force-directed graph.

FlowPlotter's ``forceopacity`` took rwstats' top COUNT (SRC, DST) pairs by
VALUE and handed them to a D3 page that only Firefox could open from disk.
Same ranking here (the shared group-by); nodes are the distinct endpoints
(coloured as source, destination or both), edge width and node size follow
VALUE, and the graph can be dragged and zoomed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from silkwatch.detectors import groupby
from silkwatch.detectors.schema import FlowBatch
from silkwatch.plots.exceptions import PlotArgumentError
from silkwatch.plots.page import Chart, Table
from silkwatch.plots.values import field_labels, ranked

DEFAULT_COUNT = 50
ROLES = ("source", "destination", "both")
MIN_NODE_PX, MAX_NODE_PX = 8.0, 40.0
MIN_EDGE_PX, MAX_EDGE_PX = 1.0, 8.0


def scaled(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Sizes between ``low`` and ``high`` growing with the square root of ``values``."""
    values = np.asarray(values, dtype=np.float64)
    return low + (high - low) * np.sqrt(values / max(values.max(initial=0.0), 1.0))


def forcegraph(
    batches: Sequence[FlowBatch],
    *,
    source: str,
    target: str,
    value: str,
    count: int = DEFAULT_COUNT,
) -> Chart:
    """The top ``count`` (source, target) pairs by ``value`` as nodes and weighted edges."""
    if "," in source + target:
        raise PlotArgumentError(f"plot forcegraph: one field each side, not {source!r} {target!r}")
    top = ranked(batches, f"{source},{target}", value, count=count)
    names = top.table.fields
    sources, targets = (field_labels(top.table, name) for name in names)
    weights = top.table.columns[top.value].astype(np.float64)
    nodes: dict[str, dict] = {}
    for label, side in [*((s, 0) for s in sources), *((t, 1) for t in targets)]:
        node = nodes.setdefault(label, {"name": label, "category": side, "weight": 0.0})
        if node["category"] != side:
            node["category"] = 2
    for s, t, w in zip(sources, targets, weights.tolist(), strict=True):
        nodes[s]["weight"] += w
        if t != s:
            nodes[t]["weight"] += w
    sizes = scaled(np.array([n["weight"] for n in nodes.values()]), MIN_NODE_PX, MAX_NODE_PX)
    widths = scaled(weights, MIN_EDGE_PX, MAX_EDGE_PX)
    title = groupby.value_title(top.value)
    node_data = [
        {
            "name": n["name"],
            "category": n["category"],
            "value": int(n["weight"]),
            "symbolSize": round(float(size), 1),
        }
        for n, size in zip(nodes.values(), sizes.tolist(), strict=True)
    ]
    edges = [
        {"source": s, "target": t, "value": int(w), "lineStyle": {"width": round(float(px), 1)}}
        for s, t, w, px in zip(sources, targets, weights.tolist(), widths.tolist(), strict=True)
    ]
    return Chart(
        kind="graph",
        title=f"top {len(edges)} {names[0]} → {names[1]} pairs by {title}: {len(nodes)} endpoints",
        option={
            "legend": {"data": list(ROLES), "top": 0},
            "series": [
                {
                    "type": "graph",
                    "name": title,
                    "layout": "force",
                    "roam": True,
                    "draggable": True,
                    "categories": [{"name": role} for role in ROLES],
                    "label": {"show": len(nodes) <= 60, "position": "right", "fontSize": 11},
                    "edgeSymbol": ["none", "arrow"],
                    "edgeSymbolSize": 6,
                    "force": {
                        "repulsion": 180,
                        "edgeLength": [40, 140],
                        "gravity": 0.08,
                        "layoutAnimation": True,  # a dragged node follows the pointer only live
                    },
                    "lineStyle": {"color": "source", "opacity": 0.6, "curveness": 0.1},
                    "emphasis": {"focus": "adjacency"},
                    "data": node_data,
                    "links": edges,
                }
            ],
        },
        table=Table(
            columns=[names[0], names[1], title],
            rows=[
                [s, t, int(w)] for s, t, w in zip(sources, targets, weights.tolist(), strict=True)
            ],
        ),
        height_px=700,
    )
