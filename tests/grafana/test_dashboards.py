"""Dashboards: SDK round-trip, committed JSON up to date, wall-display rules, and every
panel query naming only series that ``silkwatch.connectors.prometheus`` defines."""

from __future__ import annotations

import importlib
import json
import re

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard
from prometheus_client import CollectorRegistry

from silkwatch.connectors.prometheus import create_metrics
from silkwatch.grafana.build import (
    ANNOTATION_TAGS,
    DASHBOARD_DIR,
    DASHBOARDS,
    build_json,
    expand,
    iter_panels,
    panel_queries,
    write_dashboards,
)

#: PromQL words that look like names but are functions, keywords or label names
PROMQL_WORDS = {"by", "without", "or", "and", "unless", "on", "ignoring", "bool", "offset"}

#: series Prometheus makes itself for every scrape target (the workers-up panel)
PROMETHEUS_SERIES = {"up"}


def exported_names() -> set[str]:
    """Every sample name a fresh registry can expose (counters as _total, histograms' parts)."""
    names = set()
    registry = CollectorRegistry()
    create_metrics(registry)
    for family in registry.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
        for suffix in suffixes.get(family.type, [""]):
            names.add(family.name + suffix)
    return names


def metric_names(expr: str) -> set[str]:
    """Series names in a PromQL expression: identifiers that are not functions, keywords,
    label names in ``by (...)``, or inside ``{...}``, ``[...]`` and strings."""
    bare = re.sub(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]', " ", expr)
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", bare)
    words = re.findall(r"(?<![\w:.])[A-Za-z_:][\w:]*\b(?!\s*\()", bare)
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d.*", w)}


ALL_QUERIES = [
    pytest.param(name, title, expr, id=f"{name}:{title}:{i}")
    for name in DASHBOARDS
    for i, (title, expr) in enumerate(panel_queries(build_json(name)))
]


def test_exported_names_are_what_prometheus_sees():
    names = exported_names()
    assert {"silkwatch_flow_bytes_total", "silkwatch_batch_latency_seconds_bucket"} <= names
    assert "silkwatch_flow_bytes" not in names and len(names) == 22
    assert {
        "silkwatch_newest_flow_timestamp_seconds",
        "silkwatch_alerts_dead_lettered_total",
        "silkwatch_site_incomplete_closes_total",
    } <= names


@pytest.mark.parametrize(("dashboard", "title", "expr"), ALL_QUERIES)
def test_every_query_uses_only_defined_series(dashboard, title, expr):
    used = metric_names(expand(expr))
    assert used, f"{title}: no silkwatch series in {expr!r}"
    known = exported_names() | PROMETHEUS_SERIES
    assert used <= known, f"{title}: unknown series {used - known}"


def test_metric_name_parser():
    assert metric_names(
        'histogram_quantile(0.99, sum by (le) (rate(silkwatch_x_bucket{a="b"}[5m]))) or vector(0)'
    ) == {"silkwatch_x_bucket"}
    assert metric_names("silkwatch_a / silkwatch_b * 1000") == {"silkwatch_a", "silkwatch_b"}


@pytest.mark.parametrize("name", list(DASHBOARDS))
def test_round_trips_through_the_sdk_models(name):
    data = build_json(name)
    assert json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder)) == data
    # each panel's options and custom field config through its own panel model
    for panel in iter_panels(data):
        module = importlib.import_module(f"grafana_foundation_sdk.models.{panel['type']}")
        if "options" in panel:
            options = module.Options.from_json(panel["options"])
            assert json.loads(json.dumps(options, cls=JSONEncoder)) == panel["options"], panel[
                "title"
            ]
        custom = panel["fieldConfig"]["defaults"].get("custom")
        if custom is not None and hasattr(module, "FieldConfig"):
            config = module.FieldConfig.from_json(custom)
            assert json.loads(json.dumps(config, cls=JSONEncoder)) == custom, panel["title"]


@pytest.mark.parametrize("name", list(DASHBOARDS))
def test_committed_json_is_the_built_json(name):
    committed = json.loads((DASHBOARD_DIR / f"silkwatch-{name}.json").read_text())
    assert committed == build_json(name), (
        "run `silkwatch grafana build --out grafana/dashboards` and commit"
    )


def test_write_dashboards(tmp_path):
    paths = write_dashboards(tmp_path)
    assert [p.name for p in paths] == ["silkwatch-wall.json", "silkwatch-analyst.json"]
    assert json.loads(paths[0].read_text())["uid"] == "silkwatch-wall"


