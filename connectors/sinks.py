"""The one interface of a flow-batch output: ``send`` a batch, ``flush`` what was sent.

The collector hands each decoded burst to every output it was given (the SiLK
repository, a SiLK stream, the Kafka publisher) and flushes them once per
burst, so readers see the flows at once. Outputs share no base class; each
meets this protocol (the style guide's ``BatchSink``, with the ``flush`` the
collector needs per burst). Opening and closing stay with the concrete class.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from silkwatch.detectors.schema import FlowBatch


@runtime_checkable
class BatchSink(Protocol):
    """An output of flow batches."""

    def send(self, batch: FlowBatch) -> None:
        """Take one batch."""
        ...

    def flush(self) -> None:
        """Make what was sent visible (written, acknowledged)."""
        ...
