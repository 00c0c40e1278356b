"""The detection engine: same alerts however fed, a bad clock, caps, checkpoints, revisions."""

from __future__ import annotations

import io

import numpy as np
import pytest

from silkwatch.connectors.kafka.publisher import frame_rows
from silkwatch.connectors.silk import read_batches
from silkwatch.detectors.config import DetectorsConfig, from_mapping
from silkwatch.detectors.pairs import PairConfig
from silkwatch.detectors.schema import make_batch
from silkwatch.detectors.synthetic import synthetic_day
from silkwatch.streams.checkpoint import CheckpointError, dump_state, load_state
from silkwatch.streams.detection import DetectionProcessor
from silkwatch.streams.embedded import run
from silkwatch.streams.processing import StreamConfig
from tests.streams.test_worker_kafka import FCCX

#: FCCX with internal pairs scored: the hour's only alerts (internal sessions and SCOM)
INTERNAL = from_mapping({"site": {"score_internal": True}})
FCCX_INTERNAL_ALERTS = [
    ("c2_long_session", "medium", 0.7021, "192.168.40.92", "10.0.40.23", 8443),
    ("beacon", "medium", 0.6701, "192.168.40.20", "10.0.40.54", 5723),
    ("c2_long_session", "medium", 0.7039, "192.168.40.93", "10.0.40.23", 8443),
]


def summary(alerts) -> list[tuple]:
    return [(a.kind, a.severity, a.score, a.sip, a.dip, a.dport) for a in alerts]


def identity(alerts) -> list[tuple]:
    return [(a.kind, a.sip, a.dip, a.dport, a.id, a.revision, a.score) for a in alerts]


@pytest.fixture(scope="module")
def fccx_flows(shared_dir) -> np.ndarray:
    return np.concatenate(list(read_batches(shared_dir / FCCX)))


@pytest.fixture(scope="module")
def fccx_alerts(fccx_flows):
    return run([fccx_flows], detectors=INTERNAL).alerts


def test_fccx_internal_alerts(fccx_alerts):
    assert summary(fccx_alerts) == FCCX_INTERNAL_ALERTS


@pytest.mark.parametrize("rows", [5_000, 20_000, 65_536])
def test_alerts_do_not_depend_on_batching(fccx_flows, fccx_alerts, rows):
    batches = [fccx_flows[i : i + rows] for i in range(0, len(fccx_flows), rows)]
    assert identity(run(batches, detectors=INTERNAL).alerts) == identity(fccx_alerts)


@pytest.fixture(scope="module")
def busy_day():
    """A day on which a beacon's pair holds more than its 512 newest flows."""
    day = synthetic_day(13, hosts=150)
    flows = np.concatenate(day.batches)
    return flows, identity(run([flows[i : i + 1_000] for i in range(0, len(flows), 1_000)]).alerts)


@pytest.mark.parametrize("rows", [7_000, 50_000, 400_000, None])
def test_hours_are_scored_on_the_same_flows_however_the_day_is_batched(busy_day, rows):
    """Each hour is scored on the flows started before its end plus the lateness: a
    batch reaching hours further does not push out, of a pair's newest 512 flows, the
    ones an earlier hour is judged on (the beacon scored 0.904 to 0.926 by batch size)."""
    flows, expected = busy_day
    rows = rows or len(flows)
    alerts = identity(run([flows[i : i + rows] for i in range(0, len(flows), rows)]).alerts)
    assert alerts == expected
    beacon = [a for a in alerts if a[:3] == ("beacon", "10.1.0.63", "198.51.100.23")]
    assert [(a[5], a[6]) for a in beacon] == [(1, 0.9044)]


def test_one_flow_stamped_a_day_ahead_changes_nothing(fccx_flows, fccx_alerts):
    future = fccx_flows[:1].copy()
    future["stime_ms"] += 86_400_000
    poisoned = np.concatenate([fccx_flows[:500], future, fccx_flows[500:]])
    result = run([poisoned[i : i + 20_000] for i in range(0, len(poisoned), 20_000)],
                 detectors=INTERNAL)  # fmt: skip
    assert identity(result.alerts) == identity(fccx_alerts)
    assert (result.future_flows, result.late_flows) == (1, 0)


