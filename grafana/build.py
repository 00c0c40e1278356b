"""The silkwatch Grafana dashboards, built with grafana-foundation-sdk (Grafana 11.6 schema).

Two dashboards read the series of ``silkwatch.connectors.prometheus`` through one
Prometheus datasource (uid ``silkwatch-prometheus``, provisioned by
``grafana/provisioning/datasources/prometheus.yml``):

- ``silkwatch-wall``: a wall display for 1920×1080 seen from across a room:
  big numbers on top, few panels, 30 s refresh, dark theme (the kiosk link sets
  ``theme=dark``; ``silkwatch grafana push`` also makes dark the org default).
- ``silkwatch-analyst``: the same data sliced by sensor, flowtype and host.

Every PromQL expression here must use only metric names that
``silkwatch.connectors.prometheus.create_metrics`` defines (and Prometheus's own ``up`` of
the ``silkwatch`` scrape job); ``tests/grafana`` checks it and runs each query
against a real Prometheus.

``silkwatch grafana build`` writes where the user says (``--out``), by default
the current directory, never into the installed package; the JSON committed in
``grafana/dashboards/`` (which compose mounts) is rebuilt with
``silkwatch grafana build --out grafana/dashboards``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import (
    common,
    geomap,
    piechart,
    prometheus,
    stat,
    table,
    timeseries,
    xychart,
)
from grafana_foundation_sdk.builders.dashboard import (
    AnnotationQuery,
    AnnotationTarget,
    Dashboard,
    DashboardLink,
    FieldColor,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    FrameGeometrySourceMode,
    GraphDrawStyle,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
)
from grafana_foundation_sdk.models.piechart import PieChartLegendValues
from grafana_foundation_sdk.models.prometheus import PromQueryFormat
from grafana_foundation_sdk.models.xychart import SeriesMapping

#: the committed dashboards (compose mounts them; ``tests/grafana`` checks they are current)
DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboards"

#: the Prometheus scrape job of the workers (``docker/prometheus/prometheus.yml``)
WORKER_JOB = "silkwatch"

#: a Grafana colour per alert severity (as ``silkwatch.connectors.alerting.text`` colours chat)
SEVERITY_COLOURS = {"low": "blue", "medium": "yellow", "high": "orange", "critical": "red"}

DATASOURCE_UID = "silkwatch-prometheus"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
GRAFANA_DATASOURCE = model.DataSourceRef(type_val="grafana", uid="-- Grafana --")

#: tags of the annotations ``silkwatch.connectors.alerting.grafana`` posts for each alert
ANNOTATION_TAGS = ["silkwatch", "alert"]

WALL_UID = "silkwatch-wall"
ANALYST_UID = "silkwatch-analyst"

#: Grafana's own macros and our variables, as Grafana would expand them for the
#: last hour; ``expand`` uses these to run panel queries against Prometheus directly
MACRO_DEFAULTS = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$sensor": ".*",
    "$flowtype": ".*",
    "$host": ".*",
}

_BIG = common.VizTextDisplayOptions().title_size(28).value_size(72)


def _query(expr: str, legend: str = "__auto", *, ref: str = "A") -> prometheus.Dataquery:
    """A range query (time series panels)."""
    return (
        prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)
    )


def _instant(expr: str, *, ref: str = "A", legend: str = "__auto") -> prometheus.Dataquery:
    """An instant query returned as a table (tables, XY chart, geomap, pie chart)."""
    return _query(expr, legend, ref=ref).instant().format(PromQueryFormat.TABLE)


def _thresholds(*steps: tuple[float | None, str]) -> ThresholdsConfig:
    return (
        ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


def _big_number(title: str, expr: str, unit: str, *steps: tuple[float | None, str]) -> stat.Panel:
    """A stat panel readable across a room: value only, large text, coloured background."""
    return (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(_query(expr).instant())
        .unit(unit)
        .text(_BIG)
        .graph_mode(BigValueGraphMode.NONE)
        .color_mode(BigValueColorMode.BACKGROUND)
        .thresholds(_thresholds(*(steps or ((None, "blue"),))))
        .height(4)
        .span(4)
    )


def _legend(*, bottom: bool = True) -> common.VizLegendOptions:
    return (
        common.VizLegendOptions()
        .display_mode(LegendDisplayMode.LIST)
        .placement(LegendPlacement.BOTTOM if bottom else LegendPlacement.RIGHT)
        .show_legend(True)
    )


def _transform(kind: str, **options: Any) -> model.DataTransformerConfig:
    return model.DataTransformerConfig(id_val=kind, options=options)


#: the labels of the alert-table series, the columns of the alert table
ALERT_LABELS = "kind, severity, sip, dip, dport, protocol, reason"


def _per_host(what: str, host: str = "") -> str:
    """One series per host, without ``__name__``/``instance``: the table transformations
    join the bytes and packets frames on the remaining ``host`` column."""
    return f"sum by (host) (silkwatch_top_host_{what}{host})"


def _matcher(field: str) -> xychart.MatcherConfig:
    return xychart.MatcherConfig().id("byName").options(field)


def bytes_per_hour(flt: str = "") -> timeseries.Panel:
    """The FlowPlotter line chart: bytes per hour, current hour climbing beside the last one."""
    return (
        timeseries.Panel()
        .title("Bytes per hour")
        .description(
            "Bytes of flows that started in the current hour (event time) and in the last "
            "closed hour, plus a rolling 60-minute sum of all flow bytes."
        )
        .datasource(DATASOURCE)
        .with_target(_query('silkwatch_hour_bytes{hour="current"}', "current hour", ref="A"))
        .with_target(
            _query('silkwatch_hour_bytes{hour="last_closed"}', "last closed hour", ref="B")
        )
        .with_target(
            _query(f"sum(increase(silkwatch_flow_bytes_total{flt}[1h]))", "rolling 60 min", ref="C")
        )
        .unit("decbytes")
        .line_width(3)
        .fill_opacity(10)
        .legend(_legend())
    )


def host_bubbles(host: str = "") -> xychart.Panel:
    """Bytes against packets for each top host; bubble size is bytes per packet."""
    return (
        xychart.Panel()
        .title("Top hosts: bytes vs packets")
        .description(
            "One bubble per top-N source host: packets across, bytes up, size = bytes per "
            "packet. Exfiltration sits high and large; beacons low and small."
        )
        .datasource(DATASOURCE)
        .with_target(_instant(_per_host("bytes", host), ref="A"))
        .with_target(_instant(_per_host("packets", host), ref="B"))
        .with_target(
            _instant(f"{_per_host('bytes', host)} / {_per_host('packets', host)}", ref="C")
        )
        .with_transformation(_transform("merge"))
        .with_transformation(
            _transform(
                "organize",
                excludeByName={"Time": True},
                renameByName={
                    "Value #A": "bytes",
                    "Value #B": "packets",
                    "Value #C": "bytes/packet",
                },
            )
        )
        .mapping(SeriesMapping.MANUAL)
        .series(
            [
                xychart.XYSeriesConfig()
                .name(xychart.XychartXYSeriesConfigName().fixed("hosts"))
                .frame(
                    xychart.XychartXYSeriesConfigFrame().matcher(
                        xychart.MatcherConfig().id("byIndex").options(0)
                    )
                )
                .x(xychart.XychartXYSeriesConfigX().matcher(_matcher("packets")))
                .y(xychart.XychartXYSeriesConfigY().matcher(_matcher("bytes")))
                .size(xychart.XychartXYSeriesConfigSize().matcher(_matcher("bytes/packet")))
            ]
        )
        .point_size(xychart.XychartFieldConfigPointSize().min(8).max(60))
        .unit("short")
    )


def country_map(window: str = "1h") -> geomap.Panel:
    """Bytes by destination country as circles on a world map (all sensors: no such label)."""
    markers = (
        common.MapLayerOptions()
        .type("markers")
        .name("bytes by destination country")
        .location(
            common.FrameGeometrySource()
            .mode(FrameGeometrySourceMode.LOOKUP)
            .lookup("country")
            .gazetteer("public/gazetteer/countries.json")
        )
        .config(
            {
                "showLegend": True,
                "style": {
                    "size": {"field": "Value", "min": 4, "max": 40, "fixed": 5},
                    "color": {"field": "Value"},
                    "opacity": 0.6,
                },
            }
        )
        .tooltip(True)
    )
    return (
        geomap.Panel()
        .title("Destination countries")
        .description(
            f"Bytes sent to each destination country in the last {window} (Geo-IP of dIP)."
        )
        .datasource(DATASOURCE)
        .with_target(
            _instant(
                f"sum by (country) (increase(silkwatch_destination_country_bytes_total[{window}]))"
            )
        )
        .view(geomap.MapViewConfig().id("zero").lat(20).lon(0).zoom(1))
        .basemap(common.MapLayerOptions().type("default").name("basemap"))
        .layers([markers])
        .unit("decbytes")
        .color_scheme(FieldColor().mode(model.FieldColorModeId.CONTINUOUS_YL_RD))
    )


def protocol_mix(flt: str = "", window: str = "1h") -> piechart.Panel:
    """Share of bytes per protocol."""
    return (
        piechart.Panel()
        .title("Protocol mix (bytes)")
        .description(f"Share of bytes per IP protocol in the last {window}.")
        .datasource(DATASOURCE)
        .with_target(
            _instant(
                f"sum by (protocol) (increase(silkwatch_flow_bytes_total{flt}[{window}]))",
                legend="{{protocol}}",
            )
        )
        .unit("decbytes")
        .legend(
            piechart.PieChartLegendOptions()
            .display_mode(LegendDisplayMode.TABLE)
            .placement(LegendPlacement.RIGHT)
            .show_legend(True)
            .values([PieChartLegendValues.PERCENT])
        )
    )


def top_talkers(host: str = "") -> table.Panel:
    """The top-N source hosts by bytes, with their packets."""
    return (
        table.Panel()
        .title("Top talkers")
        .description("Source hosts that sent the most bytes (the top-N exported by the worker).")
        .datasource(DATASOURCE)
        .with_target(_instant(f"sort_desc({_per_host('bytes', host)})", ref="A"))
        .with_target(_instant(_per_host("packets", host), ref="B"))
        .with_transformation(_transform("merge"))
        .with_transformation(
            _transform(
                "organize",
                excludeByName={"Time": True},
                renameByName={"Value #A": "bytes", "Value #B": "packets"},
            )
        )
        .with_transformation(_transform("sortBy", sort=[{"field": "bytes", "desc": True}]))
        .unit("short")
        .override_by_name("bytes", [model.DynamicConfigValue(id_val="unit", value="decbytes")])
    )


def _severity_mappings() -> model.DynamicConfigValue:
    """Value mappings that colour each severity word."""
    options = {
        word: {"color": colour, "index": index}
        for index, (word, colour) in enumerate(SEVERITY_COLOURS.items())
    }
    return model.DynamicConfigValue(
        id_val="mappings", value=[{"type": "value", "options": options}]
    )


def alert_table() -> table.Panel:
    """The most recent alerts, newest first, each with its sentence and severity colour."""
    return (
        table.Panel()
        .title("Alert stream")
        .description(
            "The most recent alerts (kind, severity, hosts, port, score, time of the last flow) "
            "and the sentence that explains each. Each alert is also an annotation on the "
            "time series panels."
        )
        .datasource(DATASOURCE)
        .with_target(_instant(f"max by ({ALERT_LABELS}) (silkwatch_recent_alert_score)", ref="A"))
        .with_target(
            _instant(
                f"max by ({ALERT_LABELS}) "
                "(silkwatch_recent_alert_last_seen_timestamp_seconds) * 1000",
                ref="B",
            )
        )
        .with_transformation(_transform("merge"))
        .with_transformation(
            _transform(
                "organize",
                excludeByName={"Time": True},
                renameByName={"Value #A": "score", "Value #B": "last seen"},
            )
        )
        .with_transformation(_transform("sortBy", sort=[{"field": "last seen", "desc": True}]))
        .override_by_name(
            "last seen", [model.DynamicConfigValue(id_val="unit", value="dateTimeAsIso")]
        )
        .override_by_name("score", [model.DynamicConfigValue(id_val="decimals", value=2)])
        .override_by_name(
            "severity",
            [
                _severity_mappings(),
                model.DynamicConfigValue(
                    id_val="custom.cellOptions", value={"type": "color-background"}
                ),
            ],
        )
        .override_by_name(
            "reason",
            [
                model.DynamicConfigValue(id_val="custom.width", value=480),
                model.DynamicConfigValue(id_val="custom.inspect", value=True),
            ],
        )
    )


def alerts_by_severity(window: str = "$__rate_interval") -> timeseries.Panel:
    """Alerts raised per severity, stacked bars in the severity colours."""
    panel = (
        timeseries.Panel()
        .title("Alerts by severity")
        .description("Alerts raised, by severity (stacked), per interval.")
        .datasource(DATASOURCE)
        .with_target(
            _query(
                f"sum by (severity) (increase(silkwatch_alerts_total[{window}]))", "{{severity}}"
            )
        )
        .unit("short")
        .draw_style(GraphDrawStyle.BARS)
        .fill_opacity(80)
        .stacking(common.StackingConfig().mode(StackingMode.NORMAL))
        .legend(_legend())
    )
    for word, colour in SEVERITY_COLOURS.items():
        panel = panel.override_by_name(
            word,
            [
                model.DynamicConfigValue(
                    id_val="color", value={"mode": "fixed", "fixedColor": colour}
                )
            ],
        )
    return panel


#: seconds since the newest flow of the stalest flows partition (event time vs now)
FRESHNESS = "time() - min(silkwatch_newest_flow_timestamp_seconds)"


def freshness_by_partition() -> timeseries.Panel:
    """How old the newest flow of each partition is: a stalled sensor or publisher shows."""
    return _series(
        "Data freshness by partition",
        "Seconds between now and the newest flow seen on each flows partition (event time). "
        "A partition whose line climbs gets no new flows.",
        "s",
        _query(
            "time() - max by (partition) (silkwatch_newest_flow_timestamp_seconds)",
            "partition {{partition}}",
        ),
    )


def _series(title: str, description: str, unit: str, *targets: prometheus.Dataquery):
    panel = timeseries.Panel().title(title).description(description).datasource(DATASOURCE)
    for target in targets:
        panel = panel.with_target(target)
    return panel.unit(unit).line_width(2).legend(_legend())


def pipeline_health() -> list:
    """Latency, lag, decode errors and delivery failures: is the pipeline keeping up?"""
    latency = "sum by (le) (rate(silkwatch_batch_latency_seconds_bucket[5m]))"
    return [
        _series(
            "Batch latency",
            "Median and 99th percentile time from receiving a batch to its scores.",
            "s",
            _query(
                f"histogram_quantile(0.5, {latency})",
                "p50",
                ref="A",
            ),
            _query(
                f"histogram_quantile(0.99, {latency})",
                "p99",
                ref="B",
            ),
        ),
        _series(
            "Consumer lag by topic",
            "Messages the worker still has to read, per topic.",
            "short",
            _query("sum by (topic) (silkwatch_kafka_consumer_lag_messages)", "{{topic}}"),
        ),
        _series(
            "Decode errors",
            "Records or frames that could not be decoded in the last hour, by reason.",
            "short",
            _query(
                "sum by (reason) (increase(silkwatch_decode_errors_total[1h])) or vector(0)",
                "{{reason}}",
            ),
        ),
        _series(
            "Alert delivery failures",
            "Failed webhook/chat deliveries in the last hour (retried until acknowledged), "
            "and invalid alert records sent to the dead-letter topic (sink dead-letter).",
            "short",
            _query(
                "sum by (sink, reason) (increase(silkwatch_alert_delivery_failures_total[1h]))"
                " or label_replace(sum by (reason) (increase("
                'silkwatch_alerts_dead_lettered_total[1h])), "sink", "dead-letter", "", "")'
                " or vector(0)",
                "{{sink}} {{reason}}",
            ),
        ),
    ]


def _annotations(dash: Dashboard) -> Dashboard:
    """Alerts as annotations: the ones the delivery loop posts, and one from the counters."""
    return dash.annotation(
        AnnotationQuery()
        .name("silkwatch alerts")
        .datasource(GRAFANA_DATASOURCE)
        .enable(True)
        .icon_color("red")
        .target(AnnotationTarget().type("tags").tags(ANNOTATION_TAGS).match_any(False).limit(200))
    ).annotation(
        AnnotationQuery()
        .name("alert counts")
        .datasource(DATASOURCE)
        .enable(False)
        .icon_color("orange")
        .expr("sum by (kind, severity) (increase(silkwatch_alerts_total[1m])) > 0")
    )


def wall_dashboard() -> Dashboard:
    """The wall display: 1920×1080, dark, 30 s refresh, big numbers first."""
    dash = (
        Dashboard("silkwatch — wall")
        .uid(WALL_UID)
        .tags(["silkwatch", "wall"])
        .description("SOC wall display: traffic volume, top hosts, countries, alerts, health.")
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("utc")
        .readonly()
        .link(
            DashboardLink("Wall mode (kiosk, dark)")
            .type(model.DashboardLinkType.LINK)
            .url(f"/d/{WALL_UID}?kiosk&theme=dark")
        )
        .link(
            DashboardLink("Analyst view")
            .type(model.DashboardLinkType.LINK)
            .url(f"/d/{ANALYST_UID}")
        )
    )
    dash = _annotations(dash)
    # Four bands, no collapsible rows: 4 + 9 + 8 + 5 = 26 grid units, which at
    # Grafana's 30 px + 8 px margin per unit is 980 px: one 1080p screen, no scrolling.
    panels = [
        _big_number(
            "Bytes this hour", 'sum(silkwatch_hour_bytes{hour="current"})', "decbytes"
        ).span(3),
        _big_number(
            "Bytes last hour", 'sum(silkwatch_hour_bytes{hour="last_closed"})', "decbytes"
        ).span(3),
        _big_number("Flows / s", "sum(rate(silkwatch_flows_total[5m]))", "short").span(3),
        _big_number(
            "Alerts (1 h)",
            "sum(increase(silkwatch_alerts_total[1h])) or vector(0)",
            "short",
            (None, "green"),
            (1, "orange"),
            (10, "red"),
        ).span(3),
        _big_number(
            "Consumer lag",
            "sum(silkwatch_kafka_consumer_lag_messages) or vector(0)",
            "short",
            (None, "green"),
            (10_000, "orange"),
            (1_000_000, "red"),
        ).span(3),
        _big_number(
            "Load shedding",
            "max(silkwatch_load_shed_active)",
            "bool_on_off",
            (None, "green"),
            (1, "red"),
        ).span(3),
        _big_number(
            "Workers up",
            f'sum(up{{job="{WORKER_JOB}"}})',
            "short",
            (None, "red"),
            (1, "green"),
        ).span(3),
        _big_number(
            "Data age",
            FRESHNESS,
            "s",
            (None, "green"),
            (300, "orange"),
            (900, "red"),
        ).span(3),
        bytes_per_hour().height(9).span(6),
        host_bubbles().height(9).span(6),
        country_map().height(9).span(6),
        alerts_by_severity("5m").height(9).span(6),
        protocol_mix().height(8).span(4),
        top_talkers().height(8).span(6),
        alert_table().height(8).span(14),
        *(panel.height(5).span(6) for panel in pipeline_health()),
    ]
    for panel in panels:
        dash = dash.with_panel(panel)
    return dash


def _variable(name: str, label: str, query: str) -> QueryVariable:
    return (
        QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query({"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"})
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def analyst_dashboard() -> Dashboard:
    """The analyst view: every traffic panel filtered by sensor, flowtype and host."""
    flt = '{sensor=~"$sensor", flowtype=~"$flowtype"}'
    rate = "[$__rate_interval]"
    host = '{host=~"$host"}'
    dash = (
        Dashboard("silkwatch — analyst")
        .uid(ANALYST_UID)
        .tags(["silkwatch", "analyst"])
        .description("Flow volume, hosts, countries and alerts, by sensor, flowtype and host.")
        .time("now-24h", "now")
        .refresh("1m")
        .timezone("utc")
        .with_variable(_variable("sensor", "Sensor", "label_values(silkwatch_flows_total, sensor)"))
        .with_variable(
            _variable("flowtype", "Flowtype", "label_values(silkwatch_flows_total, flowtype)")
        )
        .with_variable(_variable("host", "Host", "label_values(silkwatch_top_host_bytes, host)"))
        .link(
            DashboardLink("Wall display").type(model.DashboardLinkType.LINK).url(f"/d/{WALL_UID}")
        )
    )
    dash = _annotations(dash)
    return (
        dash.with_row(Row("Volume"))
        .with_panel(
            _series(
                "Bytes / s by protocol",
                "Flow bytes per second, by protocol, for the chosen sensors and flowtypes.",
                "Bps",
                _query(
                    f"sum by (protocol) (rate(silkwatch_flow_bytes_total{flt}{rate}))",
                    "{{protocol}}",
                ),
            )
            .height(8)
            .span(12)
        )
        .with_panel(
            _series(
                "Flows / s by sensor and flowtype",
                "Flow records per second.",
                "short",
                _query(
                    f"sum by (sensor, flowtype) (rate(silkwatch_flows_total{flt}{rate}))",
                    "S{{sensor}} type {{flowtype}}",
                ),
            )
            .height(8)
            .span(12)
        )
        .with_panel(bytes_per_hour(flt).height(8).span(12))
        .with_panel(
            _series(
                "Packets / s by protocol",
                "Packets per second, by protocol.",
                "pps",
                _query(
                    f"sum by (protocol) (rate(silkwatch_flow_packets_total{flt}{rate}))",
                    "{{protocol}}",
                ),
            )
            .height(8)
            .span(12)
        )
        .with_row(Row("Hosts and countries"))
        .with_panel(host_bubbles(host).height(10).span(12))
        .with_panel(top_talkers(host).height(10).span(12))
        .with_panel(
            _series(
                "Bytes per packet of top hosts",
                "Average packet size of each selected top host over time.",
                "decbytes",
                _query(
                    f"silkwatch_top_host_bytes{host} / silkwatch_top_host_packets{host}",
                    "{{host}}",
                ),
            )
            .height(10)
            .span(12)
        )
        .with_panel(country_map(window="$__range").height(10).span(12))
        .with_panel(protocol_mix(flt, window="$__range").height(10).span(8))
        .with_row(Row("Alerts"))
        .with_panel(alerts_by_severity().height(8).span(12))
        .with_panel(freshness_by_partition().height(8).span(12))
        .with_panel(alert_table().height(10).span(24))
    )


DASHBOARDS = {"wall": wall_dashboard, "analyst": analyst_dashboard}


def build_json(name: str) -> dict[str, Any]:
    """One dashboard as the JSON dict Grafana's provisioning and HTTP API take."""
    return json.loads(json.dumps(DASHBOARDS[name]().build(), cls=JSONEncoder))


def write_dashboards(directory: Path) -> list[Path]:
    """Write every dashboard as ``<directory>/silkwatch-<name>.json``; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in DASHBOARDS:
        path = directory / f"silkwatch-{name}.json"
        path.write_text(json.dumps(build_json(name), indent=2, sort_keys=True) + "\n")
        paths.append(path)
    return paths


def iter_panels(dashboard_json: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every non-row panel, including those nested in collapsed rows."""
    for panel in dashboard_json.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def panel_queries(dashboard_json: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL expression) of every panel target."""
    for panel in iter_panels(dashboard_json):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def expand(expr: str, values: dict[str, str] = MACRO_DEFAULTS) -> str:
    """Replace Grafana macros and dashboard variables as Grafana would before querying."""
    pattern = "|".join(re.escape(k) for k in sorted(values, key=len, reverse=True))
    return re.sub(pattern, lambda m: values[m.group(0)], expr)
