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
import warnings

import faust
import numpy as np
from prometheus_client import CollectorRegistry

from connectors.geoip import CountryDB
from connectors.kafka.frame import FrameError, decode_frame
from connectors.prometheus import (
    create_metrics,
    record_alerts,
    record_batch,
    record_batch_latency,
    record_consumer_lag,
    record_countries,
    record_decode_error,
    record_hour,
    record_shed,
    record_top_hosts,
    render,
)
from detectors.config import load_config
from detectors.pairs import address_text
from streams.detection import DetectionProcessor, DetectionStores
from streams.network import NetworkHours, closed_hour_message, network_totals
from streams.processing import BinProcessor, BinStores, StreamConfig
from streams.settings import WorkerSettings
from streams.throttle import Every
from streams.transport import App

logger = logging.getLogger(__name__)

settings = WorkerSettings.from_env()
config = StreamConfig()
detectors = load_config(settings.detectors_config)
registry = CollectorRegistry()
metrics = create_metrics(registry)
metrics.decode_errors.labels(FrameError.reason)  # exported as 0 before the first bad frame
countries = CountryDB()
processed_offsets: dict[int, int] = {}  # flows partition → offset of the last message binned

app = App(
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
    producer_max_request_size=4 * 1024 * 1024,
    consumer_max_fetch_size=16 * 1024 * 1024,
)

# internal=True: the worker creates its topics when they do not exist yet, so it
# can start before the first publisher (Faust skips a missing source topic).
flows_topic = app.topic(
    settings.flows_topic,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
    internal=True,
)
bins_topic = app.topic(settings.bins_topic, value_serializer="json", partitions=1, internal=True)
alerts_topic = app.topic(
    settings.alerts_topic, value_serializer="json", partitions=1, internal=True
)


# Table changelogs are pickled (below): written and read only by silkwatch workers.
warnings.filterwarnings("ignore", message="The pickle codec", module="faust")


def _table(name: str, source: faust.TopicT) -> faust.Table:
    """A table fed from ``source``, with keys (tuples) and values (arrays, dataclasses) pickled.

    Faust derives a table's codecs from ``key_type``/``value_type`` and falls back
    to JSON, which cannot carry tuples or arrays; the changelog is written and read
    only by silkwatch workers, so pickle is safe here.

    Faust also re-checks, on the first write, that the changelog has as many
    partitions as the source topic, by asking the consumer's metadata cache; on a
    busy broker that cache can still say "0 partitions" for a changelog created a
    moment before, which crashes the agent. The worker declares the source topic
    and every changelog itself with the same partition count, so the check is
    marked done here.
    """
    table = app.Table(name, partitions=source.partitions)
    table.key_serializer = table.value_serializer = "pickle"
    # registering the table built its changelog topic with the JSON codecs: rebuild it
    table.changelog_topic = table._new_changelog_topic()
    table._verified_source_topics_for_partitions.update(source.topics)
    return table


bins_table = _table("bins", flows_topic)
progress_table = _table("progress", flows_topic)
network_table = _table("network", bins_topic)
hosts_sent_table = _table("hosts-sent", flows_topic)
hosts_received_table = _table("hosts-received", flows_topic)
pairs_table = _table("pairs", flows_topic)


def decoded(event: faust.EventT) -> np.ndarray | None:
    """The flow batch of a message, or None (logged and counted) when it is not a frame."""
    try:
        return decode_frame(event.value)
    except FrameError as exc:
        message = event.message
        record_decode_error(metrics, exc.reason)
        logger.error(
            "skipping bad frame topic=%s partition=%d offset=%d error=%s",
            message.topic,
            message.partition,
            message.offset,
            exc,
        )
        return None


async def count_bins(stream: faust.StreamT) -> None:
    """Hourly byte bins per partition; closed hours go to the bins topic."""
    stores = BinStores(bins_table, progress_table)
    export_hours = Every(seconds=1.0)
    async for event in stream.events():
        started_s = time.perf_counter()
        batch = decoded(event)
        if batch is None:
            continue
        processed_offsets[event.message.partition] = event.message.offset
        processor = BinProcessor(stores, event.message.partition, config)
        for hour in processor.process(batch, event.message.offset):
            await bins_topic.send(value=closed_hour_message(hour, processor.closed_until_ms))
        record_batch(metrics, batch)
        record_batch_latency(metrics, time.perf_counter() - started_s)
        if batch.size and export_hours.due():
            hourly = network_totals(NetworkHours.summarise(bins_table, active_partitions()))
            record_hour(
                metrics,
                {hour: int(v[1]) for hour, v in hourly.items()},
                now_ms=int(batch["stime_ms"].max()),
                bin_ms=config.bin_ms,
            )


