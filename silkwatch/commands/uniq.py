"""``silkwatch uniq``: rwuniq — one row per distinct key with aggregate values.

Batches go through :mod:`silkwatch.detectors.groupby` (``empty/update/merge/result``):
each batch is grouped on its own and the partial states are merged once they
hold a million bins, so memory follows the number of bins, not of flows. The cell rendering
here (addresses, times, TCP flags) is shared with ``silkwatch stats``.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from silkwatch.commands.count import (
    add_io_arguments,
    add_table_arguments,
    iter_input,
    write_output,
    write_table,
)
from silkwatch.commands.cut import Context, text_context
from silkwatch.connectors.silk.text import (
    column_cells,
    flag_cells,
    int_cells,
    ip_cells,
    json_column,
    milli_cells,
    time_cells,
)
from silkwatch.detectors import groupby
from silkwatch.detectors.groupby import GroupByError, GroupState, GroupTable
from silkwatch.runtime import freeze_imports

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
    parser.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="VALUE=MIN[-MAX]",
        help="print only bins whose VALUE is within MIN-MAX",
    )
    add_io_arguments(parser)
    add_table_arguments(parser)
    parser.set_defaults(run=run)


_ALL_COUNTS = ("bytes", "packets", "records", "stime-earliest", "etime-latest")


class _LegacyValue(argparse.Action):
    """rwuniq's ``--bytes[=MIN[-MAX]]``-style switches: a value, maybe with a threshold."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        value = self.dest[len("legacy_") :].replace("distinct_", "distinct:")
        added = list(_ALL_COUNTS) if value == "all" else [value]
        text = values if isinstance(values, str) else ""
        if text and not text.replace("-", "").isdigit():  # an input file after a bare switch
            namespace.stray_inputs = [*getattr(namespace, "stray_inputs", []), text]
            text = ""
        namespace.legacy_values = [*getattr(namespace, "legacy_values", []), *added]
        if text:
            namespace.legacy_thresholds = [
                *getattr(namespace, "legacy_thresholds", []),
                f"{value}={text}",
            ]


def add_group_arguments(parser: argparse.ArgumentParser) -> None:
    """``--fields``, ``--values`` and ``--bin-time``, the same for uniq and stats."""
    parser.add_argument("--fields", metavar="FIELDS", help=FIELDS_HELP)
    parser.add_argument("--values", metavar="VALUES", help=VALUES_HELP)
    parser.add_argument(
        "--bin-time",
        type=float,
        metavar="SECONDS",
        help="group sTime and eTime in bins of this size (fractions down to 0.001)",
    )
    parser.add_argument(
        "--presorted-input", action="store_true", help="accepted; input order does not matter"
    )
    for name, value in (
        ("--bytes", "bytes"),
        ("--packets", "packets"),
        ("--flows", "records"),
        ("--sip-distinct", "distinct:sip"),
        ("--dip-distinct", "distinct:dip"),
    ):
        parser.add_argument(
            name,
            nargs="?",
            const="",
            action=_LegacyValue,
            dest="legacy_" + value.replace(":", "_"),
            metavar="MIN[-MAX]",
            help=f"add {value} to --values (and keep bins within MIN-MAX); SiLK's old form",
        )
    for name, value in (("--stime", "stime-earliest"), ("--etime", "etime-latest")):
        parser.add_argument(name, nargs=0, action=_LegacyValue, dest="legacy_" + value, const="")
    parser.add_argument(
        "--all-counts",
        nargs=0,
        action=_LegacyValue,
        dest="legacy_all",
        const="",
        help="bytes, packets, records, sTime-Earliest, eTime-Latest",
    )


def uniq_thresholds(args: argparse.Namespace) -> list[str]:
    """rwuniq's ``--threshold`` switches and those of the legacy value switches."""
    given = args.threshold if isinstance(args.threshold, list) else []
    return [*given, *getattr(args, "legacy_thresholds", [])]


