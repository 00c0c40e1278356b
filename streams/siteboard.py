"""The partitions' population parts, gathered: the detection engine's :class:`SiteExchange`.

Each partition's processor publishes its part of the site at every hour close
(:func:`silkwatch.detectors.population.population_part`) and says how far it has
closed; the hour is scored once every partition of the flows topic is past it,
with their parts merged. On Kafka every worker feeds its board from the
population topic (:mod:`silkwatch.streams.sitetopic`), which carries what the
other workers' partitions published.

A partition that never gets there (no flows of its own, or a worker gone for
good) must not stop every other: after ``wait_s`` of wall time, or when the
worker gives up on it (:meth:`SiteBoard.give_up`: a waiting partition holds too
many messages), an hour is scored with the parts that are there, logged once
and counted. Instants older
than ``keep_ms`` before the slowest partition are forgotten.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from silkwatch.detectors.population import PopulationPart, empty_part, merge_parts
from silkwatch.detectors.schema import HOUR_MS

logger = logging.getLogger(__name__)


class SiteBoard:
    """The parts of ``partitions`` partitions by instant, and how far each has closed.

    :param partitions: how many partitions make the site (the flows topic's; None
        until known: no hour is complete before)
    :param wait_s: score an hour anyway after waiting this long for a partition
        (wall time). Default - None (wait for ever: a finite replay in one process)
    :param keep_ms: instants kept before the slowest partition. Default - 48 h
    :param clock: wall clock in seconds. Default - ``time.monotonic``
    :param on_incomplete: called for each site scored without a partition's part
        (the worker counts it in ``silkwatch_site_incomplete_closes_total``)

    >>> from silkwatch.detectors.population import empty_part
    >>> board = SiteBoard(2)
    >>> board.publish(0, empty_part(7_200_000))
    >>> board.site(7_200_000) is None  # partition 1 has not closed that hour yet
    True
    >>> board.reached(1, 10_800_000)  # it closed past it, with nothing to publish
    >>> board.site(7_200_000).now_ms
    7200000
    """

    def __init__(
        self,
        partitions: int | None,
        *,
        wait_s: float | None = None,
        keep_ms: int = 48 * HOUR_MS,
        clock: Callable[[], float] = time.monotonic,
        on_incomplete: Callable[[], object] | None = None,
    ) -> None:
        self.partitions = partitions
        self.wait_s = wait_s
        self.keep_ms = keep_ms
        self.clock = clock
        self.on_incomplete = on_incomplete
        self.parts: dict[int, dict[int, PopulationPart]] = {}  # now_ms → partition → part
        self.reached_ms: dict[int, int] = {}  # partition → closed up to
        self.sites: dict[int, PopulationPart] = {}  # now_ms → the merged site
        self.incomplete = 0  # sites scored without every partition's part
        self._asked_s: dict[int, float] = {}
        self._given_up: set[int] = set()

    def publish(self, partition: int, part: PopulationPart) -> None:
        """A partition's part at ``part.now_ms``; it has closed up to that instant."""
        self.parts.setdefault(part.now_ms, {})[partition] = part
        self.sites.pop(part.now_ms, None)
        self.reached(partition, part.now_ms)

    def reached(self, partition: int, until_ms: int) -> None:
        """A partition has published all it will for instants up to ``until_ms``."""
        if until_ms > self.reached_ms.get(partition, -(2**62)):
            self.reached_ms[partition] = until_ms
            self._forget()

    def site(self, now_ms: int) -> PopulationPart | None:
        """Every partition's part at ``now_ms`` merged, or None while one is still behind."""
        if now_ms in self.sites:
            return self.sites[now_ms]
        if self.partitions is None:
            return None
        behind = [p for p in range(self.partitions) if self.reached_ms.get(p, -(2**62)) < now_ms]
        if behind and now_ms not in self._given_up:
            if self.wait_s is None:
                return None
            asked_s = self._asked_s.setdefault(now_ms, self.clock())
            if self.clock() - asked_s < self.wait_s:
                return None
        if behind:
            self.incomplete += 1
            if self.on_incomplete is not None:
                self.on_incomplete()
            logger.warning(
                "site at %d: partitions %s did not close that hour in time; "
                "scoring it with the other partitions' parts",
                now_ms,
                behind,
            )
        parts = list(self.parts.get(now_ms, {}).values())
        site = merge_parts(parts) if parts else empty_part(now_ms)
        self.sites[now_ms] = site
        return site

    def give_up(self, now_ms: int) -> None:
        """Stop waiting for ``now_ms``: a partition holds too much while it waits."""
        self._given_up.add(now_ms)

    def latest(self) -> PopulationPart | None:
        """The newest merged site (None before the first)."""
        return self.sites[max(self.sites)] if self.sites else None

    def _forget(self) -> None:
        if self.partitions is None or len(self.reached_ms) < self.partitions:
            return
        before_ms = min(self.reached_ms.values()) - self.keep_ms
        for table in (self.parts, self.sites, self._asked_s):
            for now_ms in [t for t in table if t < before_ms]:
                del table[now_ms]
        self._given_up = {t for t in self._given_up if t >= before_ms}
