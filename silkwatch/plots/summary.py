"""The line under a page's title: what went in (files, records, time span, families)."""

from __future__ import annotations

from collections.abc import Sequence

from silkwatch.detectors.alerts import iso_utc
from silkwatch.detectors.schema import FlowBatch


def describe(inputs: Sequence[str], batches: Sequence[FlowBatch]) -> str:
    """``3 records from day.rw, 2015-06-17T15:00:00.013Z to …Z (UTC), 1 IPv6``.

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> b = make_batch(sip=["10.0.0.1", "::1"], stime_ms=[0, 1000], elapsed_ms=[5, 0])
    >>> describe(["-"], [b])
    '2 records from stdin, 1970-01-01T00:00:00.000Z to 1970-01-01T00:00:01.000Z, 1 IPv6'
    """
    names = ", ".join("stdin" if name == "-" else str(name) for name in inputs)
    records = sum(len(batch) for batch in batches)
    if not records:
        return f"no records from {names}"
    first_ms = min(int(b["stime_ms"].min()) for b in batches if len(b))
    last_ms = max(int((b["stime_ms"] + b["elapsed_ms"]).max()) for b in batches if len(b))
    ipv6 = sum(int(b["ipv6"].sum()) for b in batches)
    return f"{records} records from {names}, {iso_utc(first_ms)} to {iso_utc(last_ms)}, {ipv6} IPv6"
