"""Columns that grow a few rows at a time without copying themselves each time.

The detection state adds the new pairs and host hours of every batch as rows of
its columns. Concatenating gave each column a new array per batch: a copy of
every row, for the few hundred that were new. Here a column is a view of a
buffer with an eighth more rows than asked, refilled only when it runs out.
"""

from __future__ import annotations

import numpy as np


def grown(
    column: np.ndarray, n: int, fill: object, room: dict[str, np.ndarray], name: str
) -> np.ndarray:
    """``column`` with rows up to ``n`` (the new ones ``fill``), as a view of ``room[name]``.

    ``room`` keeps each column's buffer; a column that is not a view of its buffer
    (replaced since, e.g. by a compaction) starts a new one.

    >>> room: dict[str, np.ndarray] = {}
    >>> a = grown(np.array([1, 2]), 4, 0, room, "a")
    >>> a.tolist(), len(room["a"])
    ([1, 2, 0, 0], 4)
    >>> b = grown(a, 4, 9, room, "a")  # enough rows already: the same column
    >>> b is a
    True
    >>> c = grown(grown(np.zeros(16, np.int64), 17, 7, room, "c"), 18, 8, room, "c")
    >>> c.tolist()[15:], c.base is room["c"], len(room["c"])  # the second one fitted
    ([0, 7, 8], True, 19)
    """
    have = len(column)
    if n <= have:
        return column
    buffer = room.get(name)
    if buffer is None or column.base is not buffer or len(buffer) < n:
        buffer = np.empty((n + n // 8, *column.shape[1:]), dtype=column.dtype)
        buffer[:have] = column
        room[name] = buffer
    buffer[have:n] = fill
    return buffer[:n]


def held_bytes(column: np.ndarray, room: dict[str, np.ndarray], name: str) -> int:
    """The memory ``column`` holds: its whole buffer when it is a view of one."""
    buffer = room.get(name)
    return buffer.nbytes if buffer is not None and column.base is buffer else column.nbytes