def test_build_writes_to_the_current_directory_not_the_package(tmp_path, monkeypatch, capsys):
    from silkwatch.cli import main

    before = {p: p.stat().st_mtime_ns for p in DASHBOARD_DIR.glob("*.json")}
    monkeypatch.chdir(tmp_path)
    assert main(["grafana", "build"]) == 0
    assert capsys.readouterr().out.split() == ["silkwatch-wall.json", "silkwatch-analyst.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "silkwatch-analyst.json",
        "silkwatch-wall.json",
    ]
    assert {p: p.stat().st_mtime_ns for p in DASHBOARD_DIR.glob("*.json")} == before
    assert main(["grafana", "build", "--out", "named/dir"]) == 0
    assert json.loads((tmp_path / "named/dir/silkwatch-wall.json").read_text())["uid"] == (
        "silkwatch-wall"
    )


def test_wall_display():
    wall = build_json("wall")
    assert wall["refresh"] == "30s"
    assert any("theme=dark" in link["url"] and "kiosk" in link["url"] for link in wall["links"])
    panels = {p["title"]: p for p in iter_panels(wall)}
    assert {title: p["type"] for title, p in panels.items() if p["type"] != "stat"} == {
        "Bytes per hour": "timeseries",
        "Top hosts: bytes vs packets": "xychart",
        "Destination countries": "geomap",
        "Alerts by severity": "timeseries",
        "Protocol mix (bytes)": "piechart",
        "Top talkers": "table",
        "Alert stream": "table",
        "Batch latency": "timeseries",
        "Consumer lag by topic": "timeseries",
        "Decode errors": "timeseries",
        "Alert delivery failures": "timeseries",
    }
    stats = [p for p in panels.values() if p["type"] == "stat"]
    assert [p["title"] for p in stats][-2:] == ["Workers up", "Data age"]
    assert len(stats) == 8
    assert all(p["options"]["text"]["valueSize"] >= 64 for p in stats)
    # one 1080p screen: no row reaches past 26 grid units (26 × 38 px − 8 = 980 px)
    assert max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels.values()) == 26
    assert all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in panels.values())
    # bubble chart: manual mapping, packets across, bytes up, size by bytes/packet
    (series,) = panels["Top hosts: bytes vs packets"]["options"]["series"]
    assert panels["Top hosts: bytes vs packets"]["options"]["mapping"] == "manual"
    axes = {axis: series[axis]["matcher"]["options"] for axis in ("x", "y", "size")}
    assert axes == {"x": "packets", "y": "bytes", "size": "bytes/packet"}
    (layer,) = panels["Destination countries"]["options"]["layers"]
    assert layer["location"] == {
        "mode": "lookup",
        "lookup": "country",
        "gazetteer": "public/gazetteer/countries.json",
    }
    tags = [a["target"]["tags"] for a in wall["annotations"]["list"] if "target" in a]
    assert tags == [ANNOTATION_TAGS]
    # the alert table: the sentence, and each severity in its colour
    alerts = panels["Alert stream"]
    assert "reason" in alerts["targets"][0]["expr"]
    overrides = {
        o["matcher"]["options"]: o["properties"] for o in alerts["fieldConfig"]["overrides"]
    }
    mappings, cells = overrides["severity"]
    assert mappings["value"][0]["options"] == {
        "low": {"color": "blue", "index": 0},
        "medium": {"color": "yellow", "index": 1},
        "high": {"color": "orange", "index": 2},
        "critical": {"color": "red", "index": 3},
    }
    assert cells == {"id": "custom.cellOptions", "value": {"type": "color-background"}}
    severity = panels["Alerts by severity"]
    assert severity["targets"][0]["expr"] == (
        "sum by (severity) (increase(silkwatch_alerts_total[5m]))"
    )
    assert severity["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"


def test_analyst_variables():
    analyst = build_json("analyst")
    variables = {v["name"]: v for v in analyst["templating"]["list"]}
    assert list(variables) == ["sensor", "flowtype", "host"]
    assert all(v["includeAll"] and v["multi"] and v["allValue"] == ".*" for v in variables.values())
    exprs = [expr for _, expr in panel_queries(analyst)]
    assert sum("$sensor" in e for e in exprs) == 5
    assert sum("$host" in e for e in exprs) == 6


def test_expand_replaces_longest_macro_first():
    assert expand("rate(x[$__rate_interval]) $__interval $host") == "rate(x[1m]) 15s .*"
