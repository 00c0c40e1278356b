"""``silkwatch uniq``: rwuniq — one row per distinct key with aggregate values.

Batches go through :mod:`detectors.groupby` (``init/update/merge/result``):
each batch is grouped on its own and the partial states are merged once they
hold a million bins, so memory follows the number of bins, not of flows. The cell rendering
here (addresses, times, TCP flags) is shared with ``silkwatch stats``.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import numpy as np

from connectors.silk.site import flowtype_names, sensor_name
from connectors.silk.text import tcp_flags_text
from detectors import groupby
from detectors.groupby import GroupState, GroupTable
from detectors.schema import ip_strings
from silkwatch.commands.count import add_io_arguments, iter_input, timestamps, write_output

logger = logging.getLogger(__name__)

#: new bins held in partial states before they are merged into one (or as many as the
#: merged state holds, if more): merging re-groups them all, so few keys per batch (top
#: talkers) merge rarely and many keys (5-tuples) often
MERGE_BINS = 1 << 20

FIELDS_HELP = (
    "key fields, comma-separated: sIP, dIP, sPort, dPort, protocol, packets, bytes, flags, "
    "sTime, duration, eTime (whole seconds), sensor, class, type, in, out, nhIP, application"
)
VALUES_HELP = (
    "values, comma-separated, printed in this order: Records, Bytes, Packets, sIP-Distinct, "
    "dIP-Distinct, sTime-Earliest, eTime-Latest, distinct:FIELD (default Records)"
)

EPILOG = """\
examples:
  silkwatch uniq --fields protocol --values records,bytes,packets day.rw
  silkwatch uniq --fields sIP --values records,bytes,dIP-Distinct day.rw
  silkwatch uniq --fields sIP,dPort --values flows,distinct:dIP --format csv day.rw
  rwfilter --proto=6 --pass=stdout ... | silkwatch uniq --fields dPort -

Rows are always sorted by key (rwuniq --sort-output; IPv4 before IPv6), so
--sort-output is accepted for compatibility and changes nothing. Distinct
counts are exact, however many files or batches the input spans.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "uniq",
        help="aggregate flows by key fields (like SiLK's rwuniq)",
        description="Group flows by a tuple of key fields and print record counts, "
        "byte/packet sums, first/last times and distinct counts per group.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_group_arguments(parser)
    parser.add_argument("--sort-output", action="store_true", help="sort rows by key (always done)")
    add_io_arguments(parser)
    parser.set_defaults(run=run)


def add_group_arguments(parser: argparse.ArgumentParser) -> None:
    """``--fields`` and ``--values``, the same for uniq and stats."""
    parser.add_argument("--fields", required=True, metavar="FIELDS", help=FIELDS_HELP)
    parser.add_argument("--values", default="records", metavar="VALUES", help=VALUES_HELP)


def aggregate(args: argparse.Namespace) -> GroupTable:
    """Group every input flow by ``--fields`` and compute ``--values``."""
    empty = groupby.init(args.fields, args.values)  # bad names fail before any input is read
    partials: list[GroupState] = []
    merged = fresh = 0  # bins in the merged state, and in the partials since
    for batch in iter_input(args, groupby.columns_read(empty)):
        partials.append(groupby.update(empty, batch))
        fresh += len(partials[-1].records)
        # amortised: each bin is re-grouped O(1) times
        if fresh >= max(MERGE_BINS, merged) and len(partials) > 1:
            partials = [groupby.merge(*partials)]
            merged, fresh = len(partials[0].records), 0
    return groupby.result(groupby.merge(empty, *partials))


def column_cells(name: str, column: np.ndarray) -> list[str]:
    """One key field or value column as the text SiLK prints for it (rwcut's renderers)."""
    if name in groupby.IP_FIELDS:
        return ip_strings(column, groupby.is_ipv6(column))
    if name in groupby.TIME_FIELDS:
        return timestamps(column * 1000, with_ms=False)
    if name in ("stime-earliest", "etime-latest"):
        return timestamps(column // 1000 * 1000, with_ms=False)
    render = _RENDER.get(name)
    if render:
        return [render(value) for value in column.tolist()]
    return [str(value) for value in column.tolist()]


_RENDER = {
    "flags": tcp_flags_text,
    "sensor": sensor_name,
    "class": lambda value: flowtype_names(value)[0],  # groupby keeps 0 for "all", 255 for "?"
    "type": lambda value: flowtype_names(value)[1],
}


def json_column(name: str, column: np.ndarray) -> list[Any]:
    """One column for JSON: numbers stay numbers, addresses and key times become text."""
    if name in groupby.IP_FIELDS or name in groupby.TIME_FIELDS or name in _RENDER:
        return column_cells(name, column)
    return column.tolist()


def table_titles(table: GroupTable) -> list[str]:
    return [groupby.KEY_FIELDS[name][0] for name in table.fields] + [
        groupby.value_title(value) for value in table.values
    ]


def table_cells(table: GroupTable) -> list[list[str]]:
    """Rows of text cells: key fields, then values."""
    columns = [column_cells(name, table.keys[name]) for name in table.fields]
    columns += [column_cells(value, table.columns[value]) for value in table.values]
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def table_json(table: GroupTable) -> list[dict[str, Any]]:
    """Rows as JSON objects keyed by SiLK's column titles."""
    columns = [json_column(name, table.keys[name]) for name in table.fields]
    columns += [json_column(value, table.columns[value]) for value in table.values]
    titles = table_titles(table)
    return [dict(zip(titles, row, strict=True)) for row in zip(*columns, strict=True)]


def run(args: argparse.Namespace) -> int:
    table = aggregate(args)
    document = {
        "fields": list(table.fields),
        "values": list(table.values),
        "input_records": table.input_records,
        "rows": table_json(table),
    }
    write_output(args, table_titles(table), table_cells(table), document)
    return 0
