"""The Faust application: topics, tables, agents and web views of a silkwatch worker.

Start it with ``silkwatch worker --broker kafka://HOST:PORT`` or, equivalently,
``SILKWATCH_BROKER=kafka://HOST:PORT faust -A silkwatch.streams.app worker``. Settings come
from ``SILKWATCH_*`` environment variables (:mod:`silkwatch.streams.settings`).

The agents are thin adapters: they decode a frame and hand the batch to the
same :mod:`silkwatch.streams.processing` functions the embedded runner calls, with Faust
tables as the stores. Every table key starts with the source partition, so
each key is written from one partition only and recovers from one changelog
partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import faust
import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from silkwatch.connectors.config import load_config
from silkwatch.connectors.geoip import CountryDB
from silkwatch.connectors.kafka.frame import FrameError, decode_frame, is_received_copy
from silkwatch.connectors.kafka.health import BrokerWatch
from silkwatch.connectors.kafka.publisher import bootstrap_servers
from silkwatch.connectors.kafka.readback import alert_dicts, newest_checkpoint, read_records
from silkwatch.connectors.prometheus import (
    record_alerts,
    record_batch,
    record_batch_latency,
    record_countries,
    record_decode_error,
    record_newest_flow,
    record_shed,
    record_top_hosts,
    render,
)
from silkwatch.connectors.suppressions import SuppressionFile
from silkwatch.streams.binstopic import (
    BinsMessageError,
    closed_hour_from_message,
    closed_hour_message,
)
from silkwatch.streams.detectrole import DetectRole, Stored
from silkwatch.streams.metrics import (
    CONTENT_TYPE,
    record_lags,
    record_network_hours,
    worker_metrics,
)
from silkwatch.streams.network import NetworkHours
from silkwatch.streams.processing import BinProcessor, BinStores, StreamConfig
from silkwatch.streams.settings import WorkerSettings
from silkwatch.streams.siteboard import SiteBoard
from silkwatch.streams.sitetopic import QueuedExchange, SiteRecordError, feed
from silkwatch.streams.tablecodec import register_codecs
from silkwatch.streams.throttle import Every
from silkwatch.streams.transport import App, acting_for
from silkwatch.streams.views import host_rows, partition_status, top_host_columns

logger = logging.getLogger(__name__)

settings = WorkerSettings.from_env()
config = StreamConfig()
detectors = load_config(settings.detectors_config)
registry, metrics = worker_metrics()
countries = CountryDB()
suppressions = SuppressionFile(detectors.site.suppressions) if detectors.site.suppressions else None
processed_offsets: dict[int, int] = {}  # flows partition → offset of the last message read
last_event_s: dict[int, float] = {}  # flows partition → wall time of its last message
#: detect partitions closed for being idle: they vouch that they add nothing to the site's
#: next hours (Kafka Streams' idle tasks), until a message comes
idle_partitions: set[int] = set()
last_bins_event: dict[int, faust.EventT] = {}  # flows partition → its newest binned message
register_codecs()

app = App(
    settings.app_id,
    broker=settings.broker,
    store="memory://",
    topic_partitions=settings.partitions,
    datadir=str(settings.data_dir),
    web_bind=settings.web_host,
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
# raw bytes: streams/binstopic.py decodes and checks them (a bad message is one line, counted)
bins_topic = app.topic(settings.bins_topic, value_serializer="raw", partitions=1, internal=True)
alerts_topic = app.topic(
    settings.alerts_topic, value_serializer="json", partitions=1, internal=True
)
checkpoints_topic = app.topic(
    f"{settings.app_id}-detect-checkpoints",
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
    internal=True,
    compacting=True,
)
# population parts of every partition (streams/sitetopic.py): read whole by every worker
site_topic = app.topic(
    f"{settings.app_id}-site",
    key_serializer="raw",
    value_serializer="raw",
    partitions=1,
    internal=True,
    retention=timedelta(days=3),
)


def _table(name: str, source: faust.TopicT) -> faust.Table:
    """A table fed from ``source``, keys and values in :mod:`silkwatch.streams.tablecodec`'s JSON.

    Faust derives a table's codecs from ``key_type``/``value_type`` and falls back
    to JSON, which cannot carry tuples or arrays; our codec can, and reads back
    only the shapes it writes (never pickle: a changelog is not a trust boundary).

    Faust also re-checks, on the first write, that the changelog has as many
    partitions as the source topic, by asking the consumer's metadata cache; on a
    busy broker that cache can still say "0 partitions" for a changelog created a
    moment before, which crashes the agent. The worker declares the source topic
    and every changelog itself with the same partition count, so the check is
    marked done here.
    """
    table = app.Table(name, partitions=source.partitions)
    table.key_serializer = table.value_serializer = "silkwatch-table"
    # registering the table built its changelog topic with the JSON codecs: rebuild it
    table.changelog_topic = table._new_changelog_topic()
    table._verified_source_topics_for_partitions.update(source.topics)
    return table


bins_table = _table("bins", flows_topic)
progress_table = _table("progress", flows_topic)
network_table = _table("network", bins_topic)

BOOTSTRAP = bootstrap_servers(settings.broker)
# a lost broker: a line per change, not per retry
broker_watch = BrokerWatch(BOOTSTRAP, registry).install()


#: flows a partition may hold while its hour close waits for the site (about 100 MB);
#: past that the hour is scored with the parts there are (counted as incomplete)
MAX_PARKED_FLOWS = 1_000_000

_checkpoint_producer: AIOKafkaProducer | None = None
_chunk_deliveries: list[asyncio.Future] = []  # checkpoint records sent, not yet confirmed


async def _send_chunk(partition: int, key: bytes, value: bytes) -> None:
    """One checkpoint record, to the checkpoint topic's partition of the same number."""
    await _send_durable(checkpoints_topic.get_topic_name(), partition, key, value)


