"""Whole-network hours: the partitions' closed hours merged into one view.

Each partition closes its own hours on its own event-time watermark and hands
what it counted on as a :class:`~silkwatch.streams.processing.ClosedHour`: the embedded
runner straight to :meth:`NetworkHours.close`, the worker through the bins
topic (one partition, so one consumer sees every partition's report in order;
:mod:`silkwatch.streams.binstopic` is its JSON). A network hour is closed once every
partition that has reported so far has moved past it; a partition that never
carried a flow does not hold the network back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Container, Hashable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np

from silkwatch.detectors.alerts import Alert, AlertConfig, rate
from silkwatch.detectors.config import DetectorsConfig
from silkwatch.detectors.ledger import alert_id
from silkwatch.detectors.timebins import BinVolumes
from silkwatch.detectors.volume import VolumeConfig, score_volume
from silkwatch.streams.processing import ClosedHour, Stamped, apply_deltas

#: the breakdowns the volume detector watches, and how their groups are named
_VOLUME_GROUPS = {"total": "network", "sensor": "sensor {}"}


def _sum(old: list[float] | None, new: Sequence[float]) -> list[float]:
    return list(new) if old is None else [a + b for a, b in zip(old, new, strict=True)]


def _latest(old: int | None, new: int) -> int:
    return new if old is None else max(old, new)


class NetworkHours:
    """Merges the partitions' closed hours into network hours.

    :param store: ``("volume", hour, dimension, value)`` → ``[records, bytes, packets]``
        summed over partitions, and ``("closed", partition)`` → closed-until ms;
        a Faust table (one partition) or a dict.
    """

    def __init__(
        self, store: MutableMapping[Hashable, Stamped], *, retention_ms: int = 48 * 3_600_000
    ) -> None:
        self.store = store
        self.retention_ms = retention_ms

    def close(self, hour: ClosedHour, *, offset: int, config: DetectorsConfig) -> list[Alert]:
        """Fold one partition's closed hour in; the volume alerts of the network hours it completed.

        Both runners call this for every hour a partition closes; ``offset`` numbers the
        hours as they arrive (the bins topic's offset in the worker), so a replayed one
        is not counted twice.
        """
        return [
            alert
            for done in self.add(hour, offset=offset)
            for alert in self.volume_alerts(done, config.volume, config.alerts)
        ]

    def add(self, hour: ClosedHour, *, offset: int) -> list[int]:
        """Fold one partition's closed hour in; return network hours it completed."""
        before = self.closed_until_ms()
        volumes = {
            ("volume", hour.hour_start_ms, dim, value): counts
            for (dim, value), counts in hour.volumes.items()
        }
        apply_deltas(self.store, 0, volumes, _sum, offset)
        closed = {("closed", hour.partition): hour.closed_until_ms}
        apply_deltas(self.store, 0, closed, _latest, offset)
        after = self.closed_until_ms()
        if after is None:
            return []
        hours = self.hours()
        for key in [
            k for k in self.store if k[1] == "volume" and k[2] < max(hours) - self.retention_ms
        ]:
            del self.store[key]
        return sorted(h for h in hours if (before is None or h >= before) and h < after)

    def closed_until_ms(self) -> int | None:
        """Network hours starting before this instant are complete."""
        marks = [s.value for key, s in self.store.items() if key[1] == "closed"]
        return min(marks) if marks else None

    def hours(self) -> set[int]:
        """Start of every hour with traffic that is still kept."""
        return {key[2] for key in self.store if key[1] == "volume"}

    def volumes(self, hour_start_ms: int) -> dict[tuple[str, int], list[float]]:
        """(dimension, value) → ``[records, bytes, packets]`` of one network hour."""
        return {
            (key[3], key[4]): stamped.value
            for key, stamped in self.store.items()
            if key[1] == "volume" and key[2] == hour_start_ms
        }

    def volume_alerts(
        self, hour_start_ms: int, config: VolumeConfig, alerts: AlertConfig | None = None
    ) -> list[Alert]:
        """Peaks of the whole network's and each sensor's bytes in a completed hour.

        Not deduplicated: a network hour completes once, so each peak is reported
        once, as revision 1 of a finding whose id names the group and the hour.
        Severities follow the site's ``[alerts]`` cuts.
        """
        found: list[Alert] = []
        for dimension, name in _VOLUME_GROUPS.items():
            history = self._history(dimension)
            names = {int(g): name.format(g) for g in np.unique(history.group)}
            found += score_volume(history, hour_start_ms=hour_start_ms, config=config, names=names)
        key = ("volume", None, None, None, None)
        return [
            dataclasses.replace(
                a, id=alert_id((*key[:1], a.evidence["group"], *key[2:]), hour_start_ms), revision=1
            )
            for a in rate(found, alerts or AlertConfig())
        ]

    def _history(self, dimension: str) -> BinVolumes:
        rows = sorted(
            (key[4], key[2], *stamped.value)
            for key, stamped in self.store.items()
            if key[1] == "volume" and key[3] == dimension
        )
        columns = np.array(rows, dtype=np.float64).reshape(-1, 5).T
        return BinVolumes(
            group=columns[0].astype(np.int64),
            bin_start_ms=columns[1].astype(np.int64),
            records=columns[2],
            bytes=columns[3],
            packets=columns[4],
        )

    @staticmethod
    def summarise(
        bins: Mapping[Hashable, Stamped], partitions: Container[int] | None = None
    ) -> list[dict[str, Any]]:
        """Partition bins summed per (hour, dimension, value), for the JSON view.

        :param partitions: only these partitions (a worker's active ones: its table
            also holds standby copies of other workers' partitions). Default - all
        """
        totals: dict[tuple[int, str, int], list[float]] = {}
        for (partition, start_ms), stamped in list(bins.items()):
            if partitions is not None and partition not in partitions:
                continue
            for (dimension, value), row in stamped.value.items():
                key = (start_ms, dimension, value)
                totals[key] = _sum(totals.get(key), [float(x) for x in row])
        return [
            {"bin_start_ms": h, "dimension": d, "value": v, "records": r, "bytes": b, "packets": p}
            for (h, d, v), (r, b, p) in sorted(totals.items())
        ]


def network_totals(rows: Iterable[Mapping[str, Any]]) -> dict[int, tuple[float, float, float]]:
    """``bin_start_ms`` → (records, bytes, packets) of the ``total`` dimension of a summary."""
    return {
        row["bin_start_ms"]: (row["records"], row["bytes"], row["packets"])
        for row in rows
        if row["dimension"] == "total"
    }
