"""Produce the next batches on a thread while the caller works on this one.

Reading and decoding (the ``read`` system call, the compiled field mover)
and most numpy work release the GIL, so on two cores a reader one or two
batches ahead overlaps input with aggregation: ``silkwatch stats`` takes
max(read, group) instead of their sum. Order is kept, and an error raised
by the source (a corrupt file, say) reaches the caller after every batch
before it, exactly as without the thread.

Example
-------
>>> list(read_ahead(iter(range(5))))
[0, 1, 2, 3, 4]
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()
_POLL_S = 0.1


def read_ahead(source: Iterator[T], depth: int = 2) -> Iterator[T]:
    """The items of ``source``, computed by a thread up to ``depth`` items ahead."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        """Hand one entry over unless the consumer has gone; False once it has."""
        while not stop.is_set():
            try:
                ready.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in source:
                if not put((item, None)):
                    break
            else:
                put((_END, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((_END, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()  # a generator's cleanup (open files) runs on its own thread

    thread = threading.Thread(target=produce, name="silkwatch-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = ready.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
