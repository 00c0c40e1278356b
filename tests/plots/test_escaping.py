"""Text that comes from the data is shown as text, never run or parsed as markup.

Hostile strings go everywhere data-derived text can reach a page: the title and
subtitle (``--title``, file names), axis labels and tooltips (keys), graph node
names, timeline rows, table cells and an alert's reason. Each payload, if it ever
became markup, would set ``window.__pwned`` or request ``x`` from the network.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from silkwatch.detectors.alerts import Alert
from silkwatch.plots.page import Chart, Page, Table, asset, render, script_hash, script_json
from silkwatch.plots.report import alerts_table
from silkwatch.plots.topn import SHAPES
from tests.plots.conftest import ARTIFACTS

HOSTILE = [
    "</script><script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    "<!--<script>window.__pwned=1</script>-->",
    '"><svg onload="window.__pwned=1">',
    "S1&amp;\u2028{b|rich}",
]


def hostile_page() -> Page:
    numbers = [5, 4, 3, 2, 1]
    bars = Chart(
        "topn",
        HOSTILE[0],
        SHAPES["barchart"](HOSTILE, numbers, HOSTILE[1]),
        Table([HOSTILE[2], "bytes"], [[h, n] for h, n in zip(HOSTILE, numbers, strict=True)]),
    )
    nodes = [{"name": h, "category": 0, "value": 1, "symbolSize": 10} for h in HOSTILE]
    links = [{"source": HOSTILE[0], "target": h, "value": 1} for h in HOSTILE[1:]]
    graph = Chart(
        "graph",
        HOSTILE[3],
        {
            "series": [
                {
                    "type": "graph",
                    "layout": "force",
                    "label": {"show": True},
                    "categories": [{"name": HOSTILE[4]}],
                    "data": nodes,
                    "links": links,
                }
            ]
        },
    )
    rows = [
        [i, 1434553200000 + i * 60_000, 1434553230000 + i * 60_000, h, 100]
        for i, h in enumerate(HOSTILE)
    ]
    timeline = Chart(
        "timeline",
        HOSTILE[4],
        {
            "xAxis": {"type": "time"},
            "yAxis": {"type": "category", "data": HOSTILE},
            "series": [{"type": "custom", "encode": {"x": [1, 2], "y": 0}, "data": rows}],
        },
    )
    alert = Alert("exfil", "high", 0.9, HOSTILE[1], "2001:db8::1", 443, 6, 0, 1, {}, HOSTILE[0])
    return Page(HOSTILE[0], HOSTILE[1], [bars, graph, timeline], [alerts_table([alert])])


#: the middle of the first (largest) bar of the first chart, in page pixels
FIRST_BAR = """(() => {
  const el = document.getElementById('chart-0'), chart = echarts.getInstanceByDom(el);
  const [x, y] = chart.convertToPixel({seriesIndex: 0}, [2.5, 0]), box = el.getBoundingClientRect();
  return [box.left + x, box.top + y];
})()"""


def test_script_json_cannot_close_the_script_or_open_a_comment():
    text = script_json(HOSTILE)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == HOSTILE


def test_page_source_holds_no_hostile_markup():
    html = render(hostile_page())
    for payload in HOSTILE[:4]:
        assert payload not in html
    assert html.count("<script") == 4  # data, world, echarts, runtime


@pytest.mark.chromium
def test_hostile_strings_appear_as_text(browser, tmp_path):
    page = tmp_path / "hostile.html"
    page.write_text(render(hostile_page()))
    readback = """JSON.stringify({
      pwned: window.__pwned === 1,
      title: document.title,
      h1: document.getElementById('title').textContent,
      subtitle: document.getElementById('subtitle').textContent,
      h2: [...document.querySelectorAll('h2')].map(h => h.textContent),
      cells: [...document.querySelectorAll('td, th')].map(c => c.textContent),
      svg: [...document.querySelectorAll('svg text')].map(t => t.textContent).join('\\n'),
      bar: [...document.querySelectorAll('#chart-0 svg text')].map(t => t.textContent),
      injected: document.querySelectorAll('img, main script, body > svg, h1 *, td *').length,
      scripts: document.scripts.length,
    })"""
    tab = browser.open(page)
    divs = tab.evaluate("document.querySelectorAll('div').length")
    x, y = tab.evaluate(FIRST_BAR)
    tab.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)  # the tooltip opens
    time.sleep(0.3)
    tooltip_divs = tab.evaluate("document.querySelectorAll('div').length") - divs
    readback = tab.evaluate(readback)
    tab.screenshot(ARTIFACTS / "hostile.png")
    result = tab.close(readback)
    assert result.errors == []
    assert result.requests == []
    seen = json.loads(result.readback)
    assert seen["pwned"] is False
    assert (seen["injected"], seen["scripts"]) == (0, 4)
    assert seen["title"] == seen["h1"] == HOSTILE[0]
    assert seen["subtitle"] == HOSTILE[1]
    assert seen["h2"][:3] == [HOSTILE[0], HOSTILE[3], HOSTILE[4]]
    for payload in HOSTILE:
        assert payload in seen["cells"]
    for payload in HOSTILE[:4]:
        assert payload in seen["svg"]
    # the tooltip is drawn by ECharts as SVG text (rich text), not as an HTML box: the
    # hovered bar's key shows as axis label and in the tooltip; HOSTILE[1] as a key, the
    # axis name and the tooltip's series name
    assert tooltip_divs == 0
    assert (seen["bar"].count(HOSTILE[0]), seen["bar"].count(HOSTILE[1])) == (2, 3)


@pytest.mark.parametrize("name", ["echarts.min.js", "runtime.js", "page.css", "world.json"])
def test_inlined_assets_cannot_end_their_element(name):
    text = asset(name).lower()
    assert "</script" not in text and "</style" not in text and "<!--" not in text


def test_csp_lets_only_the_pages_own_scripts_run():
    html = render(hostile_page())
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html).group(1)
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]
    assert directives["script-src"].split() == [
        script_hash(asset("echarts.min.js")),
        script_hash(asset("runtime.js")),
    ]
    assert directives["default-src"] == "'none'"


@pytest.mark.chromium
def test_csp_blocks_a_script_and_a_handler_that_got_into_the_page(browser, tmp_path):
    # as if escaping had failed: markup injected straight into the document
    injected = (
        '<div id="injected" onclick="window.__pwned=1">x</div>'
        "<script>window.__pwned=2</script>\n</body>"
    )
    page = tmp_path / "injected.html"
    head, tail = render(hostile_page()).rsplit("</body>", 1)
    page.write_text(head + injected + tail)
    tab = browser.open(page)
    tab.evaluate("document.getElementById('injected').click()")
    readback = tab.evaluate(
        "JSON.stringify({pwned: window.__pwned || 0, drawn: document.body.dataset.rendered,"
        " charts: document.querySelectorAll('#charts svg').length})"
    )
    result = tab.close(readback)
    seen = json.loads(result.readback)
    # the page's own scripts ran and drew; the injected ones did not run
    assert (seen["pwned"], seen["drawn"] is not None, seen["charts"]) == (0, True, 3)
    refused = [e for e in result.errors if "Content Security Policy" in e]
    assert len(refused) == 2, result.errors  # the inline script and the inline handler
