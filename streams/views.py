"""What the worker's web views and top-N gauges read from the detection processors' columns."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from silkwatch.detectors.hoststate import host_bytes
from silkwatch.detectors.schema import address_text
from silkwatch.streams.detection import DetectionProcessor


def host_rows(processors: Iterable[DetectionProcessor]) -> list[dict[str, Any]]:
    """Per (host, hour, direction) totals of the processors, by hour then bytes descending."""
    rows = []
    for processor in processors:
        for direction in ("sent", "received"):
            hosts = getattr(processor.state, direction)
            keys, totals = hosts.index.keys, hosts.totals
            for slot in range(len(hosts)):
                flows, packets, octets = totals[slot, :3].tolist()
                rows.append(
                    {
                        "host": address_text(host_bytes(keys[slot])),
                        "hour_start_ms": int(keys[slot, 2]),
                        "direction": direction,
                        "flows": flows,
                        "bytes": octets,
                        "packets": packets,
                        "bytes_per_packet": octets / packets if packets else 0.0,
                    }
                )
    return sorted(rows, key=lambda r: (r["hour_start_ms"], -r["bytes"]))


def top_host_columns(
    processors: Iterable[DetectionProcessor],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bytes and packets each source sent in its newest hour (for the bubble view).

    Returns the host column (``V16``), its IPv6 flags, bytes and packets.
    """
    keys, totals = [], []
    for processor in processors:
        sent = processor.state.sent
        if len(sent):
            keys.append(sent.index.keys.copy())
            totals.append(sent.totals[: len(sent), 1:3])
    if not keys:
        empty = np.zeros(0)
        return np.zeros(0, "V16"), np.zeros(0, bool), empty, empty
    key, total = np.concatenate(keys), np.concatenate(totals)
    order = np.lexsort((key[:, 2], key[:, 1], key[:, 0]))  # by host, newest hour last
    key, total = key[order], total[order]
    last = np.r_[(key[1:, :2] != key[:-1, :2]).any(axis=1), True]
    hosts = key[last, :2].astype(">u8").view("V16").reshape(-1)
    ipv6 = ~((key[last, 0] == 0) & ((key[last, 1] >> np.uint64(32)) == 0xFFFF))
    return hosts, ipv6, total[last, 1].astype(np.float64), total[last, 0].astype(np.float64)


def partition_status(held: Any) -> dict[str, Any]:
    """One detect partition as JSON: progress, state size, and everything it dropped."""
    state = held.processor.state
    progress = state.progress
    return {
        "offset": state.offset,
        "checkpointed_offset": held.checkpointed_offset,
        "watermark_ms": progress.watermark_ms,
        "closed_until_ms": progress.closed_until_ms,
        "pairs": len(state.pairs),
        "host_hours": len(state.sent) + len(state.received),
        "state_bytes": state.nbytes,
        "late_flows": progress.late_flows,
        "future_flows": progress.future_flows,
        "quarantined_flows": held.processor.quarantined,
        "deferred_flows": held.processor.deferred,
        "dropped_future_flows": progress.dropped_future_flows,
        "shed_pairs": state.pairs.counters.shed_pairs,
        "shed_host_hours": state.shed_host_hours,
        "alerts_remembered": len(state.ledger),
    }
