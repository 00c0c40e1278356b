"""The baseline of ``bench_stream_e2e.py``: the common Faust pattern, one message per flow.

Each flow travels as its own JSON message, is deserialised into a ``faust.Record``
and updates a table one key at a time: what a first Faust version of silkwatch
would do. Run by the benchmark as ``faust -A bench.per_record_app worker``.
"""

from __future__ import annotations

import os
import tempfile

import faust

BROKER = os.environ.get("SILKWATCH_BROKER", "kafka://127.0.0.1:9092")
TOPIC = os.environ.get("BENCH_TOPIC", "bench-records")
HOUR_MS = 3_600_000

app = faust.App(
    os.environ.get("SILKWATCH_APP_ID", "bench-per-record"),
    broker=BROKER,
    store="memory://",
    topic_partitions=8,
    web_port=int(os.environ.get("SILKWATCH_WEB_PORT", "6067")),
    web_host="127.0.0.1",
    consumer_auto_offset_reset="earliest",
    datadir=os.environ.get("BENCH_DATA_DIR", os.path.join(tempfile.gettempdir(), "per-record")),
)


class Flow(faust.Record, serializer="json"):
    """One flow record."""

    sip: str
    stime_ms: int
    bytes: int
    packets: int


flows = app.topic(TOPIC, value_type=Flow, partitions=8, internal=True)
records = app.Table("records", default=int, partitions=8)
hour_bytes = app.Table("hour-bytes", default=int, partitions=8)


@app.agent(flows)
async def count(stream: faust.StreamT) -> None:
    """Per flow: two table updates."""
    async for flow in stream:
        records["all"] += 1
        hour_bytes[flow.stime_ms - flow.stime_ms % HOUR_MS] += flow.bytes


@app.page("/records/")
async def records_view(web, request):
    """Flows counted by this worker."""
    return web.json({"records": records["all"]})
