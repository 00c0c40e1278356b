"""Wires the stages: receiver → decoder → outputs, with the state file saved as it changes.

Each burst of datagrams is decoded into one batch, stamped with the sensor and
flowtype the collector was given (rwflowpack's probe), sent to every output and
flushed, so a reader of the repository or the stream sees it at once. Outputs
are :class:`~silkwatch.connectors.sinks.BatchSink` objects: ``send(batch)`` and ``flush()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from silkwatch.connectors.netflow.decoder import Decoder
from silkwatch.connectors.netflow.receiver import UdpReceiver, kernel_drops
from silkwatch.connectors.sinks import BatchSink
from silkwatch.detectors.schema import FlowBatch


@dataclass
class CollectTotals:
    """What one run collected, for the closing line."""

    datagrams: int = 0
    flows: int = 0
    bytes: int = 0


class Collector:
    """Decode bursts and hand them to the outputs.

    Parameters
    ----------
    decoder
        The decoder (its cache holds the templates loaded from ``state_path``).
    sinks
        Outputs, each with ``send`` and ``flush``.
    sensor, flowtype
        Stamped on every flow (SiLK ids). Default - sensor 0, flowtype 0 (``in``).
    state_path
        Where templates and sampling rates are saved when they change (at most
        every ``save_every_s``, and at close). Default - not saved.
    """

    def __init__(
        self,
        decoder: Decoder,
        sinks: Sequence[BatchSink],
        *,
        sensor: int = 0,
        flowtype: int = 0,
        state_path: Path | None = None,
        save_every_s: float = 5.0,
    ) -> None:
        self.decoder = decoder
        self.sinks = list(sinks)
        self.sensor, self.flowtype = sensor, flowtype
        self.state_path = state_path
        self.save_every_s = save_every_s
        self.totals = CollectTotals()
        self._saved_s = float("-inf")

    def handle(self, burst: list[tuple[bytes, str]], now_s: float | None = None) -> FlowBatch:
        """Decode one burst, send it to every output, flush; returns the batch."""
        now_s = time.monotonic() if now_s is None else now_s
        batch = self.decoder.decode(burst, now_s)
        self.totals.datagrams += len(burst)
        if batch.size:
            batch["sensor"] = self.sensor
            batch["flowtype"] = self.flowtype
            for sink in self.sinks:
                sink.send(batch)
            self.totals.flows += int(batch.size)
            self.totals.bytes += int(batch["bytes"].sum())
        for sink in self.sinks:
            sink.flush()
        if self.decoder.cache.dirty and now_s - self._saved_s >= self.save_every_s:
            self.save_state(now_s)
        return batch

    def save_state(self, now_s: float = 0.0) -> None:
        """Write the template cache now (if a state file was given)."""
        if self.state_path is not None:
            self.decoder.cache.save(self.state_path)
            self._saved_s = now_s

    def run(
        self, receiver: UdpReceiver, stop: threading.Event, *, idle_exit_s: float | None = None
    ) -> None:
        """Collect until ``stop`` is set (or, with ``idle_exit_s``, that long without data)."""
        last_s = time.monotonic()
        while not stop.is_set():
            burst = receiver.burst(timeout_s=0.2)
            now_s = time.monotonic()
            if burst:
                self.handle(burst, now_s)
                last_s = now_s
            elif self.decoder.pending_sets:
                self.handle([], now_s)  # age held data sets
            if idle_exit_s is not None and self.totals.datagrams and now_s - last_s > idle_exit_s:
                break
        self.handle(receiver.burst(timeout_s=0.0))
        self.save_state()

    def receive_dropped(self, receiver: UdpReceiver) -> int:
        """Kernel drops plus receive-queue drops so far."""
        return kernel_drops(receiver.sockets) + receiver.queue_dropped