async def _send_durable(topic: str, partition: int, key: bytes, value: bytes) -> None:
    """One record that the next checkpoint's :func:`_flush` must see acknowledged."""
    global _checkpoint_producer
    if _checkpoint_producer is None:
        producer = AIOKafkaProducer(
            bootstrap_servers=BOOTSTRAP, acks="all", max_request_size=4 * 1024 * 1024
        )
        await producer.start()  # raises while the broker is away: started again next time
        _checkpoint_producer = producer
    delivery = await _checkpoint_producer.send(topic, value=value, key=key, partition=partition)
    _chunk_deliveries.append(delivery)


async def _send_site() -> None:
    """What this worker's partitions published to the site since the last call."""
    while exchange.outbox:
        value = exchange.outbox.pop(0)
        try:
            await _send_durable(site_topic.get_topic_name(), 0, b"", value)
        except KafkaError:
            exchange.outbox.insert(0, value)  # sent with the next one
            raise


async def _flush() -> None:
    """Every checkpoint record and alert acknowledged; raises if a record was not delivered.

    aiokafka's ``flush`` waits for the sends but does not say whether they
    landed: each record's delivery is asked, so a checkpoint whose records
    expired in an outage never counts as durable.
    """
    if _checkpoint_producer is not None:
        await _checkpoint_producer.flush()
    deliveries = _chunk_deliveries[:]
    _chunk_deliveries.clear()
    await asyncio.gather(*deliveries)
    await app.producer.flush()


async def _checkpoint(partition: int) -> None:
    """Checkpoint a partition; a broker that fails it is one line, and the next try later.

    Until a checkpoint is durable the consumer commits no further than the last
    one that was, so nothing is lost: a restart replays a little more.
    """
    try:
        await role.checkpoint(partition)
    except KafkaError as exc:
        logger.error(
            "checkpoint of partition %d not written, tried again later: %s", partition, exc
        )


async def _read_checkpoint(partition: int) -> Stored | None:
    records = await read_records(BOOTSTRAP, checkpoints_topic.get_topic_name(), partition)
    return newest_checkpoint(records, partition)


async def _read_alerts_since(offset: int) -> list[dict]:
    return alert_dicts(await read_records(BOOTSTRAP, settings.alerts_topic, 0, start=offset + 1))


# the site's parts: how many partitions make it is read from the broker (read_site)
exchange = QueuedExchange(
    SiteBoard(None, wait_s=settings.site_wait_s, on_incomplete=metrics.site_incomplete.inc)
)
role = DetectRole(
    config,
    detectors,
    exchange=exchange,
    send_chunk=_send_chunk,
    flush=_flush,
    read_checkpoint=_read_checkpoint,
    read_alerts_since=_read_alerts_since,
    checkpoint_interval_s=settings.checkpoint_interval_s,
    score_interval_s=settings.score_interval_s or None,
)
if "detect" in settings.roles:
    # the consumer commits a flows partition only as far as its newest durable checkpoint
    app.commit_ceiling = lambda tp: (
        role.durable.get(tp.partition, 0) if tp.topic == settings.flows_topic else None
    )


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


