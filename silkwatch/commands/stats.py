"""``silkwatch stats``: rwstats — the top (or bottom) bins by a value.

Grouping is ``silkwatch uniq``'s (:func:`silkwatch.commands.uniq.aggregate`);
ranking is :func:`silkwatch.detectors.groupby.top`, which picks the N bins with an
``argpartition`` instead of sorting them all. The text output mirrors
rwstats: an ``INPUT:`` and an ``OUTPUT:`` line, then the bins with their share
of the total (``%Value``) and its running sum (``cumul_%``).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from silkwatch.commands.count import (
    add_io_arguments,
    add_table_arguments,
    iter_input,
    open_output,
    table_style,
    write_output,
    write_table,
)
from silkwatch.commands.cut import text_context
from silkwatch.commands.uniq import (
    add_group_arguments,
    aggregate,
    key_fields,
    table_cells,
    table_json,
    table_titles,
    text_table,
    value_names,
)
from silkwatch.connectors.silk.text import TableStyle, float_cells
from silkwatch.detectors import groupby
from silkwatch.detectors.groupby import GroupByError, GroupTable, TopBins
from silkwatch.runtime import freeze_imports

EPILOG = """\
examples:
  silkwatch stats --fields sIP --values bytes --count 10 day.rw      top talkers by bytes
  silkwatch stats --fields dPort --count 10 day.rw                   busiest ports by records
  silkwatch stats --fields dIP --values packets --bottom --count 5 day.rw
  silkwatch stats --fields protocol --percentage 1 day.rw            bins with >= 1 % of records
  silkwatch stats --fields sIP,dIP --values bytes,records --threshold 1000000 day.rw
  rwfilter --proto=17 --pass=stdout ... | silkwatch stats --fields dPort --count 20 -

The first of --values ranks the bins. --percentage P keeps bins holding at
least P % of the total (the cut-off truncated to an integer, as rwstats);
--threshold X keeps bins with a value >= X (<= X with --bottom). Ties are
listed in key order.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="top or bottom N bins by a value (like SiLK's rwstats)",
        description="Group flows by key fields and list the bins with the largest "
        "(or smallest) value, with each bin's percentage of the total.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_group_arguments(parser)
    limit = parser.add_mutually_exclusive_group(required=True)
    limit.add_argument("--count", type=int, metavar="N", help="print N bins")
    limit.add_argument(
        "--percentage", type=float, metavar="P", help="print bins holding >= P %% of the total"
    )
    limit.add_argument(
        "--threshold",
        type=int,
        metavar="X",
        help="print bins whose value is >= X (<= X with --bottom)",
    )
    limit.add_argument(
        "--overall-stats",
        action="store_true",
        help="rwstats' summary: min, max, quartiles and intervals of bytes, packets, bytes/packet",
    )
    limit.add_argument(
        "--detail-proto-stats",
        metavar="PROTOS",
        help="the summary for these protocols too (e.g. 1,6,17 or 1-6)",
    )
    order = parser.add_mutually_exclusive_group()
    order.add_argument("--top", dest="bottom", action="store_false", help="largest first (default)")
    order.add_argument("--bottom", dest="bottom", action="store_true", help="smallest first")
    parser.set_defaults(bottom=False)
    parser.add_argument("--no-percents", action="store_true", help="leave out %%Value and cumul_%%")
    for name in ("sip", "dip"):
        parser.add_argument(
            f"--{name}",
            nargs="?",
            const="32",
            action=_CidrKey,
            metavar="CIDR",
            help=f"key on the first CIDR bits of the {name} (rwstats' old form of --fields)",
        )
    add_io_arguments(parser)
    add_table_arguments(parser)
    parser.set_defaults(run=run)


class _CidrKey(argparse.Action):
    """``--sip[=CIDR]`` / ``--dip[=CIDR]``: a masked address key (IPv4 only, as rwstats)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        text = values if isinstance(values, str) else "32"
        if not text.isdigit():  # an input file after a bare switch
            namespace.stray_inputs = [*getattr(namespace, "stray_inputs", []), text]
            text = "32"
        if not 1 <= int(text) <= 32:
            parser.error(f"{option_string}: CIDR must be 1-32, not {text}")
        namespace.cidr = {**getattr(namespace, "cidr", {}), self.dest: int(text)}


def header_lines(ranked: TopBins, args: argparse.Namespace) -> list[str]:
    """rwstats' ``INPUT:`` and ``OUTPUT:`` lines."""
    title = groupby.value_title(ranked.value)
    records = ranked.table.input_records
    line = f"INPUT: {records} Record{_plural(records)} for {ranked.bins} Bin{_plural(ranked.bins)}"
    if ranked.total:
        line += f" and {ranked.total} Total {title}"
    direction, side = ("Bottom", "below") if ranked.bottom else ("Top", "above")
    shown = len(ranked.table)
    if args.count is not None:
        output = f"OUTPUT: {direction} {args.count} Bin{_plural(args.count)} by {title}"
    elif not shown:
        limit = (
            f"{args.percentage:.4f}% ({ranked.threshold} {title})"
            if args.percentage is not None
            else f"{ranked.threshold} {title}"
        )
        output = f"OUTPUT: No bins {side} threshold of {limit}"
    elif args.percentage is not None:
        cut = f"{args.percentage:.4f}% == {ranked.threshold}"
        output = f"OUTPUT: {direction} {shown} bins by {title} ({cut})"
    else:
        output = f"OUTPUT: {direction} {shown} bins by {title} (threshold {ranked.threshold})"
    return [line, output]