async def detect(stream: faust.StreamT) -> None:
    """Per-host and per-pair state; alerts of each closed hour go to the alerts topic."""
    stores = DetectionStores(hosts_sent_table, hosts_received_table, pairs_table, progress_table)
    export_top = Every(seconds=5.0)
    async for event in stream.events():
        batch = decoded(event)
        if batch is None:
            continue
        processor = DetectionProcessor(stores, event.message.partition, config, detectors)
        alerts = processor.process(batch, event.message.offset)
        # Geo-IP enrichment rides with the per-host work, off the bins agent's hot path
        record_countries(metrics, batch, countries)
        for alert in alerts:
            await alerts_topic.send(value=alert.to_dict())
        record_alerts(metrics, alerts)
        record_shed(metrics, processor.shed_count() > 0)
        if export_top.due():
            record_top_hosts(metrics, *top_host_columns(hosts_sent_table))


async def close_network_hours(stream: faust.StreamT) -> None:
    """Merge the partitions' closed hours into network hours; score hourly volume."""
    network = NetworkHours(network_table, retention_ms=config.retention_ms)
    async for event in stream.events():
        for hour in network.add(event.value, offset=event.message.offset):
            alerts = network.volume_alerts(hour, detectors.volume)
            for alert in alerts:
                await alerts_topic.send(value=alert.to_dict())
            record_alerts(metrics, alerts)


if "bins" in settings.roles:
    app.agent(flows_topic, name="count_bins")(count_bins)
    app.agent(bins_topic, name="close_network_hours")(close_network_hours)
if "detect" in settings.roles:
    app.agent(flows_topic, name="detect")(detect)


@app.timer(interval=5.0)
async def export_consumer_lag() -> None:
    """Flow messages not yet processed, per assigned partition of the flows topic."""
    for tp in app.consumer.assignment():
        if tp.topic == settings.flows_topic and tp.partition in processed_offsets:
            highwater = app.consumer.highwater(tp)
            if highwater is not None:
                lag = max(0, highwater - processed_offsets[tp.partition] - 1)
                record_consumer_lag(metrics, tp.topic, tp.partition, lag)


def active_partitions() -> set[int]:
    """Flows partitions this worker processes (its tables also hold standby copies)."""
    return {
        tp.partition for tp in app.assignor.assigned_actives() if tp.topic == settings.flows_topic
    }


def top_host_columns(
    hosts_sent: faust.Table,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bytes and packets each source sent in its newest hour here (for the bubble view)."""
    newest: dict[bytes, tuple[int, int, int]] = {}
    mine = active_partitions()
    for (partition, host, hour), stamped in list(hosts_sent.items()):
        if partition in mine and hour >= newest.get(host, (-1, 0, 0))[0]:
            newest[host] = (hour, stamped.value.bytes, stamped.value.packets)
    hosts = np.array(list(newest), dtype="V16") if newest else np.zeros(0, "V16")
    ipv6 = np.array([not h.startswith(bytes(10) + b"\xff\xff") for h in newest], dtype=bool)
    values = np.array([v[1:] for v in newest.values()], dtype=np.float64).reshape(-1, 2)
    return hosts, ipv6, values[:, 0], values[:, 1]


@app.page("/silkwatch/bins/")
async def bins_view(web, request):
    """The hourly bins of this worker's active partitions, as JSON."""
    return web.json(NetworkHours.summarise(bins_table, active_partitions()))


@app.page("/silkwatch/hosts/")
async def hosts_view(web, request):
    """Per-host hourly statistics of this worker's active partitions, as JSON."""
    mine = active_partitions()
    rows = [
        {
            "host": address_text(host),
            "hour_start_ms": hour,
            "direction": direction,
            "flows": stats.flows,
            "bytes": stats.bytes,
            "packets": stats.packets,
            "bytes_per_packet": stats.bytes / stats.packets if stats.packets else 0.0,
        }
        for direction, table in (("sent", hosts_sent_table), ("received", hosts_received_table))
        for (partition, host, hour), stamped in list(table.items())
        if partition in mine
        for stats in (stamped.value,)
    ]
    return web.json(sorted(rows, key=lambda r: (r["hour_start_ms"], -r["bytes"])))


@app.page("/metrics")
async def metrics_view(web, request):
    """Prometheus text exposition of this worker's metrics."""
    # aiohttp refuses a charset inside content_type; Prometheus reads UTF-8 by default
    return web.bytes(render(registry), content_type="text/plain; version=0.0.4")
