"""Each chart's numbers are the shared aggregations' numbers, checked against SiLK's own output."""

from __future__ import annotations

import numpy as np
import pytest

from silkwatch.detectors.schema import make_batch
from silkwatch.plots import assets_tree, bubble, geo, graph, line, timeline, topn
from silkwatch.plots.exceptions import PlotArgumentError
from tests.plots.conftest import golden_rows


def test_linechart_rows_are_rwcount_output(fccx):
    chart = line.linechart(fccx, bin_s=300, values=["records", "bytes", "packets"])
    golden = golden_rows("fccx-rwcount-300-timeprop.txt")
    assert len(chart.table.rows) == len(golden) == 17
    for ours, theirs in zip(chart.table.rows, golden, strict=True):
        assert ours[0][:19].replace("-", "/") == theirs[0]
        assert [f"{v:.2f}" for v in ours[1:]] == theirs[1:]
    assert [len(s["data"]) for s in chart.option["series"]] == [17, 17, 17]
    assert chart.option["series"][0]["smooth"] is False


def test_linechart_distinct_sources_per_bin_and_log_gaps(v6mix):
    chart = line.linechart(v6mix, bin_s=600, values=["sip-distinct", "records"], log_scale=True)
    # sources starting per 10-minute bin: 2001:db8::1 and 10.0.0.5 at 15:0x, 192.0.2.10 at
    # 15:10, 10.0.0.8 at 15:20, 10.0.0.6 at 15:59:59.999. Records: the 1,800 s web answer
    # gives a third to 15:10, 15:20 and 15:30; 15:40 is empty but inside the span.
    third = 1 / 3
    assert [row[1:] for row in chart.table.rows] == [
        [2, 2],
        [1, third],
        [1, 1 + third],
        [0, third],
        [0, 0],
        [1, 1],
    ]
    assert [p[1] for p in chart.option["series"][0]["data"]] == [2, 1, 1, None, None, 1]


def test_linechart_rejects_unknown_values():
    with pytest.raises(PlotArgumentError, match="value 'octets' unknown"):
        line.parse_values("bytes,octets")


@pytest.mark.parametrize(
    ("shape", "fields", "value", "golden", "count"),
    [
        ("barchart", "sip", "bytes", "fccx-rwstats-sip-bytes-top10.txt", 10),
        ("columnchart", "dport", "records", "fccx-rwstats-dport-records-top10.txt", 10),
        ("piechart", "dport", "records", "fccx-rwstats-dport-records-top10.txt", 10),
        ("treemap", "sip", "bytes", "fccx-rwstats-sip-bytes-top10.txt", 10),
    ],
)
def test_topn_is_rwstats(fccx, shape, fields, value, golden, count):
    chart = topn.topn_chart(fccx, shape, fields=fields, value=value, count=count)
    expected = golden_rows(golden)
    assert [[row[0], str(row[1]), f"{row[2]:.3f}"] for row in chart.table.rows] == [
        [key, number, f"{float(percent):.3f}"] for key, number, percent, _ in expected
    ]
    assert len(chart.option["series"][0]["data"]) == 10


def test_topn_default_counts_are_flowplotters(fccx):
    assert len(topn.topn_chart(fccx, "treemap", fields="dip", value="bytes").table.rows) == 20
    assert len(topn.topn_chart(fccx, "piechart", fields="dip", value="bytes").table.rows) == 12


def test_bubblechart_fit_and_outliers(fccx):
    chart = bubble.bubblechart(fccx, field="sip")
    counts = [len(s["data"]) for s in chart.option["series"]]
    assert counts == [16, 2, 16, 2]  # typical, above, below, the fitted line's two ends
    above = [point["key"] for point in chart.option["series"][1]["data"]]
    assert above == ["192.168.40.100", "192.168.60.254"]
    assert chart.table.rows[0] == ["192.168.123.14", 31694474, 746440, 500, -17.18]
    assert "bytes = 10^2.38 × packets^1.02" in chart.title


def test_bubblechart_marks_an_exfil_like_host_outside_the_top_n():
    # 30 hosts at 100 bytes/packet, one small host at 1,400 bytes/packet
    packets = [1000 + 37 * i for i in range(30)] + [50]
    batch = make_batch(
        sip=[f"10.0.0.{i}" for i in range(31)],
        packets=packets,
        bytes=[100 * p for p in packets[:30]] + [50 * 1400],
    )
    chart = bubble.bubblechart([batch], field="sip", count=5)
    assert [p["key"] for p in chart.option["series"][1]["data"]] == ["10.0.0.30"]
    assert len(chart.option["series"][0]["data"]) == 5


def fake_countries(addresses: np.ndarray, ipv6: np.ndarray) -> np.ndarray:
    """IPv6 → JP, 10/8 → '--', 192.0.2/24 → SG (a dot: too small for the shapes), else US."""
    raw = np.ascontiguousarray(addresses).view(np.uint8).reshape(-1, 16)
    return np.where(
        ipv6, "JP", np.where(raw[:, 12] == 10, "--", np.where(raw[:, 12] == 192, "SG", "US"))
    )


