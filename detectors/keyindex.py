"""Dense slots for fixed-width keys: the index behind the columnar detection state.

Hosts and pairs live in numpy columns, one row (slot) per key; a
:class:`KeyIndex` maps each key of a batch to its row in one pass of the
compiled kernel :mod:`silkwatch.detectors._keyindex`, adding rows for keys it has not
seen. Rows are dense (``0 .. len - 1``), so per-key aggregates are plain
``np.add.at`` / ``np.maximum.at`` on the columns. Evicting keys compacts the
rows (:meth:`KeyIndex.keep`) and the caller compacts its columns with the same
mask. Only the keys are state: a checkpoint saves :attr:`KeyIndex.keys` and
:meth:`KeyIndex.from_keys` rebuilds the table.
"""

from __future__ import annotations

import secrets

import numpy as np

from silkwatch.detectors import _keyindex


class KeyIndex:
    """Keys of ``width`` 64-bit words → dense slots, growing as keys arrive.

    :param width: words per key
    :param seed: hash seed. Default - random per index, so colliding keys cannot
        be chosen from outside; slots do not depend on it (they follow arrival)

    Examples
    --------
    >>> index = KeyIndex(2)
    >>> index.slots(np.array([[1, 2], [3, 4], [1, 2]], dtype=np.uint64)).tolist()
    [0, 1, 0]
    >>> index.slots(np.array([[3, 4], [5, 6]], dtype=np.uint64)).tolist()
    [1, 2]
    >>> index.find(np.array([[5, 6], [7, 8]], dtype=np.uint64)).tolist(), len(index)
    ([2, -1], 3)
    >>> remap = index.keep(np.array([False, True, True]))
    >>> remap.tolist(), len(index), index.keys.tolist()
    ([-1, 0, 1], 2, [[3, 4], [5, 6]])
    >>> index.slots(np.array([[5, 6]], dtype=np.uint64)).tolist()
    [1]
    """

    def __init__(self, width: int, *, seed: int | None = None) -> None:
        self.width = width
        self.seed = secrets.randbits(64) if seed is None else seed
        self._stored = np.zeros((1024, width), dtype=np.uint64)
        self._table = np.zeros(4096, dtype=np.int32)
        self._used = 0
        #: counts the renumberings (:meth:`keep`): between two, slots are only added
        self.generation = 0

    def __len__(self) -> int:
        return self._used

    @property
    def keys(self) -> np.ndarray:
        """The keys in slot order (a view: copy it before the index changes)."""
        return self._stored[: self._used]

    @classmethod
    def from_keys(cls, keys: np.ndarray, *, seed: int | None = None) -> KeyIndex:
        """An index whose slots are the rows of ``keys`` (distinct), e.g. from a checkpoint.

        Raises ValueError when ``keys`` has the wrong shape or repeats a key.
        """
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        if keys.ndim != 2:
            raise ValueError(f"keys must be a 2-D array of uint64 rows, not shape {keys.shape}")
        index = cls(keys.shape[1], seed=seed)
        index._reserve(len(keys))
        index._stored[: len(keys)] = keys
        index._used = len(keys)
        _keyindex.rebuild(index._table, index._stored, index._used, index.width, index.seed)
        return index

    def slots(self, queries: np.ndarray) -> np.ndarray:
        """The slot (int32) of each row of ``queries``; unknown keys get new slots in order."""
        queries = np.ascontiguousarray(queries, dtype=np.uint64).reshape(-1, self.width)
        out = np.empty(len(queries), dtype=np.int32)
        self._reserve(len(queries))
        self._used = _keyindex.lookup(
            self._table, self._stored, self._used, self.width, self.seed, queries, out, True
        )
        self._trim()
        return out

    def find(self, queries: np.ndarray) -> np.ndarray:
        """The slot (int32) of each row of ``queries``, -1 for keys not held (nothing added)."""
        queries = np.ascontiguousarray(queries, dtype=np.uint64).reshape(-1, self.width)
        out = np.empty(len(queries), dtype=np.int32)
        _keyindex.lookup(
            self._table, self._stored, self._used, self.width, self.seed, queries, out, False
        )
        return out

    def keep(self, mask: np.ndarray) -> np.ndarray:
        """Keep the slots where ``mask`` is true, renumbered densely in order.

        Returns the old slot → new slot map (-1 for evicted slots), for the
        caller's columns and any stored slot numbers.
        """
        mask = np.asarray(mask, dtype=bool)
        remap = np.full(self._used, -1, dtype=np.int32)
        kept = int(mask.sum())
        remap[mask] = np.arange(kept, dtype=np.int32)
        self._stored[:kept] = self._stored[: self._used][mask]
        self._used = kept
        self.generation += 1
        _keyindex.rebuild(self._table, self._stored, self._used, self.width, self.seed)
        return remap

    def _reserve(self, more: int) -> None:
        """Room for ``more`` new keys: stored rows and a table at most half full."""
        need = self._used + more
        if need > len(self._stored):
            self._resize(max(need, len(self._stored) + len(self._stored) // 4))
        if 2 * need > len(self._table):
            self._rehash(_table_size(need))

    def _trim(self) -> None:
        """Give back what a lookup reserved for keys that turned out to be known.

        A batch's rows are reserved as if every key were new; a batch of a million
        flows from fifteen thousand hosts would otherwise leave the index holding a
        million rows (16 to 40 bytes each) for good.
        """
        if len(self._stored) > 2 * self._used + 1024:
            self._resize(self._used + self._used // 4 + 1024)
        if len(self._table) > 4 * _table_size(self._used):
            self._rehash(_table_size(self._used))

    def _resize(self, rows: int) -> None:
        stored = np.zeros((rows, self.width), dtype=np.uint64)
        stored[: self._used] = self._stored[: self._used]
        self._stored = stored

    def _rehash(self, size: int) -> None:
        self._table = np.zeros(size, dtype=np.int32)
        _keyindex.rebuild(self._table, self._stored, self._used, self.width, self.seed)

    @property
    def nbytes(self) -> int:
        """Memory held by the index (keys and table)."""
        return self._stored.nbytes + self._table.nbytes


def _table_size(keys: int) -> int:
    """The table for ``keys`` keys: a power of two, at least twice as many entries, 4096 or more."""
    return max(4096, 1 << (2 * keys - 1).bit_length()) if keys else 4096