def test_a_restored_checkpoint_continues_exactly(fccx_flows, fccx_alerts):
    batches = [fccx_flows[i : i + 10_000] for i in range(0, len(fccx_flows), 10_000)]
    first = DetectionProcessor(5, StreamConfig(), INTERNAL)
    alerts = []
    for offset, batch in enumerate(batches[:12]):
        alerts += first.process(batch, offset)
    saved = dump_state(first.state, partition=5)
    second = DetectionProcessor(
        5, StreamConfig(), INTERNAL, state=load_state(saved, INTERNAL, partition=5)
    )
    for offset, batch in enumerate(batches):  # a replay from 0: the first 12 are skipped
        alerts += second.process(batch, offset)
    alerts += second.flush()
    assert identity(alerts) == identity(fccx_alerts)
    assert dump_state(second.state, partition=5)[:4] == b"PK\x03\x04"  # a zip: npz


def test_caps_hold_after_every_batch_and_shedding_is_counted(fccx_flows):
    detectors = DetectorsConfig(pairs=PairConfig(max_pairs=1_000, max_host_hours=40))
    processor = DetectionProcessor(0, StreamConfig(), detectors)
    held = []
    for offset, start in enumerate(range(0, len(fccx_flows), 5_000)):
        processor.process(fccx_flows[start : start + 5_000], offset)
        state = processor.state
        held.append((len(state.pairs), len(state.sent), len(state.received)))
    assert max(h[0] for h in held) <= 1_000
    assert max(max(h[1], h[2]) for h in held) <= 40
    assert processor.state.pairs.counters.shed_pairs == 20_970
    assert processor.state.shed_host_hours == 2_553


def _archive(**arrays) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"garbage", "not an npz archive"),
        (_archive(meta=np.array([object()], dtype=object)), "not an npz archive"),
        (_archive(meta=np.frombuffer(b'{"version": 1, "partition": 9}', np.uint8)),
         "version 1 of partition 9"),
        (_archive(meta=np.frombuffer(b"[", np.uint8)), "JSONDecodeError"),
    ],
)  # fmt: skip
def test_an_untrustworthy_checkpoint_is_refused(data, message):
    with pytest.raises(CheckpointError, match=message):
        load_state(data, DetectorsConfig(), partition=3)