async def read_flows(stream: faust.StreamT) -> None:
    """Every flows message through this worker's roles: hourly bins, then detection.

    One agent reads the topic whatever the roles. Faust counts a message done
    when every agent reading it is done, and a rebalance empties the agents'
    queues without counting what it drops: with one agent per role, a message
    one of them had taken was never done, and the rebalance (or a clean stop)
    waited for it forever. Two workers, one stopped: the other logged
    "wait_empty" and read nothing more until it was killed.
    """
    stores = BinStores(bins_table, progress_table)
    export_hours = Every(seconds=1.0)
    bins, detecting = "bins" in settings.roles, "detect" in settings.roles
    async for event in stream.events():
        partition, offset = event.message.partition, event.message.offset
        processed_offsets[partition] = offset
        last_event_s[partition] = time.monotonic()
        idle_partitions.discard(partition)
        copy = is_received_copy(event.value)  # counted in its source's partition's bins
        batch = decoded(event) if detecting or not copy else None
        if batch is None:
            continue
        if bins:
            last_bins_event[partition] = event
            if not copy:
                await _count_bins(stores, partition, offset, batch, export_hours)
        if detecting:
            await _detect(partition, offset, batch, copy)


async def _count_bins(
    stores: BinStores, partition: int, offset: int, batch: np.ndarray, export_hours: Every
) -> None:
    """Hourly byte bins per partition; closed hours go to the bins topic."""
    started_s = time.perf_counter()
    processor = BinProcessor(stores, partition, config)
    for hour in processor.process(batch, offset):
        await bins_topic.send(value=closed_hour_message(hour))
    # freshness from the watermark: a flow stamped in the future does not look fresh
    record_newest_flow(metrics, partition, processor.watermark_ms)
    record_batch(metrics, batch)
    record_batch_latency(metrics, time.perf_counter() - started_s)
    if batch.size and export_hours.due():
        now_ms = int(batch["stime_ms"].max())
        record_network_hours(metrics, bins_table, active_partitions(), now_ms=now_ms)


async def _detect(partition: int, offset: int, batch: np.ndarray, copy: bool) -> None:
    """Per-partition detection state; alerts go to the alerts topic as they are found."""
    held = await role.processor(partition)
    if not copy:  # Geo-IP enrichment rides with the per-host work, off the bins step
        record_countries(metrics, batch, countries)
    held.parked.append((offset, batch, copy, int(time.time() * 1000)))
    await _go_on(partition, held)


async def _go_on(partition: int, held) -> None:
    """Apply a partition's held messages until an hour close waits for the site.

    While it waits, what it reads is held in memory, not paused: Faust drops the
    fetched records of a partition paused under it (they were lost, and the
    partition stalled). Every partition waits at each hour for the slowest, so
    the others run at most about an hour ahead, and a partition that does not
    come holds them for ``site_wait_s`` at most; :func:`go_on_waiting` goes on.
    """
    async with held.lock:  # the agent and the timers take turns with a partition
        processor = held.processor
        if processor.waiting and held.parked_flows > MAX_PARKED_FLOWS:
            exchange.board.give_up(processor.waiting_for_ms)
        closed_before = processor.state.progress.closed_until_ms
        shed_before = processor.state.pairs.counters.shed_pairs
        alerts = held.go_on()
        if processor.state.progress.closed_until_ms != closed_before:
            site_moved.set()  # this close may complete an hour another partition waits on
        await _send_site()
        if "bins" not in settings.roles:
            record_newest_flow(metrics, partition, processor.state.progress.watermark_ms)
        await _send_alerts(held, alerts, partition, processor.state.offset)
        record_shed(metrics, processor.state.pairs.counters.shed_pairs > shed_before)
        hour_closed = processor.state.progress.closed_until_ms != closed_before
        if role.checkpoint_due(held, hour_closed=hour_closed):
            await _checkpoint(partition)


async def _send_alerts(held, alerts: list, partition: int, offset: int) -> None:
    """Alerts to the alerts topic, each with the partition and offset that raised it.

    The site's suppression file (``[site] suppressions``) is applied here, re-read
    when it changes; suppressed alerts are counted by the file, not sent.
    """
    if suppressions is not None:
        alerts = suppressions.apply(alerts)
    for alert in role.held_back(held, alerts):
        value = {**alert.to_dict(), "partition": partition, "source_offset": offset}
        metadata = await (await alerts_topic.send(value=value))
        role.alerts_offset = max(role.alerts_offset, metadata.offset)
    record_alerts(metrics, alerts)


