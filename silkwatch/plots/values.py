"""The numbers behind every chart, taken from the group-by of ``silkwatch uniq`` / ``stats``.

Charts never count for themselves: a bar chart's bytes for a host are
exactly what ``silkwatch stats --fields=sIP --values=bytes`` prints. This module
only feeds batches through :mod:`detectors.groupby` and turns its keys into the
labels a person reads (addresses as rwcut prints them, times in UTC).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from connectors.silk.site import flowtype_names, sensor_name
from detectors import groupby
from detectors.groupby import GroupTable, TopBins
from detectors.schema import FlowBatch
from silkwatch.commands.uniq import column_cells
from silkwatch.plots.exceptions import PlotArgumentError


def group(batches: Iterable[FlowBatch], fields: str, values: str) -> GroupTable:
    """rwuniq over all ``batches``: bins keyed by ``fields`` with ``values``."""
    try:
        state = groupby.init(fields, values)
    except groupby.GroupByError as exc:
        raise PlotArgumentError(f"plot: {exc}") from exc
    for batch in batches:
        state = groupby.update(state, batch)
    return groupby.result(state)


def ranked(
    batches: Iterable[FlowBatch], fields: str, values: str, *, count: int | None = None
) -> TopBins:
    """rwstats ``--top --count``: the bins with the largest first value, in rank order."""
    table = group(batches, fields, values)
    return groupby.top(table, table.values[0], count=count)


def field_labels(table: GroupTable, name: str) -> list[str]:
    """One key field of every bin as ``silkwatch uniq`` prints it; sensors and types by name."""
    column = table.keys[name]
    if name == "sensor":
        return [sensor_name(value) for value in column.tolist()]
    if name == "type":
        return [flowtype_names(value)[1] for value in column.tolist()]
    return column_cells(name, column)


def key_labels(table: GroupTable) -> list[str]:
    """Every bin's whole key as one label (``10.0.0.1|53`` for two fields, like rwuniq)."""
    columns = [field_labels(table, name) for name in table.fields]
    return ["|".join(parts) for parts in zip(*columns, strict=True)]


def column(table: GroupTable, value: str) -> np.ndarray:
    """One value column by its SiLK name (``Bytes``, ``sIP-Distinct``...)."""
    return table.columns[groupby.parse_values(value)[0]]


def distinct_per_bin(
    batches: Iterable[FlowBatch], *, field: str, bin_ms: int
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``field`` values among flows *starting* in each bin (``rwuniq --bin-time``).

    The start time is floored to the bin on a copy of each batch, then grouped
    by ``sTime`` with the group-by's exact distinct count.
    """
    if bin_ms % 1000:
        raise PlotArgumentError(f"plot: bin size must be whole seconds, not {bin_ms} ms")

    def floored(batch: FlowBatch) -> FlowBatch:
        copy = batch.copy()
        copy["stime_ms"] = copy["stime_ms"] // bin_ms * bin_ms
        return copy

    table = group((floored(batch) for batch in batches), "stime", f"distinct:{field}")
    return table.keys["stime"].astype(np.int64) * 1000, table.columns[f"distinct:{field}"]
