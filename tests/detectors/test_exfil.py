"""Exfiltration scoring: who fires, at which hour, with which numbers — and who does not."""

from __future__ import annotations

import numpy as np
import pytest

from silkwatch.detectors.exfil import ExfilConfig, fit_bubble, score_exfil
from silkwatch.detectors.hosts import HOUR_MS, HourSenders, host_deltas
from silkwatch.detectors.schema import make_batch, parse_ip
from tests.detectors.folding import fold_hosts

HOST = "10.0.0.5"
LEAK_HOUR = 10


def _flows(sip, dip, sport, dport, packets, octets, hour, n):
    """``n`` identical flows spread over one hour."""
    return make_batch(
        sip=[sip] * n,
        dip=[dip] * n,
        sport=[sport] * n,
        dport=[dport] * n,
        proto=[6] * n,
        packets=[packets] * n,
        bytes=[octets] * n,
        stime_ms=[hour * HOUR_MS + i * (HOUR_MS // n) for i in range(n)],
        elapsed_ms=[1000] * n,
    )


def _network(
    multiple: float | None,
    *,
    first_hour: int = 0,
    leak_hour: int = LEAK_HOUR,
    leak_bytes_per_packet: int = 1400,
    peers: int = 30,
) -> np.ndarray:
    """``HOST`` browses from ``first_hour`` on (about 250 kB sent per hour in
    200-byte packets, 3 MB of downloads back), 30 peers do likewise at a smaller
    scale, and at ``leak_hour`` ``HOST`` uploads ``multiple`` x 250 kB in six
    flows to a server it never used."""
    parts = []
    for hour in range(first_hour, 12):
        scale = 1 + 0.1 * (hour % 3)  # hour-to-hour swing, so the MAD is not zero
        parts.append(_flows(HOST, "192.0.2.1", 50000, 443, 25, int(5000 * scale), hour, 50))
        parts.append(_flows("192.0.2.1", HOST, 443, 50000, 45, 60000, hour, 50))
    for peer in range(peers):
        for hour in range(12):
            octets = 3000 + 100 * ((peer + hour) % 7)
            flows = 10 + (peer * 7 + hour) % 30
            parts.append(_flows(f"10.0.1.{peer}", "192.0.2.2", 50000, 443, 15, octets, hour, flows))
    if multiple is not None:
        per_flow = int(multiple * 250_000 / 6)
        packets = per_flow // leak_bytes_per_packet
        parts.append(_flows(HOST, "203.0.113.9", 50100, 443, packets, per_flow, leak_hour, 6))
    return np.concatenate(parts)


def _score(batch: np.ndarray, hour: int, config: ExfilConfig | None = None) -> list:
    sent, received = host_deltas(batch)
    return score_exfil(sent, received, hour_start_ms=hour * HOUR_MS, config=config)


def _alert_hours(batch: np.ndarray) -> list[int]:
    """Every hour of the day scored on one set of statistics: the hours that alerted."""
    sent, received = host_deltas(batch)
    return [h for h in range(12) if score_exfil(sent, received, hour_start_ms=h * HOUR_MS)]


def test_ten_times_baseline_in_big_packets_to_a_new_server_fires() -> None:
    [alert] = _score(_network(10.0), LEAK_HOUR)
    assert (alert.kind, alert.sip, alert.dip, alert.severity) == ("exfil", HOST, None, "high")
    assert alert.first_seen_ms == LEAK_HOUR * HOUR_MS
    evidence = alert.evidence
    assert evidence["client_bytes"] == 50 * 5500 + 6 * 416_666
    assert evidence["top_destination"] == "203.0.113.9"
    assert (evidence["top_dport"], evidence["top_proto"]) == (443, 6)
    assert evidence["history_hours"] == 10
    # ten earlier hours at 250, 275 or 300 kB; the busy half is 275, 275, 300, 300, 300
    assert evidence["baseline_median_bytes"] == pytest.approx(300_000)
    assert evidence["baseline_ratio"] == 9.25
    assert evidence["new_destination_share"] == pytest.approx(416_666 / (416_666 + 5500))
    assert evidence["signs"] == 5
    assert alert.score == pytest.approx(0.5 * (0.5 + 0.5 * np.log(9.25 / 4) / np.log(12.5)) + 0.5)


def test_other_hours_and_other_hosts_stay_quiet() -> None:
    assert _alert_hours(_network(10.0)) == [LEAK_HOUR]


@pytest.mark.parametrize(("multiple", "fires"), [(2.0, False), (3.0, False), (6.0, True)])
def test_volume_multiples(multiple: float, fires: bool) -> None:
    """2x and 3x stay below ``min_baseline_ratio`` = 4: 2.8x and 3.7x with the usual hour."""
    assert bool(_score(_network(multiple), LEAK_HOUR)) is fires


def test_host_in_warm_up_never_fires() -> None:
    """Only three earlier hours (< ``min_history_hours`` = 6): no alert even at 20x."""
    batch = _network(20.0, first_hour=7)
    assert _score(batch, LEAK_HOUR) == []
    assert _score(batch, LEAK_HOUR, ExfilConfig(min_history_hours=3))[0].sip == HOST


def test_burst_during_warm_up_never_fires_later_either() -> None:
    assert _alert_hours(_network(20.0, leak_hour=2)) == []


def test_volume_in_small_packets_is_not_exfiltration() -> None:
    """The same jump in 200-byte packets (a busy browsing hour) lacks the defining sign."""
    assert _score(_network(10.0, leak_bytes_per_packet=200), LEAK_HOUR) == []


def test_bulk_over_port_53_fires_through_the_bubble_fit() -> None:
    """3 MB of 512-byte DNS packets: below ``min_bytes_per_packet`` but far above the
    peers' bytes-per-packet line, and the host turns producer."""
    dns = _flows(HOST, "10.0.0.53", 40000, 53, 1000, 512_000, LEAK_HOUR, 6)
    dns["proto"] = 17
    [alert] = _score(np.concatenate([_network(None), dns]), LEAK_HOUR)
    assert (alert.sip, alert.evidence["top_dport"], alert.evidence["top_proto"]) == (HOST, 53, 17)
    assert alert.evidence["bytes_per_packet"] == pytest.approx(3_347_000 / 7250)  # < 700
    assert alert.evidence["bubble_sigmas"] >= 3.0
    assert alert.reason.endswith(
        "turned producer, new destination, above the bubble fit, far above peers."
    )


def test_server_replies_are_not_uploads() -> None:
    """A server answering 10x more downloads (source port 443) is not exfiltrating."""
    extra = _flows("192.0.2.1", HOST, 443, 50000, 450, 600_000, LEAK_HOUR, 50)
    assert _score(np.concatenate([_network(None), extra]), LEAK_HOUR) == []


def test_the_streams_columns_in_split_batches_give_the_same_alert() -> None:
    batch = _network(10.0)
    parts = np.array_split(batch[np.random.default_rng(3).permutation(len(batch))], 7)
    sent, received = fold_hosts(parts, LEAK_HOUR * HOUR_MS)
    [alert] = score_exfil(sent, received, hour_start_ms=LEAK_HOUR * HOUR_MS)
    assert alert == _score(batch, LEAK_HOUR)[0]


def test_the_streams_columns_hold_only_the_scored_host_and_every_sender_as_columns() -> None:
    batch = _network(10.0)
    sent, received = fold_hosts([batch], LEAK_HOUR * HOUR_MS)
    whole = HourSenders.of(host_deltas(batch)[0], LEAK_HOUR * HOUR_MS)
    assert len(whole.hosts) == 31  # HOST and its 30 peers
    assert sent.senders.hosts == whole.hosts
    assert sent.senders.client_bytes.tolist() == whole.client_bytes.tolist()
    assert sent.senders.client_packets.tolist() == whole.client_packets.tolist()
    host = parse_ip(HOST)[0]
    assert sorted(sent) == [(host, hour * HOUR_MS) for hour in range(LEAK_HOUR + 1)]
    assert {key[0] for key in received} == {host}
    with pytest.raises(ValueError, match="senders of hour 36000000, not 0"):
        score_exfil(sent, received, hour_start_ms=0)


@pytest.mark.parametrize(
    ("config", "fires"),
    [
        (ExfilConfig(min_evidence=6), False),
        (ExfilConfig(min_sent_bytes=10_000_000), False),
        (ExfilConfig(min_baseline_ratio=11.0), False),
        (ExfilConfig(min_bytes_per_packet=1500.0, min_bubble_residual=100.0), False),
        (ExfilConfig(min_new_share=1.1, min_ratio_shift=2.0), True),  # 3 signs still hold
    ],
)
def test_each_threshold_gates(config: ExfilConfig, fires: bool) -> None:
    assert bool(_score(_network(10.0), LEAK_HOUR, config)) is fires


def test_nothing_to_score() -> None:
    assert score_exfil({}, {}, hour_start_ms=0) == []


@pytest.mark.parametrize(("slope", "intercept"), [(1.0, 2.0), (0.5, 3.0), (1.2, 1.5), (0.0, 4.0)])
def test_fit_bubble_recovers_a_line(slope: float, intercept: float) -> None:
    packets = np.array([1, 3, 10, 30, 100, 300, 1000, 3000])
    octets = 10 ** (intercept + slope * np.log10(packets))
    fit = fit_bubble(octets, packets)
    assert (round(fit.slope, 6), round(fit.intercept, 6)) == (slope, intercept)
    assert np.abs(fit.residuals).max() < 1e-6
    assert fit.above(3.0).tolist() == [] and fit.below(3.0).tolist() == []


def test_fit_bubble_classifies_outliers_and_ignores_them() -> None:
    packets = np.geomspace(1, 10_000, 40)
    octets = 150 * packets * (1 + 0.05 * np.sin(np.arange(40)))
    octets[5] *= 30  # bulk: 30x more bytes per packet
    octets[30] /= 30  # keep-alives: almost empty packets
    fit = fit_bubble(octets, packets)
    assert fit.above(3.0).tolist() == [5]
    assert fit.below(3.0).tolist() == [30]
    assert round(fit.slope, 2) == 1.0


@pytest.mark.parametrize(
    ("octets", "packets", "slope", "intercept"),
    [
        ([], [], 1.0, 0.0),
        ([1000], [10], 1.0, 2.0),
        ([1000, 100_000], [10, 100], 1.0, 2.5),  # two points: median bytes/packet
        ([100, 1000, 10_000], [5, 5, 5], 1.0, np.log10(200)),  # one packet count
    ],
)
def test_fit_bubble_degenerate_inputs(octets, packets, slope, intercept) -> None:
    fit = fit_bubble(np.array(octets), np.array(packets))
    assert fit.slope == slope
    assert fit.intercept == pytest.approx(intercept)
    assert len(fit.residuals) == len(octets)


def _two_way(up_bytes: int, down_bytes: int) -> np.ndarray:
    """``HOST``'s usual day plus, at the leak hour, ``up_bytes`` sent to a new server and
    ``down_bytes`` received from it (ten flows each way, full packets)."""
    server = "203.0.113.77"
    up = _flows(HOST, server, 50200, 443, up_bytes // 10 // 1400, up_bytes // 10, LEAK_HOUR, 10)
    down = _flows(
        server, HOST, 443, 50200, max(down_bytes // 10 // 1400, 1), down_bytes // 10, LEAK_HOUR, 10
    )
    return np.concatenate([_network(None), up, down])


@pytest.mark.parametrize(
    ("up_bytes", "down_bytes", "expected"),
    [
        (1_000_000_000, 1_000_000_000, []),  # a video call: as much back as out, PCR ~0
        (1_000_000_000, 10_000_000, [("exfil", HOST, "critical", 0.98, 0.97)]),  # 10 MB back
    ],
)
def test_exfiltration_needs_outbound_dominance(up_bytes, down_bytes, expected) -> None:
    alerts = _score(_two_way(up_bytes, down_bytes), LEAK_HOUR)
    assert [
        (a.kind, a.sip, a.severity, round(a.evidence["pair_producer_ratio"], 2),
         round(a.evidence["producer_consumer_ratio"], 2))
        for a in alerts
    ] == expected  # fmt: skip


def test_the_producer_ratio_gate_is_a_setting() -> None:
    batch = _two_way(1_000_000_000, 1_000_000_000)
    assert _score(batch, LEAK_HOUR, ExfilConfig(min_producer_ratio=0.0)) != []


@pytest.mark.parametrize(
    ("down_bytes", "fires", "host_pcr"), [(1_000_000_000, False, -0.0), (10_000_000, True, 0.97)]
)
def test_without_a_received_sketch_the_hosts_ratio_decides(down_bytes, fires, host_pcr) -> None:
    """The columnar engine keeps no peer sketch of what a host received: the pair's PCR is
    then unknown (None), and the host's own PCR must show the asymmetry."""
    import dataclasses

    sent, received = host_deltas(_two_way(1_000_000_000, down_bytes))
    bare = {key: dataclasses.replace(value, peers=()) for key, value in received.items()}
    alerts = score_exfil(sent, bare, hour_start_ms=LEAK_HOUR * HOUR_MS)
    assert bool(alerts) is fires
    if alerts:
        assert alerts[0].evidence["pair_producer_ratio"] is None
        assert round(alerts[0].evidence["producer_consumer_ratio"], 2) == host_pcr