def value_names(args: argparse.Namespace) -> str:
    """``--values`` plus the values of the legacy switches, in command-line order."""
    given = [v for v in (args.values or "").split(",") if v.strip()]
    legacy = getattr(args, "legacy_values", [])
    for name in (t.split("=", 1)[0] for t in uniq_thresholds(args)):
        if name and not any(name.lower() == v.lower() for v in given + legacy):
            legacy.append(name)
    return ",".join(given + legacy) or "records"


def bin_ms(args: argparse.Namespace) -> int | None:
    """``--bin-time`` in ms (None when not given)."""
    if args.bin_time is None:
        return None
    value = round(args.bin_time * 1000)
    if value < 1:
        raise GroupByError(f"uniq: --bin-time {args.bin_time} is below 0.001 seconds")
    return value


def key_fields(args: argparse.Namespace) -> str:
    """``--fields``, the times in ms when ``--bin-time`` is below a second's multiple."""
    masks = getattr(args, "cidr", {})
    if not args.fields and not masks:
        raise GroupByError("uniq: --fields is required")
    fields = groupby.parse_fields(",".join([*masks, *([args.fields] if args.fields else [])]))
    step = bin_ms(args)
    if step is not None and step % 1000:
        milli = {"stime": "stime_ms", "etime": "etime_ms", "duration": "duration_ms"}
        fields = tuple(milli.get(name, name) for name in fields)
    return ",".join(fields)


