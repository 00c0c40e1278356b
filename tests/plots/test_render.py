"""Every chart, drawn by headless Chromium from the sample SiLK files through ``silkwatch plot``.

Per page: no console error or uncaught exception, no network request besides
the page itself, the marks ECharts drew per series and the rows of the value
table read back from the DOM, and a screenshot in ``tests/artifacts/`` for a
person to look at. One browser serves all pages (a tab each).
"""

from __future__ import annotations

import json
import math
import time

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
    from silkwatch.streams.embedded import detect

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
        for chart in build(build_parser("plot").parse_args(["plot", *arguments.split()]), [])
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


#: the first chart's nodes as page pixel positions, and the series zoom
GRAPH_NODES = """(() => {
  const el = document.getElementById('chart-0'), chart = echarts.getInstanceByDom(el);
  const series = chart.getModel().getSeries()[0], data = series.getData();
  const box = el.getBoundingClientRect(), nodes = [...Array(data.count()).keys()].map(i => {
    const [x, y] = chart.convertToPixel({seriesIndex: 0}, data.getItemLayout(i));
    return [box.left + x, box.top + y];
  });
  const middle = [box.left + box.width / 2, box.top + box.height / 2];
  return {nodes, middle, zoom: series.get('zoom')};
})()"""


def cooled(tab, timeout_s: float = 20.0) -> dict:
    """The graph once its force layout has nearly stopped (< 0.5 px in 0.2 s for every node)."""
    deadline = time.monotonic() + timeout_s
    now = tab.evaluate(GRAPH_NODES)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        before, now = now, tab.evaluate(GRAPH_NODES)
        moved = max(map(math.dist, now["nodes"], before["nodes"]))
        if moved < 0.5:
            break
    return now


def test_forcegraph_nodes_drag_and_the_graph_zooms(browser, tmp_path):
    page = tmp_path / "graph.html"
    assert main(["plot", "forcegraph", "sip", "dip", "bytes", str(V6MIX), "-o", str(page)]) == 0
    tab = browser.open(page)
    graph = cooled(tab)
    assert graph["zoom"] == 1
    # the node nearest the chart's middle: the layout starts from random places, and a press
    # near an edge could land on the legend or outside the window
    middle_x, middle_y = graph["middle"]
    node = min(range(10), key=lambda i: math.dist(graph["nodes"][i], (middle_x, middle_y)))
    x, y = graph["nodes"][node]
    mouse = {"button": "left", "clickCount": 1}
    tab.send("Input.dispatchMouseEvent", type="mousePressed", x=x, y=y, buttons=1, **mouse)
    snapshots = []
    for step in range(1, 11):  # the first move starts the drag and pins the node
        move = {"x": x + 12 * step, "y": y + 6 * step, "buttons": 1, "button": "left"}
        tab.send("Input.dispatchMouseEvent", type="mouseMoved", **move)
        snapshots.append(tab.evaluate(GRAPH_NODES)["nodes"])
    tab.send("Input.dispatchMouseEvent", type="mouseReleased", x=x + 120, y=y + 60, **mouse)
    first, last = snapshots[0], snapshots[-1]
    dragged = (last[node][0] - first[node][0], last[node][1] - first[node][1])
    assert dragged == pytest.approx((108, 54), abs=1)
    # a drag, not a pan of the whole graph (which moves every node 120 px): most other nodes
    # stay near where they were, though a leaf on the dragged node is pulled along
    others = sorted(math.dist(first[i], last[i]) for i in range(10) if i != node)
    assert others[4] < 40, others
    tab.send("Input.dispatchMouseEvent", type="mouseWheel", x=640, y=400, deltaX=0, deltaY=-400)
    assert tab.evaluate(GRAPH_NODES)["zoom"] == pytest.approx(1.1)
    result = tab.close()
    assert (result.errors, result.requests) == ([], [])
