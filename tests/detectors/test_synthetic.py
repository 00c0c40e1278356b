"""The synthetic day: one seed, one result; what was planted is there and is found."""

from __future__ import annotations

import numpy as np
import pytest

from silkwatch.detectors.exfil import score_exfil
from silkwatch.detectors.hosts import HOUR_MS, host_deltas
from silkwatch.detectors.schema import FLOW_DTYPE, ip_strings, parse_ip
from silkwatch.detectors.synthetic import exfil_sweep_case, synthetic_day


@pytest.fixture(scope="module")
def day():
    return synthetic_day(1, hosts=300)


def _flows(day) -> np.ndarray:
    return np.concatenate(day.batches)


def _address(text: str) -> np.ndarray:
    """One address as a 0-d ``V16`` value, comparable with an address column."""
    return np.array(parse_ip(text)[0], dtype="V16")


def test_same_seed_same_bytes_other_seed_other_day() -> None:
    one, two = synthetic_day(5, hosts=40), synthetic_day(5, hosts=40)
    assert [b.tobytes() for b in one.batches] == [b.tobytes() for b in two.batches]
    assert one.planted == two.planted
    assert _flows(synthetic_day(6, hosts=40)).tobytes() != _flows(one).tobytes()


def test_exact_size_and_batches(day) -> None:
    assert day.flows == 175_772
    assert [len(b) for b in day.batches] == [65_536, 65_536, 44_700]
    small = synthetic_day(1, hosts=300, batch_rows=50_000)
    assert [len(b) for b in small.batches] == [50_000, 50_000, 50_000, 25_772]
    assert all(b.dtype == FLOW_DTYPE for b in day.batches)


def test_time_ordered_inside_the_day(day) -> None:
    stime_ms = _flows(day)["stime_ms"]
    assert np.all(np.diff(stime_ms) >= 0)
    assert stime_ms[0] >= day.start_ms and stime_ms[-1] < day.start_ms + 86_400_000


def test_planted_ground_truth(day) -> None:
    kinds = [(p.kind, p.dip, p.dport, p.proto) for p in day.planted]
    assert kinds == [
        ("beacon", "198.51.100.23", 443, 6),
        ("beacon", "198.51.100.45", 8080, 6),
        ("beacon", "198.51.100.67", 443, 6),
        ("exfil", "203.0.113.77", 443, 6),
        ("dns_tunnel", "10.0.0.53", 53, 17),
        ("ntp", "162.159.200.1", 123, 17),
        ("update_check", "13.107.4.50", 443, 6),
    ]
    assert [p.detail["flows"] for p in day.truth("beacon")] == [1440, 288, 96]
    malicious = [p.sip for p in day.planted if p.kind in ("beacon", "exfil", "dns_tunnel")]
    assert len(set(malicious)) == 5  # five different infected hosts


@pytest.mark.parametrize("index", [0, 1, 2])
def test_beacon_flows_follow_their_period(day, index: int) -> None:
    beacon = day.truth("beacon")[index]
    flows = _flows(day)
    sip = flows["sip"] == _address(beacon.sip)
    dip = flows["dip"] == _address(beacon.dip)
    starts = flows["stime_ms"][sip & dip]
    assert len(starts) == beacon.detail["flows"]
    gaps_s = np.diff(starts) / 1000
    period_s, jitter = beacon.detail["period_s"], beacon.detail["jitter"]
    assert abs(np.median(gaps_s) - period_s) < jitter * period_s
    assert gaps_s.min() >= period_s * (1 - 2 * jitter) and gaps_s.max() <= period_s * (
        1 + 2 * jitter
    )


def test_dns_tunnel_dwarfs_normal_dns(day) -> None:
    tunnel = day.truth("dns_tunnel")[0]
    flows = _flows(day)
    dns = flows[(flows["dport"] == 53) & (flows["proto"] == 17)]
    per_host = {}
    for sip, octets in zip(ip_strings(dns["sip"], dns["ipv6"]), dns["bytes"].tolist(), strict=True):
        per_host[sip] = per_host.get(sip, 0) + octets
    ranked = sorted(per_host, key=per_host.get, reverse=True)
    assert ranked[0] == tunnel.sip
    assert per_host[tunnel.sip] > 10 * per_host[ranked[1]]
    assert tunnel.detail["queries"] == 14_270  # exponential gaps of 2 s mean over 8 h


def test_records_come_in_request_reply_pairs_with_silk_flowtypes(day) -> None:
    flows = _flows(day)
    web_out = (flows["flowtype"] == 3) & (flows["dport"] == 443)
    web_in = (flows["flowtype"] == 2) & (flows["sport"] == 443)
    assert web_out.sum() == web_in.sum()
    assert set(np.unique(flows["flowtype"]).tolist()) == {0, 1, 2, 3, 6}
    assert set(np.unique(flows["sensor"]).tolist()) == {0, 1}


def test_scorer_finds_the_planted_exfiltration_and_nothing_else(day) -> None:
    sent, received = host_deltas(np.concatenate(day.batches))
    alerts = [
        alert
        for hour in range(24)
        for alert in score_exfil(sent, received, hour_start_ms=day.start_ms + hour * HOUR_MS)
    ]
    exfil = day.truth("exfil")[0]
    assert [(a.sip, (a.first_seen_ms - day.start_ms) // HOUR_MS) for a in alerts] == [
        (exfil.sip, 14)
    ]
    assert alerts[0].evidence["top_destination"] == exfil.dip == "203.0.113.77"


def test_sweep_cases_scale_the_exfiltration() -> None:
    volumes = {m: exfil_sweep_case(2, m, hosts=40)[1].detail["bytes"] for m in (2.0, 10.0)}
    assert volumes[10.0] == pytest.approx(5 * volumes[2.0], abs=6)
    batches, truth = exfil_sweep_case(2, 10.0, hosts=40)
    assert truth.kind == "exfil" and sum(len(b) for b in batches) > 0
