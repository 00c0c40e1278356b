"""Partitions scored with the whole site: the same alerts as one processor holding every host.

The processors here are the Kafka workers' (one per partition, fed the
publisher's frames, received copies included), with their population parts
meeting on an in-memory :class:`SiteBoard`; a partition whose hour close waits
for the others holds its next messages (:meth:`Partition.go_on`), as the worker
does. Without the board, each partition weighs its hosts against its own
quarter of the site: on a 150-host day that turned a telemetry service every
host polls into two beacons.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from silkwatch.connectors.kafka.publisher import frame_rows
from silkwatch.detectors.config import DetectorsConfig
from silkwatch.detectors.population import empty_part, merge_parts, population_part
from silkwatch.detectors.synthetic import synthetic_day
from silkwatch.streams.checkpoint import dump_state, load_state
from silkwatch.streams.detection import DetectionProcessor
from silkwatch.streams.detectrole import Partition
from silkwatch.streams.embedded import run
from silkwatch.streams.processing import StreamConfig
from silkwatch.streams.siteboard import SiteBoard
from silkwatch.streams.sitetopic import (
    QueuedExchange,
    SiteRecordError,
    decode_record,
    encode_part,
    encode_reached,
    feed,
)


def final_words(alerts) -> dict[str, dict]:
    """id → the last revision of each finding, as the alerts topic carries it (JSON)."""
    out: dict[str, dict] = {}
    for alert in alerts:
        a = json.loads(json.dumps(alert.to_dict()))
        if a["id"] not in out or out[a["id"]]["revision"] < a["revision"]:
            out[a["id"]] = a
    return {i: {k: v for k, v in a.items() if k != "revision"} for i, a in out.items()}


def partitioned(
    batches, partitions: int, *, exchange: bool = True, restart_waiting: bool = False
) -> list:
    """Every alert of ``partitions`` processors fed the publisher's frames of ``batches``."""
    frames = [
        (p, batch[rows], copy)
        for batch in batches
        for p, rows, copy in frame_rows(batch, partitions)
    ]
    return run_partitions(frames, partitions, exchange=exchange, restart_waiting=restart_waiting)


def run_partitions(
    frames, partitions: int, *, exchange: bool = True, restart_waiting: bool = False
) -> list:
    """Every alert of one processor per partition, fed ``(partition, batch, received copy)``
    frames in this order, as workers holding the partitions would raise them.

    :param restart_waiting: a partition whose close waits is checkpointed and
        restored into a new processor each time (a worker restarted mid-wait)
    """
    board = QueuedExchange(SiteBoard(partitions)) if exchange else None
    held = [
        Partition(DetectionProcessor(p, StreamConfig(), DetectorsConfig(), exchange=board), -1, 0)
        for p in range(partitions)
    ]
    offsets, alerts = [0] * partitions, []

    def restart(h: Partition) -> None:
        p = h.processor.partition
        state = load_state(
            dump_state(h.processor.state, partition=p), DetectorsConfig(), partition=p
        )
        h.processor = DetectionProcessor(p, StreamConfig(), DetectorsConfig(), state=state,
                                         exchange=board)  # fmt: skip

    def settle() -> None:  # one partition's close may complete the site another waits for
        before = None
        while before != (now := [h.processor.state.progress.closed_until_ms for h in held]):
            before = now
            for h in held:
                alerts.extend(h.go_on())
                if restart_waiting and h.processor.waiting:
                    restart(h)

    for p, batch, copy in frames:
        held[p].parked.append((offsets[p], batch, copy, None))
        offsets[p] += 1
        settle()
    for h in held:  # the end of the input: each partition closes its last hours
        assert not h.parked
        alerts += h.processor.flush()
    settle()
    assert not any(h.processor.waiting for h in held)
    return alerts


@pytest.mark.parametrize(("seed", "hosts", "found"), [(13, 150, 5), (3, 500, 5)])
def test_eight_partitions_raise_the_embedded_alerts_with_their_scores_and_evidence(
    seed: int, hosts: int, found: int
) -> None:
    day = synthetic_day(seed, hosts=hosts)
    whole = final_words(run(day.batches).alerts)
    assert len(whole) == found
    assert final_words(partitioned(day.batches, 8)) == whole


def test_a_partition_restarted_while_its_close_waits_goes_on_to_the_same_alerts() -> None:
    day = synthetic_day(13, hosts=150)
    whole = final_words(run(day.batches).alerts)
    assert final_words(partitioned(day.batches, 4, restart_waiting=True)) == whole


def test_without_the_site_a_small_partition_mistakes_a_popular_service_for_beacons() -> None:
    """Why the exchange exists: 150 hosts on 8 partitions, each scored alone."""
    day = synthetic_day(13, hosts=150)
    whole = final_words(run(day.batches).alerts)
    alone = final_words(partitioned(day.batches, 8, exchange=False))
    extra = sorted((a["kind"], a["sip"], a["dip"]) for i, a in alone.items() if i not in whole)
    assert extra == [
        ("beacon", "10.1.0.106", "13.107.4.50"),
        ("beacon", "10.1.0.30", "13.107.4.50"),
    ]


