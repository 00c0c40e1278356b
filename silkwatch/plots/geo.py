"""``geomap scc|dcc VALUE``: a world map shaded by each country's share of the traffic.

FlowPlotter dropped ``--``, ``a1``, ``a2``, ``o1`` *and* ``us`` from its maps
before drawing; here nothing is hidden unless asked (``--exclude``). Countries
too small for the 1:110m shapes (Singapore, Bahrain…) are drawn as dots, and
codes with no place on a map (``--`` private or unknown) still appear in the
table under it. Shading follows log10 of the value, so one big country does not
wash out the others.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache

import numpy as np

from silkwatch.detectors.groupby import value_title
from silkwatch.detectors.schema import FlowBatch
from silkwatch.plots.country import COUNTRY_FIELDS, CountryLookup
from silkwatch.plots.exceptions import PlotArgumentError
from silkwatch.plots.page import Chart, Table, asset
from silkwatch.plots.values import field_labels, group


@cache
def world() -> dict:
    """The vendored shapes, dots and English names (see ``assets/build.py``)."""
    return json.loads(asset("world.json"))


def geomap(
    batches: Sequence[FlowBatch],
    *,
    field: str,
    value: str,
    exclude: Sequence[str] = (),
    lookup: CountryLookup | None = None,
) -> Chart:
    """Every country the addresses of ``field`` fall in, shaded by ``value``.

    :param field: ``scc`` (source country) or ``dcc`` (destination country)
    :param value: one rwstats value (``bytes``, ``records``, ``dIP-Distinct``...)
    :param exclude: country codes to leave out (FlowPlotter hid ``us``, ``--``...). Default - none
    :param lookup: address → country function. Default - the shipped GeoLite2 database
    """
    field = field.lower()
    if field not in COUNTRY_FIELDS:
        raise PlotArgumentError(f"plot geomap: field must be scc or dcc, not {field!r}")
    table = group(batches, field, value, lookup=lookup)
    name = table.values[0]
    codes = field_labels(table, field)
    numbers = [int(v) for v in table.columns[name].tolist()]
    skip = {code.upper() for code in exclude}
    shown = sorted(
        ((c, n) for c, n in zip(codes, numbers, strict=True) if c.upper() not in skip),
        key=lambda pair: (-pair[1], pair[0]),
    )
    title = value_title(name)
    total = sum(n for _, n in shown) or 1
    places = world()
    drawn = {feature["properties"]["name"] for feature in places["geojson"]["features"]}
    on_map = [(c, n) for c, n in shown if c in drawn]
    dots = [(c, n) for c, n in shown if c in places["points"]]
    off_map = len(shown) - len(on_map) - len(dots)
    return Chart(
        kind="geo",
        title=f"{title} by {field} ({len(shown)} countries, {off_map} not placeable)",
        option=map_option(on_map, dots, places["points"], title),
        table=Table(
            columns=[field, "country", title, "%"],
            rows=[
                [
                    c,
                    places["names"].get(c, "unknown or private" if c == "--" else ""),
                    n,
                    round(100.0 * n / total, 3),
                ]
                for c, n in shown
            ],
        ),
        height_px=620,
    )


def map_option(
    on_map: list[tuple[str, int]],
    dots: list[tuple[str, int]],
    points: dict[str, list[float]],
    title: str,
) -> dict:
    """A ``geo`` component with the map series shaded by log10(value) and a dot series."""
    values = [n for _, n in on_map + dots if n > 0]
    high = float(np.log10(max(values))) if values else 1.0
    low = float(np.floor(np.log10(min(values)))) if len(values) > 1 else 0.0
    return {
        "geo": {"map": "world", "roam": True, "itemStyle": {"areaColor": "#eef0f4"}},
        "visualMap": [
            {
                "type": "continuous",
                "min": min(low, high - 1),
                "max": round(high, 3),
                "dimension": dimension,
                "seriesIndex": index,
                "show": index == 0,
                "text": [f"10^{high:.1f} {title}", f"10^{min(low, high - 1):.1f}"],
                "calculable": True,
                "inRange": {"color": ["#d8e6f5", "#6baed6", "#08306b"]},
            }
            for index, dimension in ((0, 1), (1, 3))
        ],
        "series": [
            {
                "type": "map",
                "name": title,
                "geoIndex": 0,
                "data": [
                    {"name": c, "value": [n, round(float(np.log10(max(n, 1))), 4)]}
                    for c, n in on_map
                ],
            },
            {
                "type": "scatter",
                "name": title,
                "coordinateSystem": "geo",
                "symbolSize": 9,
                "data": [
                    {"name": c, "value": [*points[c], n, round(float(np.log10(max(n, 1))), 4)]}
                    for c, n in dots
                ],
            },
        ],
    }
