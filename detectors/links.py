"""Which source hosts contact each destination, kept by link: the beacon scorer's prevalence.

At every hour close the beacon scorer asks how many source hosts contacted each
destination over its window, and how many sources there are
(:func:`silkwatch.detectors.scoring.source_counts`). Hashing every active pair's
(source, destination) afresh took 9 % of the detection time on the demo day:
400,000 pairs at each of 24 closes. Here each pair's link is numbered once, when
the pair is new, and a close only marks the links of its active pairs. The DNS
scorer's resolver client counts are the same count over the querying pairs.
"""

from __future__ import annotations

import numpy as np

from silkwatch.detectors.growth import grown, held_bytes
from silkwatch.detectors.keyindex import KeyIndex


class SourceLinks:
    """The (source, destination) link of each pair of a :class:`PairState`, by slot.

    Links are numbered as pairs come and never forgotten one by one: once more
    than twice as many are held as there are pairs, they are numbered afresh.

    Examples
    --------
    >>> keys = np.array([[0, 1, 0, 9, 443], [0, 1, 0, 9, 80], [0, 2, 0, 9, 443],
    ...                  [0, 2, 0, 8, 53]], dtype=np.uint64)  # sip, sip, dip, dip, port
    >>> links = SourceLinks()
    >>> destinations, sources, total = links.counts(keys, np.ones(4, dtype=bool))
    >>> destinations.tolist(), sources.tolist(), total
    ([[0, 9], [0, 8]], [2, 1], 2)
    >>> links.keep(np.array([False, True, True, True]))  # the first pair went
    >>> _, sources, total = links.counts(keys[1:], np.array([True, False, False]))
    >>> sources.tolist(), total
    ([1], 1)
    """

    #: per pair its link; per link its source and its destination
    _COLUMNS = ("_link", "_source_of", "_destination_of")

    def __init__(self) -> None:
        self._renumber()

    def keep(self, mask: np.ndarray) -> None:
        """The pairs' slots were renumbered, keeping those where ``mask`` holds."""
        self._link = self._link[np.asarray(mask, dtype=bool)[: len(self._link)]]

    def counts(self, keys: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Over the pairs where ``active`` holds: destination key words (n, 2), the
        sources of each (int64), and the sources in all.

        :param keys: every pair's key row, in slot order (``PairState.index.keys``)
        """
        link = self._links_of(keys)
        on = np.zeros(len(self._links), dtype=bool)
        on[link[active]] = True
        live = np.flatnonzero(on)
        per_destination = np.bincount(self._destination_of[live], minlength=len(self._destinations))
        sources = np.zeros(len(self._sources), dtype=bool)
        sources[self._source_of[live]] = True
        held = np.flatnonzero(per_destination)
        return (
            self._destinations.keys[held],
            per_destination[held].astype(np.int64),
            int(np.count_nonzero(sources)),
        )

    @property
    def nbytes(self) -> int:
        """Memory held: the indexes and the link of each pair and source and destination
        of each link."""
        return (
            self._links.nbytes
            + self._sources.nbytes
            + self._destinations.nbytes
            + sum(held_bytes(getattr(self, name), self._room, name) for name in self._COLUMNS)
        )

    def _links_of(self, keys: np.ndarray) -> np.ndarray:
        """Every pair's link, numbering those of the pairs new since the last call."""
        if len(self._links) > 2 * len(keys) + 4096:
            self._renumber()
        have = len(self._link)
        if have < len(keys):
            self._link = grown(self._link, len(keys), 0, self._room, "_link")
            self._link[have:] = self._links.slots(keys[have:, :4])
            known = len(self._source_of)
            fresh = self._links.keys[known:]
            for name, words, index in (
                ("_source_of", fresh[:, :2], self._sources),
                ("_destination_of", fresh[:, 2:4], self._destinations),
            ):
                column = grown(getattr(self, name), len(self._links), 0, self._room, name)
                column[known:] = index.slots(words)
                setattr(self, name, column)
        return self._link[: len(keys)]

    def _renumber(self) -> None:
        self._links, self._sources, self._destinations = KeyIndex(4), KeyIndex(2), KeyIndex(2)
        self._room: dict[str, np.ndarray] = {}
        for name in self._COLUMNS:
            setattr(self, name, np.zeros(0, dtype=np.int32))