async def close_network_hours(stream: faust.StreamT) -> None:
    """Merge the partitions' closed hours into network hours; score hourly volume."""
    network = NetworkHours(network_table, retention_ms=config.retention_ms)
    async for event in stream.events():
        try:
            hour = closed_hour_from_message(event.value)
        except BinsMessageError as exc:
            record_decode_error(metrics, exc.reason)
            message = event.message
            logger.error(
                "skipping bad bins message topic=%s partition=%d offset=%d error=%s",
                message.topic,
                message.partition,
                message.offset,
                exc,
            )
            continue
        alerts = network.close(hour, offset=event.message.offset, config=detectors)
        if suppressions is not None:
            alerts = suppressions.apply(alerts)
        for alert in alerts:
            await alerts_topic.send(value=alert.to_dict())
        record_alerts(metrics, alerts)


app.agent(flows_topic, name="read_flows")(read_flows)
if "bins" in settings.roles:
    app.agent(bins_topic, name="close_network_hours")(close_network_hours)


@app.on_partitions_assigned.connect
async def _on_assigned(sender: faust.App, assigned: set, **kwargs: object) -> None:
    """Forget partitions another worker now owns; restore the new ones without waiting for a
    message (their views, idle close and last alerts do not depend on new traffic)."""
    if "detect" not in settings.roles:
        return
    mine = {tp.partition for tp in assigned if tp.topic == settings.flows_topic}
    role.assign(mine)
    for partition in mine - set(role.partitions):
        last_event_s.setdefault(partition, time.monotonic())
        task = asyncio.ensure_future(role.processor(partition))
        _restoring.add(task)  # a failed restore is retried by the partition's next message
        task.add_done_callback(_restoring.discard)


_restoring: set[asyncio.Task] = set()


@app.timer(interval=0.5)
async def score_between_messages() -> None:
    """Score what changed since the last look, even when no message follows the deciding flow."""
    for partition, held in list(role.partitions.items()):
        alerts = held.processor.tick()
        if alerts:
            await _send_alerts(held, alerts, partition, held.processor.state.offset)


#: set when the site may have moved: a part or a close, here or read from another worker
site_moved = asyncio.Event()


@app.task
async def go_on_when_the_site_moves() -> None:
    """Waiting partitions go on as soon as the site moves, not at the next timer tick (an
    hour close waits for every partition: a tick per hour was seconds per replayed day)."""
    while True:
        await site_moved.wait()
        site_moved.clear()
        await go_on_waiting()


@app.timer(interval=0.2)
async def go_on_waiting() -> None:
    """Partitions whose hour close waited for the site: go on once the site is complete
    (also on a timer: idle partitions vouch, and a wait's deadline passes, without news)."""
    _vouch_for_idle()
    try:
        await _send_site()
    except KafkaError as exc:  # the broker watch logs the outage; sent with the next one
        logger.debug("site records not sent yet: %s", exc)
    moved = True
    while moved:  # one partition's close may complete the site another waits for
        moved = False
        for partition, held in list(role.partitions.items()):
            pending = held.parked or held.processor.state.closing_until_ms is not None
            if pending and not held.processor.waiting:
                await _go_on(partition, held)
                moved = True


def _vouch_for_idle() -> None:
    """Idle partitions count as having closed as far as the furthest partition has."""
    reached = exchange.board.reached_ms
    if not reached:
        return
    furthest_ms = max(reached.values())
    for partition in idle_partitions & set(role.partitions):
        if reached.get(partition, -(2**62)) < furthest_ms:
            exchange.reached(partition, furthest_ms)


@app.task
async def read_site() -> None:
    """Every partition's population parts, from the site topic into this worker's board.

    A broker that is away is retried every few seconds (its outage is logged by
    the broker watch); records already read stay on the board.
    """
    if "detect" not in settings.roles:
        return
    position = 0
    while True:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=BOOTSTRAP,
            enable_auto_commit=False,
            max_partition_fetch_bytes=16 * 1024 * 1024,
            fetch_max_wait_ms=20,  # another worker's part is what a waiting hour needs now
        )
        try:
            if exchange.board.partitions is None:
                exchange.board.partitions = await _flows_partitions()
            await consumer.start()
            tp = TopicPartition(site_topic.get_topic_name(), 0)
            consumer.assign([tp])
            consumer.seek(tp, max(position, (await consumer.beginning_offsets([tp]))[tp]))
            async for record in consumer:
                position = record.offset + 1
                _feed_site(record)
                site_moved.set()
        except KafkaError as exc:
            logger.debug("site topic not readable, retried: %s", exc)
            await asyncio.sleep(3.0)
        finally:
            await consumer.stop()


