"""The worker's consumer asks the broker to answer fetches within 100 ms."""

from __future__ import annotations

from silkwatch.streams.transport import FETCH_MAX_WAIT_MS, App


async def test_the_worker_consumer_fetches_promptly():
    app = App("silkwatch-test-fetch", broker="kafka://127.0.0.1:1", store="memory://")
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS == 100  # Faust's own: 1,500
    finally:
        await consumer.stop()  # never started: releases the client without a connection