def _write_text(args: argparse.Namespace, ranked: TopBins) -> None:
    """rwstats' text: the INPUT/OUTPUT lines, then keys, values, %value and cumul_%."""
    titles, columns, widths = text_table(ranked.table, text_context(args))
    if not args.no_percents:
        title = groupby.value_title(ranked.value)
        finite = np.isfinite(ranked.percent)
        decimals = 4 if ranked.value.startswith("distinct:") else 6
        percent = np.where(finite, float_cells(np.nan_to_num(ranked.percent), 6), b"?")
        cumulative = np.nan_to_num(ranked.cumulative_percent)
        cumul = np.where(finite, float_cells(cumulative, decimals), b"?")
        titles += [f"%{title}", "cumul_%"]
        columns += [percent, cumul]
        widths += [10, 10]
    preamble = header_lines(ranked, args) if not args.no_titles else []  # rwstats: both go
    if not len(ranked.table) and args.count is None:  # "No bins above threshold": no table
        write_table(args, [], [], [], preamble=preamble)
        return
    write_table(args, titles, columns, widths, preamble=preamble)


def _plural(number: int) -> str:
    return "" if number == 1 else "s"


#: rwstats' interval upper bounds (``intervalstats.c``): TCP's serve the overall summary
_TCP_INTERVALS = (
    (40, 60, 100, 150, 256, 1000, 10000, 100000, 1000000, 0xFFFFFFFF),
    (3, 4, 10, 20, 50, 100, 500, 1000, 10000, 0xFFFFFFFF),
    (40, 44, 60, 100, 200, 400, 600, 800, 1500, 0xFFFFFFFF),
)
_UDP_INTERVALS = (
    (20, 40, 80, 130, 256, 1000, 10000, 100000, 1000000, 0xFFFFFFFF),
    (3, 4, 10, 20, 50, 100, 500, 1000, 10000, 0xFFFFFFFF),
    (20, 24, 40, 100, 200, 400, 600, 800, 1500, 0xFFFFFFFF),
)
_STAT_NAMES = ("BYTES", "PACKETS", "BYTES/PACKET")


class _Summary:
    """Count, minima, maxima and interval counts of one protocol set (rwstatsproto.c)."""

    def __init__(self, intervals: tuple[tuple[int, ...], ...]) -> None:
        self.bounds = [np.array(b, np.uint64) for b in intervals]
        self.records = 0
        self.low = [None, None, None]
        self.high = [None, None, None]
        self.counts = [np.zeros(10, np.int64) for _ in range(3)]

    def update(self, batch: np.ndarray) -> None:
        if not len(batch):
            return
        self.records += len(batch)
        volume = batch["bytes"] & np.uint64(0xFFFFFFFF)  # SiLK keeps these in 32 bits
        packets = batch["packets"] & np.uint64(0xFFFFFFFF)
        per_packet = volume // np.maximum(packets, 1)
        for s, values in enumerate((volume, packets, per_packet)):
            low, high = int(values.min()), int(values.max())
            self.low[s] = low if self.low[s] is None else min(self.low[s], low)
            self.high[s] = high if self.high[s] is None else max(self.high[s], high)
            slot = np.searchsorted(self.bounds[s], values, side="left")  # first bound >= value
            self.counts[s] += np.bincount(slot, minlength=10)[:10]

    def lines(self, header: str, percent_title: str, style: TableStyle) -> list[str]:
        """The summary's text: header, then per statistic min/max, quartiles, intervals."""
        out = [header]
        if not self.records:
            return out
        sep = style.separator.decode()
        end = sep if style.final_separator else ""
        w_key, w_count, w_pct = (15, 10, 10) if style.columns else (0, 0, 0)
        for s, name in enumerate(_STAT_NAMES):
            out.append(f"*{name} min {self.low[s]}; max {self.high[s]}")
            q = _quartiles(self.counts[s], self.bounds[s])
            out.append(
                f"  quartiles LQ {q[0]:.5f} Med {q[1]:.5f} UQ {q[2]:.5f} UQ-LQ {q[2] - q[0]:.5f}"
            )
            if style.titles:
                out.append(
                    f"{'interval_max':>{w_key}}{sep}{'count<=max':>{w_count}}{sep}"
                    f"{percent_title:>{w_pct}}{sep}{'cumul_%':>{w_pct}}{end}"
                )
            cumulative = 0.0
            for bound, count in zip(self.bounds[s].tolist(), self.counts[s].tolist(), strict=True):
                percent = 100.0 * count / self.records
                cumulative += percent
                out.append(
                    f"{bound:>{w_key}}{sep}{count:>{w_count}}{sep}"
                    f"{percent:>{w_pct}.6f}{sep}{cumulative:>{w_pct}.6f}{end}"
                )
        return out