def parts_of_a_day(partitions: int):
    """Each partition's part at one instant of the 150-host day, and the embedded one."""
    day = synthetic_day(13, hosts=150)
    half = len(day.batches) // 2
    now_ms = int(day.batches[half]["stime_ms"].min()) // 3_600_000 * 3_600_000
    processors = [
        DetectionProcessor(p, StreamConfig(), DetectorsConfig()) for p in range(partitions)
    ]
    whole = DetectionProcessor(0, StreamConfig(), DetectorsConfig())
    for offset, batch in enumerate(day.batches[:half]):
        whole.process(batch, offset)
        for p, rows, copy in frame_rows(batch, partitions):
            processors[p].process(batch[rows], processors[p].state.offset + 1, received_copy=copy)

    windows = {"beacon_window_ms": 86_400_000, "dns_window_ms": 86_400_000}  # the defaults

    def part(processor: DetectionProcessor):
        return population_part(
            processor.state.pairs, processor.state.sent, now_ms=now_ms, **windows
        )

    return [part(p) for p in processors], part(whole)


def test_the_partitions_parts_add_up_to_the_site() -> None:
    parts, site = parts_of_a_day(4)
    merged = merge_parts(parts)
    assert merged.sources == site.sources == 153  # the 150 hosts and 3 outside sources
    assert merged.beacon == site.beacon
    assert merged.dns.clients == site.dns.clients
    assert sorted(merged.dns.host_bytes) == sorted(site.dns.host_bytes)
    ours, theirs = merged.hour_senders(), site.hour_senders()
    assert ours.hosts == theirs.hosts and len(ours.hosts) == 150
    assert len(merged.destinations) == 721 and len(merged.dns_host_bytes) == 149
    assert np.array_equal(ours.client_bytes, theirs.client_bytes)
    assert np.array_equal(ours.client_packets, theirs.client_packets)


def test_a_part_round_trips_through_the_site_topic_exactly() -> None:
    parts, _ = parts_of_a_day(2)
    kind, partition, back = decode_record(encode_part(1, parts[1]))
    assert (kind, partition, back.now_ms, back.senders, back.sources) == (
        "part", 1, parts[1].now_ms, True, parts[1].sources)  # fmt: skip
    for name in ("sender_hosts", "destinations", "destination_sources", "dns_host_bytes"):
        assert np.array_equal(getattr(back, name), getattr(parts[1], name))


@pytest.mark.parametrize(
    "record",
    [
        b"",
        b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.",  # a pickle: refused, never run
        encode_reached(1, 7_200_000)[:-9],  # cut short
        encode_reached(9, 7_200_000),  # a partition the topic does not have
    ],
)
def test_a_record_that_is_not_ours_is_refused(record: bytes) -> None:
    board = SiteBoard(2)
    with pytest.raises(SiteRecordError):
        feed(board, record)
    assert board.reached_ms == {} and board.parts == {}


def test_a_part_with_disagreeing_columns_is_refused() -> None:
    part = empty_part(7_200_000)
    part.sender_bytes = np.array([5], dtype=np.int64)  # one value for no host
    with pytest.raises(SiteRecordError, match="different lengths"):
        decode_record(encode_part(0, part))


def test_a_partition_that_never_closes_holds_an_hour_only_for_the_wait(caplog) -> None:
    now, counted = [100.0], []
    board = SiteBoard(3, wait_s=30.0, clock=lambda: now[0], on_incomplete=lambda: counted.append(1))
    board.publish(0, empty_part(7_200_000))
    board.reached(1, 7_200_000)
    assert board.site(7_200_000) is None
    now[0] += 29.0
    assert board.site(7_200_000) is None
    now[0] += 1.0
    with caplog.at_level(logging.WARNING):
        assert board.site(7_200_000).now_ms == 7_200_000
    assert board.incomplete == len(counted) == 1
    assert board.site(7_200_000) is board.site(7_200_000) and len(counted) == 1  # once per hour
    assert "partitions [2] did not close that hour in time" in caplog.text


def test_old_instants_are_forgotten_behind_the_slowest_partition() -> None:
    board = SiteBoard(2, keep_ms=2 * 3_600_000)
    for hour in range(1, 6):
        board.publish(0, empty_part(hour * 3_600_000))
    board.reached(1, 5 * 3_600_000)
    assert sorted(board.parts) == [3 * 3_600_000, 4 * 3_600_000, 5 * 3_600_000]


def test_a_partition_holding_too_much_gives_up_waiting_for_the_hour() -> None:
    board = SiteBoard(2)  # no wall-clock limit: only giving up ends the wait
    board.publish(0, empty_part(7_200_000))
    assert board.site(7_200_000) is None
    board.give_up(7_200_000)
    assert board.site(7_200_000).now_ms == 7_200_000 and board.incomplete == 1
    assert board.site(10_800_000) is None  # the next hour is waited for again
