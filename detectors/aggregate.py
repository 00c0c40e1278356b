"""The one vocabulary of the stream's aggregates: ``empty / update / merge / result``.

Hosts (:class:`~silkwatch.detectors.hoststate.HostHours`), pairs
(:class:`~silkwatch.detectors.pairstate.PairState`) and byte bins
(:class:`~silkwatch.detectors.timebins.VolumeCounter`) are mutable columnar states,
filled batch after batch. Each says the same four things, so one contract suite
(``tests/detectors/test_contract.py``) checks them all and finds a new one by
itself: every class of :mod:`silkwatch.detectors` that has these methods is an
aggregate. Split equals whole: batches applied one by one, or two states each
fed a part and merged, give the very ``result`` of one state fed everything.

The group-by of ``rwuniq`` and ``rwstats`` (:mod:`silkwatch.detectors.groupby`) says
the same four words as functions on immutable values, since a command merges many
partial states in one pass; its own tests hold it to the same split-equals-whole.
"""

from __future__ import annotations

from typing import Protocol, Self, runtime_checkable

from silkwatch.detectors.schema import FlowBatch


@runtime_checkable
class Aggregate(Protocol):
    """A state filled batch by batch; what a partition keeps between batches."""

    def empty(self) -> Self:
        """A fresh state with this one's settings (nothing seen yet)."""
        ...

    def update(self, batch: FlowBatch) -> object:
        """Add a batch's flows; the batch is not modified."""
        ...

    def merge(self, other: Self) -> None:
        """Fold ``other`` (same settings) into this state, as if its flows came after ours."""
        ...

    def result(self) -> object:
        """The numbers held, as a value compared with ``==``; reading changes nothing."""
        ...
