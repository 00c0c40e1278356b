"""``silkwatch plot CHART ...``: FlowPlotter's charts as one self-contained, offline HTML page.

Arguments follow FlowPlotter's order (``linechart 3600 bytes``) so an analyst's
muscle memory carries over; the input is any file ``read_flows`` knows, or a
``rwfilter --pass=stdout`` pipe. Nothing is written but the page: FlowPlotter
wrote ``temp.test`` into the current directory, so two runs at once clobbered
each other. With ``--output`` the page is written beside its final name and
renamed into place, so a reader never sees half a page.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.schema import FlowBatch
from silkwatch.detectors.timebins import LOAD_SCHEMES
from silkwatch.flowio import add_input_arguments, read_inputs
from silkwatch.plots import assets_tree, bubble, geo, graph, line, report, timeline, topn
from silkwatch.plots.country import COUNTRY_FIELDS, CountryLookup
from silkwatch.plots.page import Chart, Page, render
from silkwatch.plots.summary import describe

logger = logging.getLogger(__name__)

READ_ROWS = 1 << 20

#: chart → (arguments as FlowPlotter takes them, what it draws, FlowPlotter's example, ours)
CHARTS: dict[str, tuple[str, str, str, str]] = {
    "linechart": (
        "BIN_SECONDS VALUES",
        "records, bytes, packets, sIP-Distinct or dIP-Distinct per time bin",
        "flowplotter.sh linechart 60 bytes",
        "silkwatch plot linechart 60 bytes",
    ),
    "bubblechart": (
        "FIELD",
        "top keys as bubbles (x packets, y bytes, size records), fitted line, outliers",
        "flowplotter.sh bubblechart sip",
        "silkwatch plot bubblechart sip",
    ),
    "geomap": (
        "scc|dcc VALUE",
        "a world map by country",
        "flowplotter.sh geomap dcc bytes",
        "silkwatch plot geomap dcc bytes",
    ),
    "treemap": (
        "FIELD VALUE",
        "top keys as nested rectangles",
        "flowplotter.sh treemap dip records",
        "silkwatch plot treemap dip records",
    ),
    "piechart": (
        "FIELD VALUE",
        "top keys as pie slices",
        "flowplotter.sh piechart dip bytes",
        "silkwatch plot piechart dip bytes",
    ),
    "barchart": (
        "FIELD VALUE",
        "top keys as horizontal bars",
        "flowplotter.sh barchart dip bytes",
        "silkwatch plot barchart dip bytes",
    ),
    "columnchart": (
        "FIELD VALUE",
        "top keys as columns",
        "flowplotter.sh columnchart dip bytes",
        "silkwatch plot columnchart dip bytes",
    ),
    "timeline": (
        "FIELD FIELD",
        "start-to-end bars of each pair's sessions",
        "flowplotter.sh timeline sip dip",
        "silkwatch plot timeline sip dip",
    ),
    "forcegraph": (
        "SRC DST VALUE [COUNT]",
        "who talks to whom, force-directed (drag, zoom)",
        "flowplotter.sh forceopacity sip dip distinct:dport 100",
        "silkwatch plot forcegraph sip dip distinct:dport 100",
    ),
    "assetdiscovery": (
        "",
        "web, mail, DNS, VPN, FTP, SSH, Telnet servers found from flows",
        "flowplotter.sh assetdiscovery",
        "silkwatch plot assetdiscovery",
    ),
    "report": (
        "",
        "one page: volume over time, top talkers, ports, protocols, map, bubbles, alerts",
        "(none)",
        "silkwatch plot report",
    ),
}

EPILOG = """\
examples:
  rwfilter --proto=0- --type=all --pass=stdout ... | silkwatch plot linechart 3600 bytes > line.html
  silkwatch plot treemap dip records day.rw > treemap.html
  silkwatch plot geomap dcc bytes --exclude us,-- day.rw -o geomap.html
  silkwatch plot report day.rw -o report.html

