"""Test inputs for the scorers, built the way the stream builds them: through the columns."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from silkwatch.detectors.hosts import HostHour, HostKey
from silkwatch.detectors.hoststate import HostHours, exfil_inputs
from silkwatch.detectors.pairs import PairConfig, PairHistory, PairKey
from silkwatch.detectors.pairstate import PairState


def fold_pairs(
    batches: Iterable[np.ndarray], config: PairConfig | None = None
) -> dict[PairKey, PairHistory]:
    """Every pair of ``batches`` as the stream's pair state holds it, batch by batch."""
    state = PairState(config, seed=7)
    for batch in batches:
        state.update(batch)
    state.compact()
    return state.histories(np.flatnonzero(state.counts > 0))


def fold_hosts(
    batches: Iterable[np.ndarray], hour_ms: int, **exfil: int
) -> tuple[dict[HostKey, HostHour], dict[HostKey, HostHour]]:
    """What the stream hands the exfiltration scorer for ``hour_ms``, batch by batch.

    :param exfil: ``baseline_hours``, ``min_sent_bytes``, ``max_destinations``
        (default 24, 1 MB, 32 as in :class:`silkwatch.detectors.exfil.ExfilConfig`)
    """
    pairs, sent = PairState(seed=7), HostHours("sent", seed=7)
    received = HostHours("received", seed=7)
    for batch in batches:
        pairs.update(batch)
        sent.update(batch)
        received.update(batch)
    settings = {"baseline_hours": 24, "min_sent_bytes": 1_000_000, "max_destinations": 32}
    inputs = exfil_inputs(sent, received, pairs, hour_ms=hour_ms, **(settings | exfil))
    return inputs if inputs is not None else ({}, {})
