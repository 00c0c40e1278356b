"""The embedded runner: the whole stream in one process, no Kafka.

``silkwatch detect FILE`` and the tests run the very processors the Faust
agents run (:mod:`silkwatch.streams.processing`, :mod:`silkwatch.streams.detection`,
:mod:`silkwatch.streams.network`) with dicts for tables and one partition; only the
transport differs, so both paths give the same bins and the same alerts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from silkwatch.detectors.alerts import Alert
from silkwatch.detectors.config import DetectorsConfig
from silkwatch.detectors.schema import FlowBatch
from silkwatch.streams.detection import DetectionProcessor
from silkwatch.streams.network import NetworkHours
from silkwatch.streams.processing import BinProcessor, BinStores, ClosedHour, StreamConfig


@dataclass
class RunResult:
    """What an embedded run found.

    :param alerts: new alerts in the order they were raised (event time)
    :param bins: hourly bins as the worker's ``/silkwatch/bins/`` view gives them
    :param flows: flow records read
    :param bytes: their bytes
    :param late_flows: flows that arrived after their hour had closed
    :param future_flows: flows stamped too far ahead of event time to be trusted
        (quarantined by the detection side until time reaches them)
    """

    alerts: list[Alert] = field(default_factory=list)
    bins: list[dict[str, Any]] = field(default_factory=list)
    flows: int = 0
    bytes: int = 0
    late_flows: int = 0
    future_flows: int = 0


class EmbeddedStream:
    """The stream's processors on dict stores, fed batch by batch.

    :param config: event-time settings. Default - ``StreamConfig()``
    :param detectors: detector thresholds. Default - ``DetectorsConfig()``
    """

    def __init__(
        self, config: StreamConfig | None = None, detectors: DetectorsConfig | None = None
    ) -> None:
        self.config = config or StreamConfig()
        self.detectors = detectors or DetectorsConfig()
        self.bin_stores = BinStores({}, {})
        self.bins = BinProcessor(self.bin_stores, 0, self.config)
        self.detection = DetectionProcessor(0, self.config, self.detectors)
        self.network = NetworkHours({}, retention_ms=self.config.retention_ms)
        self.result = RunResult()
        self._offset = 0
        self._network_offset = 0

    def send(self, batch: FlowBatch) -> list[Alert]:
        """Process one batch; return the alerts it raised."""
        self.result.flows += int(batch.size)
        self.result.bytes += int(batch["bytes"].sum())
        alerts = self.detection.process(batch, self._offset)
        alerts += self._network(self.bins.process(batch, self._offset))
        self._offset += 1
        self.result.alerts += alerts
        return alerts

    def finish(self) -> RunResult:
        """Close every remaining hour and return the run's result."""
        self.result.alerts += self.detection.flush()
        self.result.alerts += self._network(self.bins.flush())
        self.result.bins = NetworkHours.summarise(self.bin_stores.bins)
        progress = self.bin_stores.progress.get((0, "bins"))
        self.result.late_flows = progress.value.late_flows if progress else 0
        self.result.future_flows = self.detection.state.progress.future_flows
        return self.result

    def _network(self, closed: list[ClosedHour]) -> list[Alert]:
        alerts: list[Alert] = []
        for hour in closed:
            alerts += self.network.close(hour, offset=self._network_offset, config=self.detectors)
            self._network_offset += 1
        return alerts


def run(
    batches: Iterable[FlowBatch],
    *,
    config: StreamConfig | None = None,
    detectors: DetectorsConfig | None = None,
) -> RunResult:
    """Run the stream over finite input; every hour is closed at the end."""
    stream = EmbeddedStream(config, detectors)
    for batch in batches:
        stream.send(batch)
    return stream.finish()


def detect(batches: Iterable[FlowBatch], config: DetectorsConfig | None = None) -> list[Alert]:
    """The alerts of a finite input (the evaluation harness's entry point)."""
    return run(batches, detectors=config).alerts
