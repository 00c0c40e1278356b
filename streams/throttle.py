"""A wall-clock rate limit for exports (metrics), never for computations."""

from __future__ import annotations

import time


class Every:
    """True at most once per ``seconds``: ``if every.due(): export()``.

    Exports such as top-N gauges scan a table; doing it once a second instead of
    once a message keeps the agents' hot path free of it.
    """

    def __init__(self, *, seconds: float) -> None:
        self.seconds = seconds
        self._next_s = 0.0

    def due(self) -> bool:
        now_s = time.monotonic()
        if now_s < self._next_s:
            return False
        self._next_s = now_s + self.seconds
        return True
