"""Beacon and long-lived session scoring, with exact pairs, periods and scores."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from silkwatch.detectors.beacon import BeaconConfig, score_beacons
from silkwatch.detectors.pairs import merge_callbacks, pair_deltas
from silkwatch.detectors.robust import interval_timing
from silkwatch.detectors.schema import make_batch
from silkwatch.detectors.site import SiteConfig
from tests.detectors.folding import fold_pairs

HOST, C2 = "10.0.0.5", "203.0.113.9"


def _callbacks(sip, dip, stime_ms, *, dport=443, rng=None, bytes_=420, packets=5):
    """One new TCP connection per start time (fresh source port), similar sizes."""
    n = len(stime_ms)
    rng = rng or np.random.default_rng(0)
    return make_batch(
        sip=[sip] * n,
        dip=[dip] * n,
        sport=(40_000 + np.arange(n)).tolist(),
        dport=[dport] * n,
        proto=[6] * n,
        stime_ms=np.asarray(stime_ms, dtype=np.int64).tolist(),
        elapsed_ms=rng.integers(150, 600, n).tolist(),
        bytes=(bytes_ + rng.integers(-30, 30, n)).tolist(),
        packets=[packets] * n,
    )


def _jittered(period_s, jitter, n, seed):
    rng = np.random.default_rng(seed)
    ticks = np.arange(n) * period_s * 1000.0
    return (1_434_499_200_000 + ticks + rng.uniform(-jitter, jitter, n) * period_s * 1000).astype(
        np.int64
    )


def _score(batch, config=None):
    now_ms = int(batch["stime_ms"].max())
    return score_beacons(pair_deltas(batch), now_ms=now_ms, config=config)


def _summary(alerts):
    return [
        (a.kind, a.sip, a.dip, a.dport, a.proto, a.evidence.get("period_s"), a.score)
        for a in alerts
    ]


def test_planted_beacon_with_20_percent_jitter_is_found_with_pair_and_period():
    batch = _callbacks(HOST, C2, _jittered(300, 0.2, 48, seed=1))
    [alert] = _score(batch)
    assert _summary([alert]) == [("beacon", HOST, C2, 443, 6, 297.71, 0.8841)]
    assert alert.severity == "high"
    assert {k: alert.evidence[k] for k in ("flows", "callbacks", "jitter_rel_mad")} == {
        "flows": 48,
        "callbacks": 48,
        "jitter_rel_mad": 0.126469,
    }


def test_random_poisson_pair_is_not_a_beacon():
    rng = np.random.default_rng(7)
    starts = 1_434_499_200_000 + np.cumsum(rng.exponential(300_000, 48)).astype(np.int64)
    assert _score(_callbacks(HOST, C2, starts)) == []


@pytest.mark.parametrize(
    ("dip", "config"),
    [
        ("168.63.129.16", None),  # Azure WireServer, on the default allow-list
        (C2, BeaconConfig(allow_networks=("203.0.113.0/24",))),
        (C2, BeaconConfig(allow_ports=((6, 443),))),
    ],
)
def test_allow_listed_destination_is_not_reported(dip, config):
    assert _score(_callbacks(HOST, dip, _jittered(60, 0.1, 40, seed=2)), config) == []


def _browsing(sip, dip, n, seed):
    """Irregular visits (exponential gaps, mean 5 min): a person, not a timer."""
    rng = np.random.default_rng(seed)
    return _callbacks(sip, dip, 1_434_499_200_000 + np.cumsum(rng.exponential(300_000, n)))


def test_prevalence_damping_lowers_a_destination_many_hosts_use_with_other_timing():
    one = _callbacks(HOST, C2, _jittered(300, 0.1, 48, seed=3))
    many = np.concatenate([one] + [_browsing(f"10.0.1.{i}", C2, 48, 10 + i) for i in range(1, 10)])
    config = dataclasses.replace(BeaconConfig(), alert_score=0.0)
    alone = [a for a in _score(one, config) if a.sip == HOST]
    shared = [a for a in _score(many, config) if a.sip == HOST]
    assert [(a.score, a.evidence["prevalence_damping"]) for a in alone] == [(0.918, 0.0)]
    keys = ("hosts_to_dip", "same_timer_hosts", "prevalence_damping")
    assert [(a.score, *(a.evidence[k] for k in keys)) for a in shared] == [(0.1836, 10, 1, 0.8)]
    assert _score(many) == []


def test_five_of_twenty_hosts_on_one_10s_timer_are_each_alerted_as_a_campaign():
    infected = [f"10.0.0.{i}" for i in range(1, 6)]
    bots = [_callbacks(h, C2, _jittered(10, 0.1, 300, seed=i)) for i, h in enumerate(infected)]
    others = [_browsing(f"10.0.2.{i}", f"198.51.100.{i}", 20, 40 + i) for i in range(15)]
    alerts = _score(np.concatenate(bots + others))
    assert sorted((a.sip, a.dip, a.evidence["same_timer_hosts"], a.severity) for a in alerts) == [
        (h, C2, 5, "critical") for h in infected
    ]
    # each scores as it would alone: the campaign is no reason to damp
    alone = {h: _score(b)[0].score for h, b in zip(infected, bots, strict=True)}
    assert {a.sip: a.score for a in alerts} == alone
    assert alerts[0].reason.endswith("one of 5 hosts calling it on this timer (a campaign).")


def test_150_of_300_hosts_polling_an_update_server_hourly_raise_nothing():
    server = "13.107.4.50"
    pollers = [
        _callbacks(f"10.3.{i // 250}.{i % 250}", server, _jittered(3600, 300 / 3600, 24, seed=i))
        for i in range(150)
    ]
    others = [
        _browsing(f"10.4.{i // 250}.{i % 250}", f"198.51.100.{i % 200}", 3, i) for i in range(150)
    ]
    config = dataclasses.replace(BeaconConfig(), alert_score=0.0)
    scored = _score(np.concatenate(pollers + others), config)
    assert len(scored) == 150
    assert {(a.evidence["same_timer_hosts"], a.evidence["prevalence_damping"]) for a in scored} == {
        (150, 0.8)
    }
    assert max(a.score for a in scored) < BeaconConfig().alert_score
    assert _score(np.concatenate(pollers + others)) == []


def test_a_few_hosts_polling_hourly_are_not_a_campaign():
    """Slow shared timers (update checks, telemetry) stay damped: campaign_max_period_ms."""
    pollers = [_callbacks(f"10.3.0.{i}", C2, _jittered(3600, 0.05, 24, seed=i)) for i in range(6)]
    others = [_browsing(f"10.4.0.{i}", f"198.51.100.{i}", 3, i) for i in range(18)]
    assert _score(np.concatenate(pollers + others)) == []


def test_same_timer_to_several_destinations_is_damped():
    batch = np.concatenate(
        [_callbacks(HOST, f"203.0.113.{i}", _jittered(60, 0.0, 40, seed=i)) for i in (1, 2, 3)]
    )
    config = dataclasses.replace(BeaconConfig(), alert_score=0.0)
    assert [(a.evidence["same_period_peers"], a.evidence["fanout_damping"])
            for a in _score(batch, config)] == [(2, 0.5)] * 3  # fmt: skip
    assert _score(batch) == []


def _session(sip, dip, dport, *, minutes=30, packets=600, nbytes=60_000):
    return make_batch(
        sip=[sip], dip=[dip], sport=[51_000], dport=[dport], proto=[6],
        stime_ms=[1_434_499_200_000], elapsed_ms=[minutes * 60_000],
        packets=[packets], bytes=[nbytes],
    )  # fmt: skip


def test_long_low_rate_session_fires_c2_long_session():
    [alert] = _score(_session(HOST, C2, 443))
    assert (alert.kind, alert.sip, alert.dip, alert.dport, alert.score) == (
        "c2_long_session",
        HOST,
        C2,
        443,
        0.8083,
    )
    assert {k: alert.evidence[k] for k in ("duration_s", "bytes_per_s", "bytes_per_packet")} == {
        "duration_s": 1800.0,
        "bytes_per_s": 33.33,
        "bytes_per_packet": 100.0,
    }
    assert alert.reason == (
        "10.0.0.5 held one session to 203.0.113.9:443/6 for 30.0 min carrying only "
        "33 bytes/s in 100-byte packets."
    )


@pytest.mark.parametrize(
    ("batch", "why"),
    [
        (_session(HOST, C2, 443, minutes=5), "too short"),
        (_session(HOST, C2, 443, nbytes=600_000), "1,000 B/packet: a transfer"),
        (_session(HOST, C2, 443, packets=20, nbytes=2_000), "idle keepalive"),
        (_session(HOST, C2, 22), "interactive SSH"),
        (_session(HOST, "10.0.9.9", 443), "inside the site"),
        (_session("192.168.40.92", "10.0.40.23", 8443), "internal to internal"),
        (_session("147.32.83.53", "147.32.80.88", 443), "public, inside one /16"),
        (_session("93.184.216.34", HOST, 443), "inbound from the Internet"),
    ],
)
def test_quiet_sessions_that_are_not_c2(batch, why):
    assert _score(batch) == [], why


def test_keepalives_on_one_source_port_are_not_a_beacon():
    batch = _callbacks(HOST, C2, _jittered(300, 0.0, 48, seed=4))
    batch["sport"] = 40_000
    assert _score(batch) == []


def test_reply_direction_is_not_scored():
    batch = _callbacks(HOST, C2, _jittered(60, 0.1, 40, seed=5))
    batch["sip"], batch["dip"] = batch["dip"].copy(), batch["sip"].copy()
    batch["sport"], batch["dport"] = 443, batch["sport"].copy()
    assert _score(batch) == []


@pytest.mark.parametrize("dip", ["255.255.255.255", "239.255.255.250", "ff02::1:3"])
def test_broadcast_and_multicast_are_never_beacons(dip):
    batch = _callbacks("192.168.40.25", dip, _jittered(6, 0.0, 52, seed=8), dport=137)
    batch["proto"] = 17
    site = SiteConfig(score_internal=True)
    assert score_beacons(pair_deltas(batch), now_ms=int(batch["stime_ms"].max()), site=site) == []


def test_internal_to_internal_beacons_only_with_the_switch():
    batch = _callbacks("192.168.40.20", "10.0.40.54", _jittered(62, 0.0, 58, seed=9), dport=5723)
    now_ms = int(batch["stime_ms"].max())
    assert score_beacons(pair_deltas(batch), now_ms=now_ms) == []
    on = score_beacons(pair_deltas(batch), now_ms=now_ms, site=SiteConfig(score_internal=True))
    assert [(a.kind, a.sip, a.dip, a.dport) for a in on] == [
        ("beacon", "192.168.40.20", "10.0.40.54", 5723)
    ]


def _both_directions(client, server, *, client_port, server_port, server_first_ms):
    """One 30-min quiet session as two unidirectional records (NetFlow, softflowd)."""
    start = 1_434_499_200_000
    return make_batch(
        sip=[client, server], dip=[server, client], sport=[client_port, server_port],
        dport=[server_port, client_port], proto=[6, 6], stime_ms=[start, start + server_first_ms],
        elapsed_ms=[1_800_000] * 2, packets=[600, 500], bytes=[60_000, 50_000],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("client_port", "server_port", "server_first_ms"),
    [
        (51_000, 443, 0),  # usual ports, both records stamped with the connection start
        (40_000, 50_000, 15),  # C2 on a high port above the client's: first seen decides
    ],
)
def test_sessions_name_the_client_as_source_never_the_server(
    client_port, server_port, server_first_ms
):
    batch = _both_directions(
        "147.32.1.1", "198.51.100.7", client_port=client_port, server_port=server_port,
        server_first_ms=server_first_ms,
    )  # fmt: skip
    alerts = _score(batch)
    assert [(a.kind, a.sip, a.dip, a.dport) for a in alerts] == [
        ("c2_long_session", "147.32.1.1", "198.51.100.7", server_port)
    ]


def test_split_batches_give_the_same_alerts():
    batch = _callbacks(HOST, C2, _jittered(60, 0.3, 200, seed=6))
    pairs = fold_pairs(np.array_split(batch, 7))
    now_ms = int(batch["stime_ms"].max())
    assert score_beacons(pairs, now_ms=now_ms) == _score(batch)


@pytest.mark.parametrize(
    ("starts", "expected"),
    [
        ([0, 10, 20, 30], (10.0, 0.0, 0.0)),
        ([0, 10, 30, 40, 60], (15.0, 0.333333, 0.0)),
        ([0, 100, 100, 100], (0.0, float("inf"), 0.0)),
    ],
)
def test_interval_timing(starts, expected):
    timing = interval_timing(np.array(starts))
    assert (timing.period_ms, timing.rel_mad, timing.skew) == expected


def test_merge_callbacks_joins_bursts_and_back_to_back_records():
    events = np.array([[0, 50, 1, 1], [900, 10, 2, 1], [5_000, 1_000, 3, 2], [6_500, 0, 4, 1]])
    merged = merge_callbacks(events, gap_ms=1_000)
    assert (merged.start_ms.tolist(), merged.end_ms.tolist(), merged.bytes.tolist()) == (
        [0, 5_000],
        [910, 6_500],
        [3, 7],
    )


def test_realistic_day_alerts_exactly_the_planted_beacons(realistic_day_pairs):
    day, pairs, now_ms = realistic_day_pairs
    alerts = score_beacons(pairs, now_ms=now_ms)
    planted = sorted((p.sip, p.dip, p.dport, p.detail["period_s"]) for p in day.truth("beacon"))
    found = sorted((a.sip, a.dip, a.dport, round(a.evidence["period_s"], -1)) for a in alerts)
    assert found == planted


def test_rita_series_keep_ritas_order_on_timing():
    """RITA v5's published timestamp series (silkwatch/evaluation/rita.py): our timing part
    ranks them as RITA's expected scores do (docs/evaluation.md, RITA comparison)."""
    from silkwatch.evaluation.rita import SIZES, TIMESTAMPS, size_part, timing_part

    assert [round(timing_part(s)[2], 3) for s in TIMESTAMPS] == [1.0, 1.0, 0.987, 0.323, 0.055]
    assert [s.rita for s in TIMESTAMPS] == [1.0, 1.0, 0.995, 0.746, 0.083]
    assert [round(size_part(s)[1], 3) for s in SIZES] == [1.0, 0.96, 0.0, 1.0, 0.0]