The page needs no network: ECharts and the world map are inside it.
Every chart: silkwatch plot CHART --help (shows the FlowPlotter command it replaces).
"""


class PlotInputError(SilkwatchError):
    """No input to plot: no file named and standard input is a terminal."""

    reason = "no_input"


class ChartParser(argparse.ArgumentParser):
    """A chart parser that also takes files after options (``geomap dcc bytes --exclude us f``).

    argparse fills a ``nargs="*"`` positional at its first chance and then
    rejects later ones; leftover words that are not options are inputs too.
    """

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        namespace, extras = super().parse_known_args(args, namespace)
        files = [word for word in extras if word == "-" or not word.startswith("-")]
        if files and hasattr(namespace, "inputs"):
            namespace.inputs = [*(namespace.inputs or []), *files]
            extras = [word for word in extras if word not in files]
        return namespace, extras


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="FlowPlotter's charts as one offline HTML page",
        description="Draw flows as an interactive chart in one self-contained HTML page "
        "(no network needed to view it). Charts and arguments follow FlowPlotter.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    charts = parser.add_subparsers(title="charts", metavar="CHART", parser_class=ChartParser)
    for name, (arguments, draws, flowplotter, ours) in CHARTS.items():
        chart = charts.add_parser(
            name,
            help=draws,
            description=f"{name} {arguments}: {draws}.",
            epilog=f"FlowPlotter:  rwfilter ... --pass=stdout | {flowplotter} > {name}.html\n"
            f"silkwatch:    rwfilter ... --pass=stdout | {ours} > {name}.html\n",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        ARGUMENTS[name](chart)
        add_input_arguments(chart)
        chart.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
        chart.add_argument("--title", help="page title (default: the command line)")
        chart.set_defaults(run=run, chart=name)
    parser.set_defaults(run=lambda args: parser.print_help() or 2)


def _linechart(p: argparse.ArgumentParser) -> None:
    p.add_argument("bin_s", type=int, metavar="BIN_SECONDS", help="bin width in seconds")
    p.add_argument(
        "values",
        metavar="VALUES",
        help="comma-separated: " + ", ".join(line.LINE_VALUES),
    )
    p.add_argument("--log", action="store_true", help="logarithmic y axes")
    p.add_argument(
        "--load-scheme",
        default="time-proportional",
        metavar="NAME|ID",
        help="rwcount load scheme: " + ", ".join(LOAD_SCHEMES),
    )


def _bubblechart(p: argparse.ArgumentParser) -> None:
    p.add_argument("field", metavar="FIELD", help="key field(s), e.g. sip")
    p.add_argument("--count", type=int, default=bubble.DEFAULT_COUNT, help="keys (default 20)")
    p.add_argument(
        "--sigmas",
        type=float,
        help="outlier distance from the line in robust sigmas (default: the exfil detector's)",
    )


def _geomap(p: argparse.ArgumentParser) -> None:
    p.add_argument("field", choices=tuple(COUNTRY_FIELDS), metavar="scc|dcc")
    p.add_argument("value", metavar="VALUE", help="records, bytes, packets, dIP-Distinct...")
    p.add_argument(
        "--exclude",
        default="",
        metavar="CC,...",
        help="country codes to leave out (FlowPlotter always hid us,--,a1,a2,o1); default none",
    )
    p.add_argument("--geoip", type=Path, help="MaxMind .mmdb (default: the GeoLite2 shipped)")


def _topn(p: argparse.ArgumentParser) -> None:
    p.add_argument("field", metavar="FIELD", help="key field(s), e.g. dip or sip,dport")
    p.add_argument("value", metavar="VALUE", help="records, bytes, packets, sIP-Distinct...")
    p.add_argument("--count", type=int, help="keys shown (default: FlowPlotter's 20 or 12)")


def _timeline(p: argparse.ArgumentParser) -> None:
    p.add_argument("first", metavar="FIELD")
    p.add_argument("second", metavar="FIELD")
    p.add_argument("--count", type=int, default=timeline.DEFAULT_COUNT, help="pairs (default 20)")
    p.add_argument(
        "--gap-s", type=float, default=timeline.DEFAULT_GAP_S, help="session gap (default 2 s)"
    )


def _forcegraph(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SRC")
    p.add_argument("target", metavar="DST")
    p.add_argument("value", metavar="VALUE")
    p.add_argument(
        "--count",
        type=int,
        default=graph.DEFAULT_COUNT,
        help="pairs (default 50); a number right after VALUE means the same, as in FlowPlotter",
    )


def _assetdiscovery(p: argparse.ArgumentParser) -> None:
    limit = p.add_mutually_exclusive_group()
    limit.add_argument("--count", type=int, help="top N servers per service")
    limit.add_argument("--percentage", type=float, help="servers with >= P %% (default 1)")
    limit.add_argument("--threshold", type=int, help="servers with >= X bytes (packets for DNS)")


def _report(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bin-s", type=int, help="line chart bin (default: about 100 bins)")
    p.add_argument("--geoip", type=Path, help="MaxMind .mmdb (default: the GeoLite2 shipped)")


ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "linechart": _linechart,
    "bubblechart": _bubblechart,
    "geomap": _geomap,
    **{name: _topn for name in topn.TOPN_CHARTS},
    "timeline": _timeline,
    "forcegraph": _forcegraph,
    "assetdiscovery": _assetdiscovery,
    "report": _report,
}


def lookup(args: argparse.Namespace) -> CountryLookup:
    """The country function for ``--geoip`` (or the shipped database)."""
    from silkwatch.connectors.geoip import CountryDB  # the MaxMind reader: not for --help

    return CountryDB(args.geoip).country_codes


def build(args: argparse.Namespace, batches: list[FlowBatch]) -> list[Chart]:
    """The charts one command line asks for."""
    name = args.chart
    if name == "linechart":
        return [
            line.linechart(
                batches,
                bin_s=args.bin_s,
                values=line.parse_values(args.values),
                scheme=args.load_scheme,
                log_scale=args.log,
            )
        ]
    if name == "bubblechart":
        return [bubble.bubblechart(batches, field=args.field, count=args.count, sigmas=args.sigmas)]
    if name == "geomap":
        exclude = [code.strip() for code in args.exclude.split(",") if code.strip()]
        return [
            geo.geomap(
                batches, field=args.field, value=args.value, exclude=exclude, lookup=lookup(args)
            )
        ]
    if name in topn.TOPN_CHARTS:
        return [
            topn.topn_chart(batches, name, fields=args.field, value=args.value, count=args.count)
        ]
    if name == "timeline":
        return [
            timeline.timeline(
                batches, fields=(args.first, args.second), count=args.count, gap_s=args.gap_s
            )
        ]
    if name == "forcegraph":
        return [
            graph.forcegraph(
                batches,
                source=args.source,
                target=args.target,
                value=args.value,
                count=args.count,
            )
        ]
    if name == "assetdiscovery":
        return [
            assets_tree.assetdiscovery(
                batches, count=args.count, percentage=args.percentage, threshold=args.threshold
            )
        ]
    return report.report_charts(batches, bin_s=args.bin_s, lookup=lookup(args))


def take_count(args: argparse.Namespace) -> None:
    """FlowPlotter's ``forceopacity sip dip VALUE 100``: a bare number first among the inputs."""
    first = args.inputs[0] if args.inputs else ""
    if args.chart == "forcegraph" and first.isdigit() and not Path(first).exists():
        args.count = int(args.inputs.pop(0))


