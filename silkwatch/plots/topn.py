"""``treemap`` / ``piechart`` / ``barchart`` / ``columnchart FIELD VALUE``: rwstats' top-N drawn.

All four show the same ranking, ``rwstats --fields=FIELD --values=VALUE
--count=N`` (FlowPlotter used 20 for treemaps, 12 otherwise); only the marks
differ, so one function builds the data and one small table per shape says
how to draw it.
"""

from __future__ import annotations

from collections.abc import Sequence

from silkwatch.detectors.groupby import value_title
from silkwatch.detectors.schema import FlowBatch
from silkwatch.plots.page import Chart, Table
from silkwatch.plots.values import key_labels, ranked

#: FlowPlotter's default ``--count`` per chart
DEFAULT_COUNT = {"treemap": 20, "piechart": 12, "barchart": 12, "columnchart": 12}
TOPN_CHARTS = tuple(DEFAULT_COUNT)


def topn_chart(
    batches: Sequence[FlowBatch], shape: str, *, fields: str, value: str, count: int | None = None
) -> Chart:
    """The top ``count`` bins of ``fields`` by ``value`` as a treemap, pie, bar or column chart.

    :param shape: one of :data:`TOPN_CHARTS`
    :param fields: rwstats key fields, e.g. ``dip`` or ``sip,dport``
    :param value: one rwstats value (``bytes``, ``records``, ``sIP-Distinct``...)
    :param count: how many bins. Default - FlowPlotter's count for ``shape``
    """
    top = ranked(batches, fields, value, count=count or DEFAULT_COUNT[shape])
    labels = key_labels(top.table)
    numbers = [int(v) for v in top.table.columns[top.value].tolist()]
    title = value_title(top.value)
    key_title = ",".join(top.table.fields)
    option = SHAPES[shape](labels, numbers, title)
    return Chart(
        kind="topn",
        title=f"top {len(labels)} {key_title} by {title} ({top.bins} bins in all)",
        option=option,
        table=Table(
            columns=[key_title, title, "%", "cumulative %"],
            rows=[
                [label, number, round(float(p), 3), round(float(c), 3)]
                for label, number, p, c in zip(
                    labels, numbers, top.percent, top.cumulative_percent, strict=True
                )
            ],
        ),
    )


def treemap(labels: list[str], numbers: list[int], title: str) -> dict:
    """One rectangle per bin, area proportional to the value."""
    data = [{"name": label, "value": number} for label, number in zip(labels, numbers, strict=True)]
    return {
        "series": [
            {
                "type": "treemap",
                "name": title,
                "data": data,
                "roam": False,
                "nodeClick": False,
                "breadcrumb": {"show": False},
                "width": "96%",
                "height": "92%",
            }
        ]
    }


def piechart(labels: list[str], numbers: list[int], title: str) -> dict:
    """One slice per bin (rwstats' top N only: the rest of the traffic is not a slice)."""
    data = [{"name": label, "value": number} for label, number in zip(labels, numbers, strict=True)]
    return {
        "legend": {"type": "scroll", "orient": "vertical", "left": 10, "top": 20},
        "series": [{"type": "pie", "name": title, "data": data, "radius": ["0%", "65%"]}],
    }


def bars(labels: list[str], numbers: list[int], title: str, *, horizontal: bool) -> dict:
    """Bars in rank order: largest at the top (horizontal) or on the left (columns)."""
    category = {"type": "category", "data": labels, "axisLabel": {"interval": 0}}
    value = {"type": "value", "name": title}
    if horizontal:
        category = {**category, "inverse": True}
        axes = {"xAxis": value, "yAxis": category, "grid": {"left": 260, "right": 60}}
    else:
        category["axisLabel"] = {"interval": 0, "rotate": 30}
        axes = {"xAxis": category, "yAxis": value, "grid": {"left": 80, "bottom": 140}}
    return {**axes, "series": [{"type": "bar", "name": title, "data": numbers}]}


SHAPES = {
    "treemap": treemap,
    "piechart": piechart,
    "barchart": lambda labels, numbers, title: bars(labels, numbers, title, horizontal=True),
    "columnchart": lambda labels, numbers, title: bars(labels, numbers, title, horizontal=False),
}
