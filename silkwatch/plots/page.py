"""One self-contained HTML page: inlined ECharts, the data as JSON, a small runtime.

Why one file with everything inlined: an analyst mails the page, opens it on an
air-gapped SOC desk, or archives it with a case; FlowPlotter's pages loaded
Google's chart loader at view time and showed nothing offline. A strict
Content-Security-Policy (``default-src 'none'``) makes the browser itself refuse
any request the page might try, and its ``script-src`` lists only the SHA-256
hashes of the page's own two scripts (ECharts and the runtime), never
``'unsafe-inline'``: a script element that escaping ever let through would not
run, nor would an inline event handler.

Safety: data-derived text (addresses, sensor names, alert reasons) travels only
inside a JSON ``<script type="application/json">`` block in which ``<``, ``>``
and ``&`` are written as ``\\u003c`` … escapes, so no string can close the
script element or open a comment; the runtime reads it with ``JSON.parse`` and
puts text on the page only through ``textContent`` and ECharts data (tooltips in
``richText`` mode, never HTML).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from typing import Any

#: the policy every page carries, less its script hashes: no fetch, no image, no font.
#: Styles stay inline (ECharts sets style attributes as it draws; styles run no code).
CSP_BASE = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)


def script_hash(script: str) -> str:
    """The CSP source that lets exactly this inline script run.

    Examples
    --------
    >>> script_hash("alert(1)")
    "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"
    """
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def csp(scripts: list[str]) -> str:
    """The page's Content-Security-Policy: only ``scripts`` may run (by hash).

    Examples
    --------
    >>> csp(["alert(1)"])  # doctest: +NORMALIZE_WHITESPACE
    "default-src 'none'; script-src 'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=';
     style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
    """
    hashes = " ".join(script_hash(script) for script in scripts)
    return CSP_BASE.replace("; style-src", f"; script-src {hashes}; style-src", 1)


@dataclass
class Table:
    """The numbers behind a chart, shown under it: exact values a reader can copy."""

    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Chart:
    """One chart: an ECharts option (plain JSON) plus what the runtime must add.

    :param kind: chart family (``line``, ``bubble``, ``geo``, ``topn``,
        ``timeline``, ``graph``, ``tree``); the runtime adds per-kind behaviour
        that JSON cannot carry (axis formatters, the timeline's bar drawing).
    :param title: heading above the chart
    :param option: the ECharts option, JSON-serialisable
    :param table: the exact values, shown as an HTML table below the chart
    :param height_px: drawing height. Default - 560
    """

    kind: str
    title: str
    option: dict[str, Any]
    table: Table | None = None
    height_px: int = 560


@dataclass
class Page:
    """A page: a title, a line saying what the input was, charts, optional extra tables."""

    title: str
    subtitle: str = ""
    charts: list[Chart] = field(default_factory=list)
    tables: list[tuple[str, Table]] = field(default_factory=list)


@cache
def asset(name: str) -> str:
    """The text of one vendored asset (read once per process)."""
    return resources.files("silkwatch.plots.assets").joinpath(name).read_text(encoding="utf-8")


def script_json(value: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``.

    Examples
    --------
    >>> script_json({"k": "</script><!--&"})
    '{"k": "\\\\u003c/script\\\\u003e\\\\u003c!--\\\\u0026"}'
    """
    text = json.dumps(value, ensure_ascii=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def needs_world(page: Page) -> bool:
    """Whether the page draws a map, so the 180 kB of country shapes are inlined."""
    return any(chart.kind == "geo" for chart in page.charts)


def render(page: Page) -> str:
    """The complete HTML document for ``page``."""
    data = {
        "title": page.title,
        "subtitle": page.subtitle,
        "charts": [asdict(chart) for chart in page.charts],
        "tables": [{"title": title, **asdict(table)} for title, table in page.tables],
    }
    world = asset("world.json") if needs_world(page) else "null"
    scripts = [asset("echarts.min.js"), asset("runtime.js")]
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n',
            f'<meta http-equiv="Content-Security-Policy" content="{csp(scripts)}">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            "<title>silkwatch</title>\n<style>",
            asset("page.css"),
            "</style></head>\n<body>\n",
            '<header><h1 id="title"></h1><p id="subtitle"></p></header>\n',
            '<main id="charts"></main>\n',
            '<script type="application/json" id="silkwatch-data">',
            script_json(data),
            "</script>\n",
            '<script type="application/json" id="silkwatch-world">',
            world,  # vendored file, built by build.py from public shapes; no '<' in it
            "</script>\n<script>",
            scripts[0],
            "</script>\n<script>",
            scripts[1],
            "</script>\n</body></html>\n",
        ]
    )