async def _flows_partitions() -> int:
    """How many partitions the flows topic has (the broker's word: any worker may ask)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        while True:
            (topic,) = await admin.describe_topics([settings.flows_topic])
            if topic["partitions"]:
                return len(topic["partitions"])
            await asyncio.sleep(1.0)  # created a moment from now
    finally:
        await admin.close()


def _feed_site(record) -> None:
    try:
        feed(exchange.board, record.value)
    except SiteRecordError as exc:
        record_decode_error(metrics, exc.reason)
        logger.error(
            "skipping bad site record topic=%s offset=%d error=%s", record.topic, record.offset, exc
        )


@app.timer(interval=1.0)
async def close_idle_partitions() -> None:
    """Close the last hour of partitions that got nothing for ``idle_close_s`` (a live feed
    that paused, or the end of a published file): its alerts and bins do not wait forever."""
    now_s = time.monotonic()
    if broker_watch.outage.down_since is not None:  # not idle: cut off; idle counts from its return
        last_event_s.update(dict.fromkeys(last_event_s, now_s))
        return
    for partition, seen_s in list(last_event_s.items()):
        if now_s - seen_s < settings.idle_close_s:
            continue
        del last_event_s[partition]
        try:
            await _close_idle(partition)
        except KafkaError as exc:
            last_event_s[partition] = now_s  # tried again after another idle_close_s
            logger.error("closing idle partition %d failed, tried again later: %s", partition, exc)


async def _close_idle(partition: int) -> None:
    """Close one idle partition's hours: its bins, then its detection."""
    event = last_bins_event.pop(partition, None)
    if event is not None and partition in active_partitions():
        processor = BinProcessor(BinStores(bins_table, progress_table), partition, config)
        with acting_for(event):  # the progress table's write goes to this partition
            closed = processor.flush()
        for hour in closed:
            await bins_topic.send(value=closed_hour_message(hour))
    held = role.partitions.get(partition)
    if held is not None and held.parked:  # still busy: idle counts again from now
        last_event_s[partition] = time.monotonic()
    elif held is not None:
        async with held.lock:
            state = held.processor.state
            closed_before = state.progress.closed_until_ms
            await _send_alerts(held, held.processor.flush(), partition, state.offset)
            idle_partitions.add(partition)
            await _send_site()
            if state.progress.closed_until_ms != closed_before:
                await _checkpoint(partition)


@app.timer(interval=5.0)
async def export_top_hosts() -> None:
    """The bubble view's gauges: each source's newest hour, from the detect state held here."""
    if role.partitions:
        record_top_hosts(metrics, *top_host_columns(_mine()))


@app.timer(interval=5.0)
async def export_consumer_lag() -> None:
    """Flow messages not yet processed, per assigned partition of the flows topic."""
    record_lags(metrics, app.consumer, settings.flows_topic, processed_offsets)


def active_partitions() -> set[int]:
    """Flows partitions this worker processes (its tables also hold standby copies)."""
    return {
        tp.partition for tp in app.assignor.assigned_actives() if tp.topic == settings.flows_topic
    }


@app.page("/silkwatch/bins/")
async def bins_view(web, request):
    """The hourly bins of this worker's active partitions, as JSON."""
    return web.json(NetworkHours.summarise(bins_table, active_partitions()))


def _mine() -> list:
    """This worker's detection processors of its active partitions."""
    mine = active_partitions()
    return [held.processor for p, held in role.partitions.items() if p in mine]


@app.page("/silkwatch/detect/")
async def detect_view(web, request):
    """Per partition held here: the offset detection reached, its state and what it dropped."""
    return web.json({str(p): partition_status(held) for p, held in sorted(role.partitions.items())})


@app.page("/silkwatch/hosts/")
async def hosts_view(web, request):
    """Per-host hourly statistics of this worker's active partitions, as JSON."""
    return web.json(host_rows(_mine()))


@app.page("/metrics")
async def metrics_view(web, request):
    """Prometheus text exposition of this worker's metrics."""
    return web.bytes(render(registry), content_type=CONTENT_TYPE)
