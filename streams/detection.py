"""The detection side of the stream: per-host and per-pair state, scored when an hour closes.

Like :mod:`streams.processing`, this runs unchanged on Faust tables (the worker)
and on dicts (the embedded runner). Per batch it folds the keyed aggregates of
:mod:`detectors.hosts` and :mod:`detectors.pairs` into the stores; when the
partition's event-time watermark closes an hour it calls the scorers on the
partition's hosts and pairs, drops repeats with :func:`detectors.alerts.dedupe`
and expires what fell out of the windows. Because flows are partitioned by
source address, every host and pair a scorer needs lives in its partition.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Hashable, Mapping, MutableMapping
from typing import Any, NamedTuple

from detectors.alerts import Alert, dedupe
from detectors.beacon import score_beacons
from detectors.config import DetectorsConfig
from detectors.dns import score_dns_tunnels
from detectors.exfil import score_exfil
from detectors.hosts import combine_hosts, expired_hosts, host_deltas
from detectors.pairs import combine_pairs, pair_deltas, shed_pairs
from detectors.schema import FlowBatch
from streams.processing import HourlyProcessor, Progress, Stamped, StreamConfig, apply_deltas

logger = logging.getLogger(__name__)


class DetectionStores(NamedTuple):
    """Where the detection side keeps its state (Faust tables or dicts)."""

    hosts_sent: MutableMapping[Hashable, Stamped]  # (partition, host, hour_start_ms)
    hosts_received: MutableMapping[Hashable, Stamped]  # (partition, host, hour_start_ms)
    pairs: MutableMapping[Hashable, Stamped]  # (partition, sip, dip, dport, proto)
    progress: MutableMapping[Hashable, Stamped]  # (partition, "detect") → Progress


class DetectionProcessor(HourlyProcessor):
    """Applies one partition's flow batches to host and pair state; scores closed hours.

    :param stores: the mappings to update
    :param partition: the Kafka partition this processor owns (0 when embedded)
    :param config: event-time settings shared with the bins side
    :param detectors: every detector's thresholds
    """

    progress_key = "detect"

    def __init__(
        self,
        stores: DetectionStores,
        partition: int,
        config: StreamConfig,
        detectors: DetectorsConfig,
    ) -> None:
        super().__init__(stores.progress, partition, config)
        self.stores = stores
        self.detectors = detectors

    def shed_count(self) -> int:
        """Pairs evicted so far because the pair table was full."""
        stamped = self._progress()
        return 0 if stamped is None else stamped.value.extra.get("shed_pairs", 0)

    def _apply(self, batch: FlowBatch, offset: int) -> None:
        # host statistics are hourly whatever the bin size: exfil baselines count hours
        sent, received = host_deltas(batch, max_destinations=self.detectors.exfil.max_destinations)
        combine_h = functools.partial(combine_hosts, config=self.detectors.exfil)
        apply_deltas(self.stores.hosts_sent, self.partition, sent, combine_h, offset)
        apply_deltas(self.stores.hosts_received, self.partition, received, combine_h, offset)
        pair_config = self.detectors.pairs
        combine_p = functools.partial(combine_pairs, config=pair_config)
        apply_deltas(
            self.stores.pairs, self.partition, pair_deltas(batch, pair_config), combine_p, offset
        )

    def _close_hours(self, state: Progress, start_ms: int, until_ms: int) -> list[Alert]:
        """New alerts of the hours in [start, until); then expiry and shedding."""
        sent = self._mine(self.stores.hosts_sent)
        hours = sorted({hour for (_, hour) in sent if start_ms <= hour < until_ms})
        found: list[Alert] = []
        if hours:
            received = self._mine(self.stores.hosts_received)
            pairs = self._mine(self.stores.pairs)
            for hour in hours:
                found += self._score(sent, received, pairs, hour)
        seen, fresh = dedupe(state.extra.get("dedupe", {}), found, self.detectors.alerts)
        state.extra["dedupe"] = seen
        self._expire(state)
        return fresh

    def _score(
        self,
        sent: Mapping[Any, Any],
        received: Mapping[Any, Any],
        pairs: Mapping[Any, Any],
        hour_ms: int,
    ) -> list[Alert]:
        end_ms = hour_ms + self.config.bin_ms
        d = self.detectors
        return [
            *score_exfil(sent, received, hour_start_ms=hour_ms, config=d.exfil),
            *score_beacons(pairs, now_ms=end_ms, config=d.beacon),
            *score_dns_tunnels(pairs, now_ms=end_ms, config=d.dns),
        ]

    def _expire(self, state: Progress) -> None:
        """Forget host hours past the baseline and pairs idle for a window; shed extra pairs."""
        keep_hours = self.detectors.exfil.baseline_hours + 1
        for store in (self.stores.hosts_sent, self.stores.hosts_received):
            for key in expired_hosts(
                self._mine(store), now_ms=state.watermark_ms, keep_hours=keep_hours
            ):
                del store[(self.partition, *key)]
        pairs = self._mine(self.stores.pairs)
        horizon_ms = state.watermark_ms - self.detectors.pairs.window_ms
        idle = [key for key, history in pairs.items() if history.last_ms < horizon_ms]
        for key in idle:
            del pairs[key]
        shed = shed_pairs(pairs, self.detectors.pairs.max_pairs)
        state.extra["shed_pairs"] = state.extra.get("shed_pairs", 0) + len(shed)
        for key in [*idle, *shed]:
            del self.stores.pairs[(self.partition, *key)]
