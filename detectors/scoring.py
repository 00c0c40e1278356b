"""The registry of pair scorers the detection engine runs.

Each entry is ``(config attribute, scorer)``: the engine calls
``scorer(pairs, now_ms=..., config=getattr(detectors_config, attribute),
site=detectors_config.site)`` with a
mapping of :class:`detectors.pairs.PairHistory` for the pairs worth scoring, and
treats every scorer alike. A new kind of pair detector is one module with one
``score_*`` function plus one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from detectors.alerts import Alert
from detectors.beacon import score_beacons
from detectors.dns import score_dns_tunnels
from detectors.pairs import PairHistory, PairKey
from detectors.strobe import score_strobes
from detectors.upload import score_uploads

PairScorer = Callable[..., list[Alert]]

#: (attribute of DetectorsConfig, scorer over pair histories)
PAIR_SCORERS: tuple[tuple[str, PairScorer], ...] = (
    ("beacon", score_beacons),
    ("dns", score_dns_tunnels),
    ("strobe", score_strobes),
    ("upload", score_uploads),
)


def score_pairs(
    pairs: Mapping[PairKey, PairHistory], *, now_ms: int, detectors: Any
) -> list[Alert]:
    """Every registered pair scorer's alerts for ``pairs`` at event time ``now_ms``."""
    found: list[Alert] = []
    for attribute, scorer in PAIR_SCORERS:
        found += scorer(
            pairs, now_ms=now_ms, config=getattr(detectors, attribute), site=detectors.site
        )
    return found
