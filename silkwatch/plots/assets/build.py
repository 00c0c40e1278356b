"""Rebuild the vendored chart assets from the npm registry (a maintainer's tool, not run by users).

The product inlines these files into every page so a chart opens with no
network at all; CI cannot fetch them either, so the outputs are committed and
this script documents where each byte came from:

* ``echarts.min.js`` — Apache ECharts (Apache-2.0), ``dist/echarts.min.js``.
* ``world.json`` — country shapes from ``world-atlas`` ``countries-110m.json``
  (ISC; Natural Earth, public domain) decoded from TopoJSON to GeoJSON, keyed by
  ISO 3166-1 alpha-2 code (numeric → alpha-2 and English names from
  ``i18n-iso-countries``, MIT), plus a point for each country that only the
  finer ``countries-50m.json`` has (Singapore, Bahrain, …) so no country the
  data names is left off the map.

Run: ``.venv/bin/python -m silkwatch.plots.assets.build`` (needs ``npm``).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

ECHARTS = "echarts@6.1.0"
WORLD_ATLAS = "world-atlas@2.0.2"
ISO_CODES = "i18n-iso-countries@7.14.0"
#: shapes world-atlas draws without an ISO number, folded into the country that claims them
UNNUMBERED = {"Kosovo": "XK", "N. Cyprus": "CY", "Somaliland": "SO"}
HERE = Path(__file__).resolve().parent
#: carried inside world.json, as the ISC and MIT licences of its sources ask
NOTICE = (
    "Country shapes: world-atlas 2.0.2, Copyright 2013-2019 Michael Bostock, ISC licence; "
    "data from Natural Earth (public domain). Country codes and names: i18n-iso-countries "
    "7.14.0, Copyright (c) 2016 widdix GmbH, MIT licence."
)


def npm_unpack(spec: str, into: Path) -> Path:
    """``npm pack`` one package version and unpack it; returns its ``package/`` folder."""
    out = subprocess.run(
        ["npm", "pack", spec, "--silent"], cwd=into, check=True, capture_output=True, text=True
    )
    target = into / spec.replace("@", "-")
    with tarfile.open(into / out.stdout.strip().splitlines()[-1]) as tar:
        tar.extractall(target, filter="data")
    return target / "package"


def decode_arcs(topology: dict) -> list[list[tuple[float, float]]]:
    """TopoJSON's quantised, delta-encoded arcs → absolute longitude/latitude lists."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((round(x * sx + tx, 2), round(y * sy + ty, 2)))
        arcs.append(points)
    return arcs


def ring(indices: list[int], arcs: list) -> list[tuple[float, float]]:
    """Join arcs into one closed ring; a negative index ``~i`` means arc ``i`` reversed."""
    points: list[tuple[float, float]] = []
    for index in indices:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        points.extend(arc[1:] if points else arc)
    return points


def unwrapped(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """A ring that jumps across the 180° meridian (Chukotka, Fiji) moved east of it.

    A flat map would otherwise draw an edge straight across the world; the
    ring around Antarctica, which spans every longitude, is left as it is.
    """
    jumps = any(abs(a[0] - b[0]) > 180 for a, b in itertools.pairwise(points))
    if not jumps or min(y for _, y in points) < -60:
        return points
    return [(x + 360 if x < 0 else x, y) for x, y in points]


def polygons(geometry: dict, arcs: list) -> list[list[list[tuple[float, float]]]]:
    """Any country geometry as a list of polygons (each a list of rings)."""
    if geometry["type"] == "Polygon":
        return [[unwrapped(ring(r, arcs)) for r in geometry["arcs"]]]
    if geometry["type"] == "MultiPolygon":
        return [[unwrapped(ring(r, arcs)) for r in polygon] for polygon in geometry["arcs"]]
    return []


def alpha2(geometry: dict, numeric_to_alpha2: dict[str, str]) -> str | None:
    """The ISO alpha-2 code of one world-atlas geometry."""
    return numeric_to_alpha2.get(geometry.get("id", "")) or UNNUMBERED.get(
        geometry["properties"]["name"]
    )


def country_shapes(topology: dict, numeric_to_alpha2: dict[str, str]) -> dict[str, list]:
    """alpha-2 code → polygons, merging shapes that share a code."""
    arcs = decode_arcs(topology)
    shapes: dict[str, list] = {}
    for geometry in topology["objects"]["countries"]["geometries"]:
        code = alpha2(geometry, numeric_to_alpha2)
        if code:
            shapes.setdefault(code, []).extend(polygons(geometry, arcs))
    return shapes


def centre(polys: list) -> list[float]:
    """A label point for a small country: the mean vertex of its largest outer ring."""
    outer = max((p[0] for p in polys), key=len)
    return [
        round(sum(x for x, _ in outer) / len(outer), 2),
        round(sum(y for _, y in outer) / len(outer), 2),
    ]


def build_world(atlas: Path, iso: Path) -> dict:
    """The ``world.json`` asset: GeoJSON features named by alpha-2, points, English names."""
    codes = json.loads((iso / "codes.json").read_text())
    numeric_to_alpha2 = {numeric: a2 for a2, _, numeric, *_ in codes}
    english = json.loads((iso / "langs" / "en.json").read_text())["countries"]
    coarse, fine = (
        country_shapes(json.loads((atlas / name).read_text()), numeric_to_alpha2)
        for name in ("countries-110m.json", "countries-50m.json")
    )
    features = [
        {
            "type": "Feature",
            "properties": {"name": code},
            "geometry": {"type": "MultiPolygon", "coordinates": polys},
        }
        for code, polys in sorted(coarse.items())
    ]
    points = {code: centre(polys) for code, polys in sorted(fine.items()) if code not in coarse}
    names = {code: (n[0] if isinstance(n, list) else n) for code, n in sorted(english.items())}
    names["XK"] = "Kosovo"
    geojson = {"type": "FeatureCollection", "features": features}
    return {"notice": NOTICE, "geojson": geojson, "points": points, "names": names}


def main() -> None:
    """Fetch the three packages and rewrite the committed assets."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        echarts = npm_unpack(ECHARTS, work)
        (HERE / "echarts.min.js").write_bytes((echarts / "dist" / "echarts.min.js").read_bytes())
        world = build_world(npm_unpack(WORLD_ATLAS, work), npm_unpack(ISO_CODES, work))
        (HERE / "world.json").write_text(json.dumps(world, separators=(",", ":")))


if __name__ == "__main__":
    main()
