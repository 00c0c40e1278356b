"""Read-ahead: same items, same order, same errors, and the thread goes away."""

from __future__ import annotations

import threading
import time

import pytest

from silkwatch.connectors.readahead import read_ahead


def test_items_arrive_in_order_then_the_source_error_after_them():
    def source():
        yield from range(100)
        raise ValueError("corrupt block at offset 4242")

    received = []
    with pytest.raises(ValueError, match="offset 4242"):
        for item in read_ahead(source(), depth=3):
            received.append(item)
    assert received == list(range(100))


def test_a_consumer_that_stops_early_stops_and_closes_the_source():
    closed = threading.Event()

    def source():
        try:
            yield from range(1_000_000)
        finally:
            closed.set()

    ahead = read_ahead(source(), depth=2)
    assert [next(ahead) for _ in range(5)] == [0, 1, 2, 3, 4]
    ahead.close()
    assert closed.wait(timeout=5)  # the reader noticed, and the source's cleanup ran
    time.sleep(0.3)
    assert not [t for t in threading.enumerate() if t.name == "silkwatch-read-ahead"]
