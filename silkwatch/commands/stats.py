"""``silkwatch stats``: rwstats — the top (or bottom) bins by a value.

Grouping is ``silkwatch uniq``'s (:func:`silkwatch.commands.uniq.aggregate`);
ranking is :func:`detectors.groupby.top`, which picks the N bins with an
``argpartition`` instead of sorting them all. The text output mirrors
rwstats: an ``INPUT:`` and an ``OUTPUT:`` line, then the bins with their share
of the total (``%Value``) and its running sum (``cumul_%``).
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from connectors.silk.text import float_cells
from detectors import groupby
from detectors.groupby import GroupTable, TopBins
from silkwatch.commands.count import (
    add_io_arguments,
    add_table_arguments,
    write_output,
    write_table,
)
from silkwatch.commands.uniq import (
    add_group_arguments,
    aggregate,
    key_fields,
    table_cells,
    table_json,
    table_titles,
    text_context,
    text_table,
    value_names,
)

logger = logging.getLogger(__name__)

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


def run(args: argparse.Namespace) -> int:
    def rank(table: GroupTable) -> TopBins:
        return groupby.top(
            table,
            count=args.count,
            percentage=args.percentage,
            threshold=args.threshold,
            bottom=args.bottom,
        )

    rank(groupby.result(groupby.init(key_fields(args), value_names(args))))  # fail before input
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