def test_geomap_hides_no_country_and_places_small_ones_as_dots(v6mix):
    chart = geo.geomap(v6mix, field="dcc", value="bytes", lookup=fake_countries)
    assert chart.table.rows == [
        ["--", "unknown or private", 1900000000, 100.0],
        ["JP", "Japan", 4800, 0.0],
        ["US", "United States of America", 361, 0.0],
        ["SG", "Singapore", 252, 0.0],
    ]
    map_series, dots = chart.option["series"]
    assert [d["name"] for d in map_series["data"]] == ["JP", "US"]
    assert dots["data"] == [{"name": "SG", "value": [103.87, 1.37, 252, 2.4014]}]
    excluded = geo.geomap(
        v6mix, field="dcc", value="bytes", exclude=["us", "--"], lookup=fake_countries
    )
    assert [row[0] for row in excluded.table.rows] == ["JP", "SG"]


def test_geomap_with_the_shipped_database(fccx):
    chart = geo.geomap(fccx, field="dcc", value="bytes")
    assert [row[:3] for row in chart.table.rows] == [
        ["CA", "Canada", 310644309],
        ["--", "unknown or private", 103553411],
        ["US", "United States of America", 6413521],
        ["SE", "Sweden", 631121],
        ["JP", "Japan", 629328],
        ["NL", "Netherlands", 592146],
    ]
    assert sum(row[2] for row in chart.table.rows) == 422463836


def test_timeline_sessions(fccx):
    chart = timeline.timeline(fccx, fields=("sip", "dip"))
    assert len(chart.option["series"][0]["data"]) == 562
    assert chart.table.rows[0] == [
        "192.168.123.14 → 67.215.0.8",
        46,
        352,
        31385908,
        "2015-06-17T15:01:19.721Z",
        "2015-06-17T15:57:59.471Z",
    ]
    assert len(chart.table.rows) == 20


def test_timeline_ipv6_pair(v6mix):
    chart = timeline.timeline(v6mix, fields=("sip", "dip"), gap_s=0)
    assert chart.table.rows[1] == [
        "2001:db8::1 → 2001:db8::2",
        1,
        1,
        4800,
        "2015-06-17T15:01:02.345Z",
        "2015-06-17T15:01:14.690Z",
    ]


def test_forcegraph_top_pairs(fccx):
    chart = graph.forcegraph(fccx, source="sip", target="dip", value="distinct:dport", count=100)
    series = chart.option["series"][0]
    assert (len(series["links"]), len(series["data"])) == (100, 84)
    assert chart.table.rows[0] == ["192.168.40.20", "10.0.40.20", 4269]
    roles = [node["category"] for node in series["data"]]
    assert (roles.count(0), roles.count(1), roles.count(2)) == (57, 27, 0)  # src, dst, both


def test_assetdiscovery_on_samples(fccx, v6mix):
    chart = assets_tree.assetdiscovery(fccx)
    assert chart.table.rows == [
        ["DNS servers", "192.168.20.58", 1741238, 22300, 21804],
        ["DNS servers", "192.168.40.20", 1592138, 19182, 17084],
    ]
    assert assets_tree.assetdiscovery(v6mix).table.rows == [
        ["Web servers", "192.0.2.10", 1900000000, 2000000, 1]
    ]


def test_assetdiscovery_finds_each_service_in_both_families():
    ack = 0x12
    batch = make_batch(
        sip=[
            "2001:db8::80",
            "10.1.1.25",
            "2001:db8::53",
            "10.1.1.50",
            "2001:db8::21",
            "10.1.1.22",
            "2001:db8::23",
            "10.1.1.9",
        ],
        sport=[443, 993, 53, 0, 21, 22, 23, 22],
        proto=[6, 6, 17, 50, 6, 6, 6, 6],
        packets=[10, 10, 1, 1, 10, 10, 10, 3],  # the last has too few packets
        bytes=[5000, 4000, 80, 300, 900, 800, 700, 600],
        flags=[ack, ack, 0, 0, ack, ack, ack, ack],
    )
    rows = assets_tree.assetdiscovery([batch]).table.rows
    assert [(row[0], row[1]) for row in rows] == [
        ("Web servers", "2001:db8::80"),
        ("Mail servers", "10.1.1.25"),
        ("DNS servers", "2001:db8::53"),
        ("VPN servers", "10.1.1.50"),
        ("FTP servers", "2001:db8::21"),
        ("SSH servers", "10.1.1.22"),
        ("Telnet servers", "2001:db8::23"),
    ]


def test_country_fields_work_in_every_keyed_chart(fccx):
    """FlowPlotter's ``bubblechart dcc``: scc/dcc are key fields like any other."""
    tree = topn.topn_chart(fccx, "treemap", fields="dcc", value="bytes")
    world = geo.geomap(fccx, field="dcc", value="bytes")
    assert [row[:2] for row in tree.table.rows] == [[row[0], row[2]] for row in world.table.rows]
    bubbles = bubble.bubblechart(fccx, field="dcc")
    assert bubbles.table.rows[0][:4] == ["CA", 310644309, 1731329, 33261]
    edges = graph.forcegraph(fccx, source="sip", target="dcc", value="bytes", count=3)
    assert edges.table.rows == [
        ["192.168.123.14", "CA", 31385908],
        ["192.168.40.20", "--", 28455003],
        ["192.168.60.254", "--", 19654200],
    ]
    with pytest.raises(PlotArgumentError, match="one of scc, dcc per chart"):
        topn.topn_chart(fccx, "piechart", fields="scc,dcc", value="bytes")