def test_a_truncated_checkpoint_is_refused(fccx_flows):
    processor = DetectionProcessor(3, StreamConfig(), DetectorsConfig())
    processor.process(fccx_flows[:5_000], 0)
    data = dump_state(processor.state, partition=3)
    with pytest.raises(CheckpointError, match="checkpoint of partition 3"):
        load_state(data[: len(data) // 2], DetectorsConfig(), partition=3)


def beacon(hours: int, *, period_s: int = 300) -> np.ndarray:
    """10.0.0.1 calling 203.0.113.9:443 every ``period_s`` for ``hours`` hours."""
    n = hours * 3_600 // period_s
    rng = np.random.default_rng(1)
    return make_batch(
        sip=["10.0.0.1"] * n, dip=["203.0.113.9"] * n, dport=[443] * n, proto=[6] * n,
        sport=range(40_000, 40_000 + n), elapsed_ms=[300] * n, bytes=[420] * n,
        packets=[6] * n, stime_ms=(np.arange(n) * period_s * 1_000
                                   + rng.integers(0, 20_000, n)).tolist(),
    )  # fmt: skip


def test_a_finding_keeps_its_id_and_escalates_in_revisions():
    flows = beacon(6)
    alerts = run([flows[i : i + 12] for i in range(0, len(flows), 12)]).alerts
    assert [(a.kind, a.id, a.revision, a.severity) for a in alerts] == [
        ("beacon", alerts[0].id, 1, "medium"),
        ("beacon", alerts[0].id, 2, "critical"),
    ]


def test_live_scoring_alerts_before_the_hour_closes():
    flows = beacon(1, period_s=120)  # 30 callbacks in the first hour
    processor = DetectionProcessor(0, StreamConfig(), DetectorsConfig(), score_interval_s=0.0)
    found = []
    for offset, start in enumerate(range(0, len(flows), 5)):
        found += [
            (offset, a.kind, a.revision)
            for a in processor.process(flows[start : start + 5], offset)
        ]
    assert processor.state.progress.closed_until_ms == 0  # the first hour is still open
    assert found[0][1:] == ("beacon", 1)
    assert found[0][0] == 2  # the 15th callback: the first look with 12 merged callbacks


def _partitioned(batches, partitions: int, *, copies: bool = True) -> dict:
    """The engine run per partition on the frames the publisher would send (``frame_rows``)."""
    processors = [
        DetectionProcessor(p, StreamConfig(), DetectorsConfig()) for p in range(partitions)
    ]
    offsets = [0] * partitions
    found = []
    for batch in batches:
        for p, rows, copy in frame_rows(batch, partitions):
            if copy and not copies:
                continue
            found += processors[p].process(batch[rows], offsets[p], received_copy=copy)
            offsets[p] += 1
    for processor in processors:
        found += processor.flush()
    return {a.id: a for a in found}


def test_received_copies_give_each_partition_both_directions_of_its_hosts():
    """Four partitions with copies: the alerts, scores and received side of one processor.

    What stays per partition is the exfiltration scorer's fit across the hosts of
    the hour (each partition's senders, a hash-drawn sample of the site's).
    Without copies, the exfiltrating host's received bytes are those its own
    partition's sources sent it: 624,348 of 7,588,057.
    """
    day = synthetic_day(13, hosts=150)
    embedded = _partitioned(day.batches, 1)  # what ``silkwatch detect`` runs
    four = _partitioned(day.batches, 4)

    def listed(alerts: dict) -> list[tuple]:
        return sorted((a.kind, a.sip, a.dip, a.dport, a.revision, a.score) for a in alerts.values())

    assert listed(four) == listed(embedded)
    assert [len(embedded), sorted({a.kind for a in embedded.values()})] == [
        5,
        ["beacon", "dns_tunnel", "exfil"],
    ]
    [exfil] = [a for a in embedded.values() if a.kind == "exfil"]
    across_hosts = ("bubble_sigmas", "peer_z")  # fitted over the partition's own senders
    partitioned = four[exfil.id].evidence
    assert {k: v for k, v in partitioned.items() if k not in across_hosts} == {
        k: v for k, v in exfil.evidence.items() if k not in across_hosts
    }
    assert [round(partitioned[k], 4) for k in across_hosts] == [5.2347, 3.4119]
    assert [round(exfil.evidence[k], 4) for k in across_hosts] == [3.7122, 3.8195]
    assert exfil.evidence["received_bytes"] == 7_588_057
    [bare] = [a for a in _partitioned(day.batches, 4, copies=False).values() if a.kind == "exfil"]
    assert bare.evidence["received_bytes"] == 624_348


def test_received_copies_wait_for_an_hour_close_within_the_quarantine_cap():
    """Copies past the next close's reach wait for this partition's own flows to close it;
    when those have stopped (hosts that only receive), the oldest go in past the cap."""
    processor = DetectionProcessor(0, StreamConfig(max_quarantined_flows=100), DetectorsConfig())
    own = make_batch(sip=["10.0.0.1"], dip=["10.9.0.1"], stime_ms=[0])
    processor.process(own, 0)  # event time 0: hours before 0 closed, the first one open
    for offset in range(1, 6):  # 60 copies each, 2 to 3 h ahead: past the first close
        copies = make_batch(
            sip=[f"198.51.100.{offset}"] * 60,
            dip=["10.0.0.2"] * 60,
            sport=range(1_000, 1_060),
            stime_ms=[7_200_000 + 60_000 * i + offset for i in range(60)],
        )
        processor.process(copies, offset, received_copy=True)
    state = processor.state
    state.pairs.compact()
    assert [len(b) for b in state.deferred_copies] == [100]  # 300 came: 200 went in
    assert (processor.deferred, processor.quarantined) == (100, 0)
    assert state.pairs.counts.tolist() == [1, 40, 40, 40, 40, 40]  # each batch's oldest 40
    newest_applied = state.pairs.last_ms[1:].max()
    assert newest_applied < state.deferred_copies[0]["stime_ms"].min()
