"""``report``: one page with the main charts and the detectors' alerts for the input.

For a case file or a morning hand-over: what the traffic did over time, who
moved the most, which ports and protocols, where it went, which hosts sit off
the bytes-per-packet line, and what the detectors (the embedded runner, the
same code as the stream) flagged.
"""

from __future__ import annotations

from collections.abc import Sequence

from silkwatch.detectors.alerts import SEVERITIES, Alert
from silkwatch.detectors.schema import FlowBatch
from silkwatch.plots import bubble, geo, line, topn
from silkwatch.plots.country import CountryLookup
from silkwatch.plots.page import Chart, Table

#: bin widths the report chooses from, seconds
NICE_BINS_S = (60, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
TARGET_BINS = 100
ALERT_COLUMNS = (
    "severity",
    "kind",
    "score",
    "sip",
    "dip",
    "dport",
    "proto",
    "first_seen",
    "last_seen",
    "reason",
)


def auto_bin_s(batches: Sequence[FlowBatch]) -> int:
    """The smallest nice bin width giving at most about :data:`TARGET_BINS` bins.

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> auto_bin_s([make_batch(stime_ms=[0, 3_600_000])])
    60
    >>> auto_bin_s([make_batch(stime_ms=[0, 7 * 86_400_000])])
    7200
    """
    filled = [b for b in batches if len(b)]
    if not filled:
        return NICE_BINS_S[0]
    span_s = (
        max(int(b["stime_ms"].max()) for b in filled)
        - min(int(b["stime_ms"].min()) for b in filled)
    ) / 1000
    return next((s for s in NICE_BINS_S if span_s / s <= TARGET_BINS), NICE_BINS_S[-1])


def report_charts(
    batches: Sequence[FlowBatch],
    *,
    bin_s: int | None = None,
    lookup: CountryLookup | None = None,
) -> list[Chart]:
    """The report's charts, in reading order."""
    return [
        line.linechart(batches, bin_s=bin_s or auto_bin_s(batches), values=["bytes", "records"]),
        topn.topn_chart(batches, "barchart", fields="sip", value="bytes", count=10),
        topn.topn_chart(batches, "barchart", fields="dip", value="bytes", count=10),
        topn.topn_chart(batches, "columnchart", fields="dport", value="records"),
        topn.topn_chart(batches, "piechart", fields="protocol", value="bytes"),
        geo.geomap(batches, field="dcc", value="bytes", lookup=lookup),
        bubble.bubblechart(batches, field="sip"),
    ]


def detect_alerts(batches: Sequence[FlowBatch]) -> list[Alert]:
    """The alerts the embedded runner raises on these flows (imported here: it pulls in Faust)."""
    from silkwatch.streams.embedded import detect

    return detect(batches)


def alerts_table(alerts: Sequence[Alert]) -> tuple[str, Table]:
    """The alerts, most severe and highest score first, as a titled table."""
    rows = []
    for alert in sorted(alerts, key=lambda a: (-SEVERITIES.index(a.severity), -a.score)):
        record = alert.to_dict()
        rows.append(["" if record[c] is None else record[c] for c in ALERT_COLUMNS])
    return f"{len(rows)} alerts from the detectors", Table(list(ALERT_COLUMNS), rows)
