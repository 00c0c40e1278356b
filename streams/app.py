"""The Faust application: topics, tables, agents and web views of a silkwatch worker.

Start it with ``silkwatch worker --broker kafka://HOST:PORT`` or, equivalently,
``SILKWATCH_BROKER=kafka://HOST:PORT faust -A streams.app worker``. Settings come
from ``SILKWATCH_*`` environment variables (:mod:`streams.settings`).

The agents are thin adapters: they decode a frame and hand the batch to the
same :mod:`streams.processing` functions the embedded runner calls, with Faust
tables as the stores. Every table key starts with the source partition, so
each key is written from one partition only and recovers from one changelog
partition.
"""

from __future__ import annotations

import logging
import time

import faust
from prometheus_client import CollectorRegistry

from connectors.kafka.frame import FrameError, decode_frame
from connectors.prometheus import (
    create_metrics,
    record_batch,
    record_batch_latency,
    record_decode_error,
    render,
)
from streams.network import NetworkHours, closed_hour_message
from streams.processing import BinStores, PartitionProcessor, StreamConfig
from streams.settings import WorkerSettings

logger = logging.getLogger(__name__)

settings = WorkerSettings.from_env()
config = StreamConfig()
registry = CollectorRegistry()
metrics = create_metrics(registry)

app = faust.App(
    settings.app_id,
    broker=settings.broker,
    store="memory://",
    topic_partitions=settings.partitions,
    datadir=str(settings.data_dir),
    web_host=settings.web_host,
    web_port=settings.web_port,
    consumer_auto_offset_reset="earliest",
    processing_guarantee="at_least_once",
    broker_session_timeout=10.0,
    broker_heartbeat_interval=1.0,
    broker_commit_every=1,
    producer_max_request_size=4 * 1024 * 1024,
    consumer_max_fetch_size=16 * 1024 * 1024,
)

flows_topic = app.topic(
    settings.flows_topic,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
)
bins_topic = app.topic(settings.bins_topic, value_serializer="json", partitions=1)
alerts_topic = app.topic(settings.alerts_topic, value_serializer="json", partitions=1)



def _table(name: str, partitions: int) -> faust.Table:
    """A table whose keys (tuples) and values (numpy arrays, dataclasses) travel pickled.

    Faust derives a table's codecs from ``key_type``/``value_type`` and falls back
    to JSON, which cannot carry tuples or arrays; the changelog is written and read
    only by silkwatch workers, so pickle is safe here.
    """
    table = app.Table(name, partitions=partitions)
    table.key_serializer = table.value_serializer = "pickle"
    return table


bins_table = _table("bins", settings.partitions)
progress_table = _table("progress", settings.partitions)
network_table = _table("network", 1)


@app.agent(flows_topic)
async def count_bins(stream: faust.StreamT) -> None:
    """Hourly byte bins per partition; closed hours go to the bins topic."""
    stores = BinStores(bins_table, progress_table)
    async for event in stream.events():
        started_s = time.perf_counter()
        message = event.message
        try:
            batch = decode_frame(event.value)
        except FrameError as exc:
            record_decode_error(metrics, exc.reason)
            logger.error(
                "skipping bad frame topic=%s partition=%d offset=%d error=%s",
                message.topic,
                message.partition,
                message.offset,
                exc,
            )
            continue
        processor = PartitionProcessor(stores, message.partition, config)
        for hour in processor.process(batch, message.offset):
            await bins_topic.send(value=closed_hour_message(hour, processor.closed_until_ms))
        record_batch(metrics, batch)
        record_batch_latency(metrics, time.perf_counter() - started_s)


@app.agent(bins_topic)
async def close_network_hours(stream: faust.StreamT) -> None:
    """Merge the partitions' closed hours into whole-network hours."""
    network = NetworkHours(network_table)
    async for event in stream.events():
        network.add(event.value, offset=event.message.offset)


@app.page("/silkwatch/bins/")
async def bins_view(web, request):
    """This worker's hourly bins summed over its partitions, as JSON."""
    return web.json(NetworkHours.summarise(bins_table))


@app.page("/metrics")
async def metrics_view(web, request):
    """Prometheus text exposition of this worker's metrics."""
    return web.bytes(render(registry), content_type="text/plain; version=0.0.4; charset=utf-8")
