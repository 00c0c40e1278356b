"""Every chart, drawn by headless Chromium from the sample SiLK files through ``silkwatch plot``.

Per page: no console error or uncaught exception, no network request besides
the page itself, the marks ECharts drew per series and the rows of the value
table read back from the DOM, and a screenshot in ``tests/artifacts/`` for a
person to look at. One browser serves all pages (a tab each).
"""

from __future__ import annotations

import json

import pytest

from silkwatch.cli import build_parser, main
from silkwatch.commands.plot import build
from silkwatch.plots.page import Page, render
from silkwatch.plots.report import alerts_table
from tests.plots.conftest import ARTIFACTS, FCCX, V6MIX, page_data

pytestmark = pytest.mark.chromium

#: per chart section: kind, marks per series, table rows, and the SVG's text
READBACK = """JSON.stringify({
  rendered: document.body.dataset.rendered,
  charts: [...document.querySelectorAll('section[class^="chart-"]')].map(s => ({
    kind: s.querySelector('.chart').dataset.kind,
    marks: JSON.parse(s.querySelector('.chart').dataset.marks),
    rows: s.querySelectorAll('table tbody tr').length,
    svg: [...s.querySelectorAll('svg text')].map(t => t.textContent).join('\\n'),
  })),
  tables: [...document.querySelectorAll('section.table tbody')].map(t => t.rows.length),
})"""

#: (name, arguments, input, marks per series, table rows, a label the SVG must show)
CASES = [
    ("linechart-fccx", "linechart 300 bytes,records", FCCX, [17, 17], 17, "15:30"),
    ("linechart-v6mix", "linechart 60 packets,sIP-Distinct --log", V6MIX, [59, 59], 59, ""),
    ("bubblechart-fccx", "bubblechart sip", FCCX, [16, 2, 16, 2], 34, "packets"),
    ("bubblechart-v6mix", "bubblechart sip", V6MIX, [3, 1, 1, 2], 5, "packets"),
    ("geomap-fccx", "geomap dcc bytes", FCCX, [5, 0], 6, ""),
    ("geomap-v6mix", "geomap scc records", V6MIX, [0, 0], 1, ""),
    # a treemap's series also holds its (hidden) root node
    ("treemap-fccx", "treemap dip records", FCCX, [21], 20, "10.0.40.20"),
    ("treemap-v6mix", "treemap sip bytes", V6MIX, [6], 5, "192.0.2.10"),
    ("piechart-fccx", "piechart protocol bytes", FCCX, [4], 4, "17"),
    ("piechart-v6mix", "piechart protocol records", V6MIX, [3], 3, "6"),
    ("barchart-fccx", "barchart sip bytes", FCCX, [12], 12, "192.168.123.14"),
    ("barchart-v6mix", "barchart dip bytes", V6MIX, [5], 5, "2001:db8::2"),
    ("columnchart-fccx", "columnchart dport records", FCCX, [12], 12, "5723"),
    ("columnchart-v6mix", "columnchart dport bytes --count 3", V6MIX, [3], 3, "33333"),
    ("timeline-fccx", "timeline sip dip", FCCX, [562], 20, "192.168.123.14 → 67.215.0.8"),
    ("timeline-v6mix", "timeline sip dip", V6MIX, [5], 5, "2001:db8::1 → 2001:db8::2"),
    ("forcegraph-fccx", "forcegraph sip dip distinct:dport 100", FCCX, [84], 100, ""),
    ("forcegraph-v6mix", "forcegraph sip dip bytes", V6MIX, [10], 5, "2001:db8::2"),
    # tree nodes: ECharts' virtual root, "Assets", 7 services, then the servers
    ("assetdiscovery-fccx", "assetdiscovery", FCCX, [11], 2, "192.168.20.58"),
    ("assetdiscovery-v6mix", "assetdiscovery", V6MIX, [10], 1, "192.0.2.10"),
]


@pytest.mark.parametrize(("name", "arguments", "source", "marks", "rows", "label"), CASES)
def test_chart_renders_offline(browser, tmp_path, name, arguments, source, marks, rows, label):
    page = tmp_path / f"{name}.html"
    assert main(["plot", *arguments.split(), str(source), "-o", str(page)]) == 0
    result = browser.render(page, READBACK, ARTIFACTS / f"{name}.png")
    assert result.errors == []
    assert result.requests == []
    readback = json.loads(result.readback)
    assert readback["rendered"] == "1"
    [chart] = readback["charts"]
    assert (chart["marks"], chart["rows"]) == (marks, rows)
    assert label in chart["svg"]
    assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000


def test_report_page_holds_the_main_charts_and_the_detectors_alerts(browser, tmp_path, fccx):
    from streams.embedded import detect

    page = tmp_path / "report.html"
    assert main(["plot", "report", str(FCCX), "-o", str(page)]) == 0
    result = browser.render(page, READBACK, ARTIFACTS / "report-fccx.png")
    assert (result.errors, result.requests) == ([], [])
    readback = json.loads(result.readback)
    assert readback["rendered"] == "7"
    assert [(c["kind"], c["marks"]) for c in readback["charts"]] == [
        ("line", [85, 85]),
        ("topn", [10]),
        ("topn", [10]),
        ("topn", [12]),
        ("topn", [4]),
        ("geo", [5, 0]),
        ("bubble", [16, 2, 16, 2]),
    ]
    title, table = alerts_table(detect(fccx))
    [alerts] = page_data(page.read_text())["tables"]
    assert (alerts["title"], alerts["rows"]) == (title, table.rows)
    assert readback["tables"] == [len(table.rows)]


def test_no_flows_draw_every_chart_empty(browser, tmp_path):
    """An empty ``rwfilter`` result still gives a page, with empty charts and no script error."""
    charts = [
        chart
        for arguments in [case[1] for case in CASES if case[0].endswith("-v6mix")]
        for chart in build(build_parser().parse_args(["plot", *arguments.split()]), [])
    ]
    page = tmp_path / "empty.html"
    page.write_text(render(Page("no flows", "", charts)))
    result = browser.render(page, READBACK)
    assert (result.errors, result.requests) == ([], [])
    readback = json.loads(result.readback)
    assert readback["rendered"] == "10"
    # the bubble chart's fitted line keeps its two ends; the asset tree its root and services
    assert [c["marks"] for c in readback["charts"]] == [
        [0, 0],
        [0, 0, 0, 2],
        [0, 0],
        [1],
        [0],
        [0],
        [0],
        [0],
        [0],
        [9],
    ]
