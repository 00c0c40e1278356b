"""Alert records, severities and deduplication, with exact values."""

from __future__ import annotations

import json
import pickle

import pytest

from detectors.alerts import Alert, AlertConfig, Reported, dedupe, severity_for


def _alert(score: float, last_seen_ms: int = 3_600_000, kind: str = "beacon", dip="1.2.3.4"):
    return Alert(kind, severity_for(score), score, "10.0.0.1", dip, 443, 6, 0, last_seen_ms)


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0.0, "low"),
        (0.4999, "low"),
        (0.5, "medium"),
        (0.7499, "medium"),
        (0.75, "high"),
        (0.8999, "high"),
        (0.9, "critical"),
        (1.0, "critical"),
    ],
)
def test_severity_cut_points(score, expected):
    assert severity_for(score) == expected


def test_severity_follows_config():
    config = AlertConfig(medium_at=0.2, high_at=0.3, critical_at=0.4)
    assert [severity_for(s, config) for s in (0.1, 0.25, 0.35, 0.45)] == [
        "low",
        "medium",
        "high",
        "critical",
    ]


def test_to_dict_is_json_with_iso_times():
    alert = Alert(
        "dns_tunnel",
        "high",
        0.87654,
        "192.168.1.17",
        "192.168.1.210",
        53,
        17,
        1_707_822_000_500,
        1_707_825_600_999,
        {"bytes": 12345, "ratio": 2 / 3},
        "Big DNS.",
        "a1b2c3d4e5f60718",
        2,
    )
    assert json.loads(json.dumps(alert.to_dict())) == {
        "kind": "dns_tunnel",
        "severity": "high",
        "score": 0.877,
        "sip": "192.168.1.17",
        "dip": "192.168.1.210",
        "dport": 53,
        "proto": 17,
        "first_seen": "2024-02-13T11:00:00.500Z",
        "last_seen": "2024-02-13T12:00:00.999Z",
        "evidence": {"bytes": 12345, "ratio": 0.6667},
        "reason": "Big DNS.",
        "id": "a1b2c3d4e5f60718",
        "revision": 2,
    }


# (previous score, new score, sent?) — rescore_step 0.1, severities at 0.5/0.75/0.9
DEDUPE_TABLE = [
    (0.60, 0.60, 0),  # identical repeat
    (0.60, 0.69, 0),  # +0.09, same severity
    (0.60, 0.70, 1),  # +0.10: the step
    (0.70, 0.75, 1),  # medium → high, only +0.05
    (0.80, 0.50, 0),  # falling score never re-fires
    (0.92, 0.99, 0),  # already critical, +0.07
]


@pytest.mark.parametrize(("before", "after", "sent"), DEDUPE_TABLE)
def test_dedupe_material_change(before, after, sent):
    state, first = dedupe({}, [_alert(before)])
    assert len(first) == 1
    state2, second = dedupe(state, [_alert(after, last_seen_ms=7_200_000)])
    assert len(second) == sent
    key = ("beacon", "10.0.0.1", "1.2.3.4", 443, 6)
    assert state2[key].seen_ms == 7_200_000
    assert state2[key].score == (after if sent else before)


def test_dedupe_keys_by_kind_and_pair_and_leaves_state_untouched():
    state = {}
    state1, sent = dedupe(
        state, [_alert(0.6), _alert(0.6, dip="5.6.7.8"), _alert(0.6, kind="c2_long_session")]
    )
    assert (len(sent), len(state1), state) == (3, 3, {})


def test_dedupe_forgets_and_refires_after_quiet_period():
    config = AlertConfig(forget_after_ms=86_400_000)
    state, _ = dedupe({}, [_alert(0.6, last_seen_ms=0)], config)
    state, sent = dedupe(state, [_alert(0.6, last_seen_ms=86_400_000)], config)
    assert len(sent) == 0  # exactly at the horizon: still remembered
    state, sent = dedupe(state, [_alert(0.6, last_seen_ms=2 * 86_400_000 + 1)], config)
    assert len(sent) == 1


def test_dedupe_prunes_entries_beyond_horizon():
    config = AlertConfig(forget_after_ms=1_000)
    state, _ = dedupe({}, [_alert(0.6, last_seen_ms=0, dip="9.9.9.9")], config)
    state, _ = dedupe(state, [_alert(0.6, last_seen_ms=5_000)], config)
    assert list(state) == [("beacon", "10.0.0.1", "1.2.3.4", 443, 6)]


def test_state_pickles():
    state, _ = dedupe({}, [_alert(0.6)])
    assert (
        pickle.loads(pickle.dumps(state))
        == state
        == {("beacon", "10.0.0.1", "1.2.3.4", 443, 6): Reported(0.6, 1, 3_600_000)}
    )
