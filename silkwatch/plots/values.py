"""The numbers behind every chart, taken from the group-by of ``silkwatch uniq`` / ``stats``.

Charts never count for themselves: a bar chart's bytes for a host are
exactly what ``silkwatch stats --fields=sIP --values=bytes`` prints. This module
only feeds batches through :mod:`silkwatch.detectors.groupby` and turns its keys into the
labels a person reads (addresses as rwcut prints them, times in UTC), and
adds FlowPlotter's country fields ``scc`` / ``dcc``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from silkwatch.connectors.geoip import CountryDB
from silkwatch.connectors.silk.text import column_cells
from silkwatch.detectors import groupby
from silkwatch.detectors.groupby import GroupTable, TopBins
from silkwatch.detectors.schema import FlowBatch
from silkwatch.plots import country
from silkwatch.plots.exceptions import PlotArgumentError


def group(
    batches: Iterable[FlowBatch],
    fields: str,
    values: str,
    *,
    lookup: country.CountryLookup | None = None,
) -> GroupTable:
    """rwuniq over all ``batches``: bins keyed by ``fields`` with ``values``.

    One of the fields may be ``scc`` or ``dcc`` (see :mod:`silkwatch.plots.country`);
    ``lookup`` then finds the countries. Default - the shipped GeoLite2 database.
    """
    names = [name.strip().lower() for name in fields.split(",") if name.strip()]
    countries = [name for name in names if name in country.COUNTRY_FIELDS]
    if len(countries) > 1 or (countries and country.CARRIER in names):
        raise PlotArgumentError("plot: one of scc, dcc per chart, and not with application")
    if countries:
        lookup = lookup or CountryDB().country_codes
        batches = country.with_country(batches, countries[0], lookup)
        names = [country.CARRIER if name == countries[0] else name for name in names]
    try:
        state = groupby.empty(",".join(names), values)
    except groupby.GroupByError as exc:
        raise PlotArgumentError(f"plot: {exc}") from exc
    for batch in batches:
        state = groupby.update(state, batch)
    table = groupby.result(state)
    if not countries:
        return table
    renamed = tuple(countries[0] if name == country.CARRIER else name for name in table.fields)
    keys = dict(zip(renamed, table.keys.values(), strict=True))
    return GroupTable(renamed, table.values, keys, table.columns, table.totals, table.input_records)


def ranked(
    batches: Iterable[FlowBatch],
    fields: str,
    values: str,
    *,
    count: int | None = None,
    lookup: country.CountryLookup | None = None,
) -> TopBins:
    """rwstats ``--top --count``: the bins with the largest first value, in rank order."""
    table = group(batches, fields, values, lookup=lookup)
    return groupby.top(table, table.values[0], count=count)


def field_labels(table: GroupTable, name: str) -> list[str]:
    """One key field of every bin as ``silkwatch uniq`` prints it; sensors and types by name."""
    column = table.keys[name]
    if name in country.COUNTRY_FIELDS:
        return country.decode(column)
    return column_cells(name, column)


def key_labels(table: GroupTable) -> list[str]:
    """Every bin's whole key as one label (``10.0.0.1|53`` for two fields, like rwuniq)."""
    columns = [field_labels(table, name) for name in table.fields]
    return ["|".join(parts) for parts in zip(*columns, strict=True)]


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
