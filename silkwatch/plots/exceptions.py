"""Errors of ``silkwatch plot`` that a user can fix on the command line."""

from __future__ import annotations

from silkwatch.detectors.exceptions import SilkwatchError


class PlotArgumentError(SilkwatchError, ValueError):
    """A chart argument that does not name a chart, field, value or size we can draw.

    Reads ``plot linechart: value 'octets' unknown; choose from records, bytes, …``.
    """

    reason = "bad_plot_argument"