def _quartiles(counts: np.ndarray, bounds: np.ndarray) -> list[float]:
    """rwstats' quartiles, interpolated inside the interval holding each (intervalstats.c)."""
    cumulative = np.cumsum(counts).astype(np.int64) & 0xFFFFFFFF
    total = int(cumulative[-1])
    wanted = [total >> 2, total >> 1, 3 * (total >> 2) & 0xFFFFFFFF]
    out = []
    for value in wanted:
        index = int(np.argmax(cumulative >= value))
        high, v_high = int(bounds[index]), int(cumulative[index])
        low, v_low = (0, 0) if index == 0 else (int(bounds[index - 1]), int(cumulative[index - 1]))
        spread = v_high - v_low
        out.append(low + ((value - v_low) / spread if spread else float("nan")) * (high - low))
    return out


def _protocols(text: str) -> list[int]:
    """``1,6,17`` or ``1-6`` → protocols in the order given, duplicates dropped."""
    protocols: list[int] = []
    for word in (w.strip() for w in text.split(",") if w.strip()):
        low, _, high = word.partition("-")
        try:
            numbers = range(int(low), int(high or low) + 1)
        except ValueError as exc:
            raise GroupByError(f"stats: bad --detail-proto-stats {text!r}") from exc
        protocols += [n for n in numbers if 0 <= n <= 255 and n not in protocols]
    return protocols


def _run_summary(args: argparse.Namespace) -> int:
    """``--overall-stats`` / ``--detail-proto-stats``: rwstats' protocol summary."""
    protocols = _protocols(args.detail_proto_stats or "")
    overall = _Summary(_TCP_INTERVALS)
    detail = {p: _Summary(_TCP_INTERVALS if p == 6 else _UDP_INTERVALS) for p in protocols}
    for batch in iter_input(args, frozenset({"bytes", "packets", "proto"})):
        overall.update(batch)
        for protocol, summary in detail.items():
            summary.update(batch[batch["proto"] == protocol])
    style = table_style(args)
    lines: list[str] = []
    if not any(s.records == overall.records for s in detail.values()) or not overall.records:
        header = f"FLOW STATISTICS--ALL PROTOCOLS:  {overall.records} records"
        lines += overall.lines(header, "%_of_input", style)
    if overall.records:
        for protocol, summary in sorted(detail.items()):
            records = f"{summary.records}/{overall.records}"
            header = f"FLOW STATISTICS--PROTOCOL {protocol}:  {records} records"
            lines += ["", *summary.lines(header, "%_of_proto", style)]
    out = open_output(args)
    try:
        out.write("".join(line + "\n" for line in lines).encode())
        out.flush()
    finally:
        if out not in (sys.stdout.buffer, sys.stderr.buffer):
            out.close()
    return 0


def run(args: argparse.Namespace) -> int:
    freeze_imports()
    if args.overall_stats or args.detail_proto_stats:
        return _run_summary(args)

    def rank(table: GroupTable) -> TopBins:
        return groupby.top(
            table,
            count=args.count,
            percentage=args.percentage,
            threshold=args.threshold,
            bottom=args.bottom,
        )

    rank(groupby.result(groupby.empty(key_fields(args), value_names(args))))  # fail before input
    ranked = rank(aggregate(args))
    if args.format == "text":
        _write_text(args, ranked)
        return 0
    titles, cells, rows = (
        table_titles(ranked.table),
        table_cells(ranked.table),
        table_json(ranked.table),
    )
    if not args.no_percents:
        title = groupby.value_title(ranked.value)
        titles += [f"%{title}", "cumul_%"]
        finite = np.isfinite(ranked.percent)
        for cell, row, pct, cumul, ok in zip(
            cells, rows, ranked.percent, ranked.cumulative_percent, finite, strict=True
        ):
            cell += [f"{pct:.6f}", f"{cumul:.6f}"] if ok else ["?", "?"]
            row.update({f"%{title}": float(pct), "cumul_%": float(cumul)} if ok else {})
    document = {
        "fields": list(ranked.table.fields),
        "values": list(ranked.table.values),
        "value": ranked.value,
        "input_records": ranked.table.input_records,
        "bins": ranked.bins,
        "total": ranked.total,
        "threshold": ranked.threshold,
        "bottom": ranked.bottom,
        "rows": rows,
    }
    write_output(args, titles, cells, document, preamble=header_lines(ranked, args))
    return 0
