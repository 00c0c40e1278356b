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
from collections.abc import Callable, Iterable, Sequence
from functools import cache

import numpy as np

from connectors.geoip import CountryDB
from detectors.groupby import parse_values, value_title
from detectors.schema import FlowBatch
from silkwatch.plots.exceptions import PlotArgumentError
from silkwatch.plots.page import Chart, Table, asset
from silkwatch.plots.values import group

#: address column → country codes; ``CountryDB().country_codes`` by default
CountryLookup = Callable[[np.ndarray, np.ndarray], np.ndarray]
GEO_FIELDS = {"scc": "sip", "dcc": "dip"}
#: the batch column that carries the country while the group-by runs (see ``with_country``)
CARRIER = "application"


@cache
def world() -> dict:
    """The vendored shapes, dots and English names (see ``assets/build.py``)."""
    return json.loads(asset("world.json"))


def encode(codes: np.ndarray) -> np.ndarray:
    """Two-letter codes → one ``uint16`` each (first letter × 256 + second)."""
    raw = np.char.encode(np.asarray(codes, dtype="<U2"), "ascii")
    pairs = np.frombuffer(raw.astype("S2").tobytes(), dtype=np.uint8).reshape(-1, 2)
    return pairs[:, 0].astype(np.uint16) * 256 + pairs[:, 1]


def decode(numbers: np.ndarray) -> list[str]:
    """The inverse of :func:`encode`."""
    return [chr(n >> 8) + chr(n & 0xFF) for n in np.asarray(numbers, dtype=np.int64).tolist()]


def with_country(
    batches: Iterable[FlowBatch], address: str, lookup: CountryLookup
) -> Iterable[FlowBatch]:
    """Copies of the batches whose ``application`` column holds the country code, encoded.

    Why: the group-by keys on flow columns, and country is not one. Putting it
    in a column of a copy lets ``silkwatch uniq``'s own code count records,
    bytes and distinct addresses per country, so the map cannot disagree with it.
    """
    for batch in batches:
        copy = batch.copy()
        copy[CARRIER] = encode(lookup(batch[address], batch["ipv6"]))
        yield copy


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
    address = GEO_FIELDS.get(field.lower())
    if address is None:
        raise PlotArgumentError(f"plot geomap: field must be scc or dcc, not {field!r}")
    if lookup is None:
        lookup = CountryDB().country_codes
    table = group(with_country(batches, address, lookup), CARRIER, value)
    name = parse_values(value)[0]
    codes = decode(table.keys[CARRIER])
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
        title=f"{title} by {field.lower()} ({len(shown)} countries, {off_map} not placeable)",
        option=map_option(on_map, dots, places["points"], title),
        table=Table(
            columns=[field.lower(), "country", title, "%"],
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