def _masked(batch: np.ndarray, masks: dict[str, int]) -> np.ndarray:
    """rwstats' ``--sip=N`` / ``--dip=N``: IPv4 addresses cut to their first N bits."""
    if not masks or not len(batch):
        return batch
    moved = batch.copy()
    for name, bits in masks.items():
        if bits >= 32:
            continue
        low = np.ascontiguousarray(moved[name]).view(">u4").reshape(-1, 4)
        low[:, 3] &= np.uint32((0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF)
        moved[name] = low.reshape(-1).view("V16")
    return moved


def _binned(batch: np.ndarray, step: int | None) -> np.ndarray:
    """rwuniq's ``--bin-time``: sTime and eTime down to the bin, duration their difference."""
    if step is None or not len(batch):
        return batch
    start = batch["stime_ms"] // step * step
    end = (batch["stime_ms"] + batch["elapsed_ms"]) // step * step
    moved = batch.copy()
    moved["stime_ms"] = start
    moved["elapsed_ms"] = end - start
    return moved


def aggregate(args: argparse.Namespace) -> GroupTable:
    """Group every input flow by ``--fields`` and compute ``--values``."""
    empty = groupby.empty(key_fields(args), value_names(args))  # bad names fail before input
    step = bin_ms(args)
    columns = groupby.columns_read(empty) | ({"elapsed_ms", "stime_ms"} if step else set())
    partials: list[GroupState] = []
    merged = fresh = 0  # bins in the merged state, and in the partials since
    for batch in iter_input(args, frozenset(columns)):
        batch = _masked(_binned(batch, step), getattr(args, "cidr", {}))
        partials.append(groupby.update(empty, batch))
        fresh += len(partials[-1].records)
        # amortised: each bin is re-grouped O(1) times
        if fresh >= max(MERGE_BINS, merged) and len(partials) > 1:
            partials = [groupby.merge(*partials)]
            merged, fresh = len(partials[0].records), 0
    return groupby.result(groupby.merge(empty, *partials) if partials else empty)


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


def key_column(name: str, column: np.ndarray, ctx: Context) -> tuple[str, int, np.ndarray]:
    """(title, width, cells) of one key field, as rwuniq and rwstats print it."""
    title = groupby.KEY_FIELDS[name][0]
    if name in groupby.IP_FIELDS:
        cells = ip_cells(
            column, groupby.is_ipv6(column), policy=ctx.policy, ip_format=ctx.ip_format
        )
        return title, ctx.ip_width, cells
    if name in ("stime", "etime"):
        return (
            title,
            ctx.time_width(msec=False),
            time_cells(column * 1000, ctx.time_style, msec=False),
        )
    if name in ("stime_ms", "etime_ms"):
        return title, ctx.time_width(msec=True), time_cells(column, ctx.time_style, msec=True)
    if name == "duration_ms":
        return title, 9, milli_cells(column)
    if name == "flags":
        return title, 8, flag_cells(column, padded=ctx.padded, integer=ctx.integer_flags)
    if name == "sensor":
        if ctx.integer_sensors:
            return title, 5, int_cells(column)
        return title, ctx.site.sensor_width, ctx.site.sensor_names(column)
    if name == "class":
        width = max(len(c) for c, _ in ctx.site.flowtypes.values() or [("?", "")])
        return title, width, ctx.site.class_names(np.where(column == 255, 255, 0))
    if name == "type":
        width = max(len(t) for _, t in ctx.site.flowtypes.values() or [("", "?")])
        return title, width, ctx.site.type_names(column)
    if name in ("itype", "icode"):
        return title, 3, int_cells(column)  # emptied for non-ICMP bins by text_table
    if name in groupby.FLOWRATE_FIELDS:
        return title, 15, int_cells(column) if name == "payload-bytes" else milli_cells(column)
    widths = {"protocol": 3, "packets": 10, "bytes": 10, "duration": 5}
    return title, widths.get(name, 5), int_cells(column)


def value_column(value: str, column: np.ndarray, ctx: Context) -> tuple[str, int, np.ndarray]:
    """(title, width, cells) of one aggregate value."""
    title = groupby.value_title(value)
    if value in ("stime-earliest", "etime-latest"):
        return (
            title,
            ctx.time_width(msec=False),
            time_cells(column // 1000 * 1000, ctx.time_style, msec=False),
        )
    if value.startswith("distinct:"):
        return title, 10 if ctx.policy in ("ignore", "asv4") else 20, int_cells(column)
    return title, {"records": 10, "bytes": 20, "packets": 15}[value], int_cells(column)


def text_table(table: GroupTable, ctx: Context) -> tuple[list[str], list[np.ndarray], list[int]]:
    """Titles, cell columns and widths of a group table (keys, then values)."""
    parts = [key_column(name, table.keys[name], ctx) for name in table.fields]
    proto = table.keys.get("protocol")
    icmp = np.isin(proto, (1, 58)) if proto is not None else np.ones(len(table), bool)
    for i, name in enumerate(table.fields):
        if name in ("itype", "icode"):  # SiLK prints them for ICMP bins only
            parts[i] = (parts[i][0], parts[i][1], np.where(icmp, parts[i][2], b""))
    parts += [value_column(value, table.columns[value], ctx) for value in table.values]
    return [p[0] for p in parts], [p[2] for p in parts], [p[1] for p in parts]


Threshold = tuple[str, int, int | None]  # value, minimum, maximum (None: no maximum)


def parse_thresholds(texts: list[str]) -> list[Threshold]:
    """rwuniq's ``--threshold=VALUE=MIN[-MAX]`` switches, checked before any input is read.

    >>> parse_thresholds(["bytes=2000", "flows=0-10"])
    [('bytes', 2000, None), ('records', 0, 10)]
    """
    parsed = []
    for text in texts:
        name, _, bounds = text.partition("=")
        low, dash, high = bounds.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise GroupByError(f"uniq: bad --threshold {text!r} (VALUE=MIN or VALUE=MIN-MAX)")
        parsed.append((groupby.parse_values(name)[0], int(low), int(high) if dash else None))
    return parsed


def apply_thresholds(table: GroupTable, thresholds: list[Threshold]) -> GroupTable:
    """Keep the bins whose thresholded values are all within their ranges."""
    keep = np.ones(len(table), bool)
    for value, low, high in thresholds:
        column = table.columns[value]
        keep &= column >= low
        if high is not None:
            keep &= column <= high
    return table if keep.all() else table.take(np.flatnonzero(keep))


def run(args: argparse.Namespace) -> int:
    freeze_imports()
    thresholds = parse_thresholds(uniq_thresholds(args))
    table = apply_thresholds(aggregate(args), thresholds)
    if args.format == "text":
        titles, columns, widths = text_table(table, text_context(args))
        write_table(args, titles, columns, widths)
        return 0
    document = {
        "fields": list(table.fields),
        "values": list(table.values),
        "input_records": table.input_records,
        "rows": table_json(table),
    }
    write_output(args, table_titles(table), table_cells(table), document)
    return 0