def read_all(args: argparse.Namespace) -> list[FlowBatch]:
    """Every batch of every input (stdin when none is named)."""
    inputs = args.inputs or ["-"]
    if inputs == ["-"] and sys.stdin.isatty():
        raise PlotInputError(
            f"plot {args.chart}: no input; name a flow file or pipe flows in "
            "(rwfilter ... --pass=stdout | silkwatch plot ...)"
        )
    return list(read_inputs(args, rows=READ_ROWS))


def write_page(html: str, output: Path | None) -> None:
    """The page to stdout, or to ``output`` (``silkwatch.connectors.output``: atomic for a regular
    file, written through a symlink, FIFO or device, mode by the umask)."""
    from silkwatch.connectors.output import open_text_output

    with open_text_output(output) as out:
        out.write(html)


def run(args: argparse.Namespace) -> int:
    take_count(args)
    build(args, [])  # a chart of nothing: every argument checked before any input is read
    batches = read_all(args)
    charts = build(args, batches)
    title = args.title or f"silkwatch plot {args.chart}: {charts[0].title if charts else ''}"
    page = Page(title=title, subtitle=describe(args.inputs or ["-"], batches), charts=charts)
    if args.chart == "report":
        page.tables.append(report.alerts_table(report.detect_alerts(batches)))
    write_page(render(page), args.output)
    logger.info("chart=%s records=%d output=%s", args.chart, sum(map(len, batches)), args.output)
    return 0
