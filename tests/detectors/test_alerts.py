"""Alert records, severities and deduplication, with exact values."""

from __future__ import annotations

import json

import pytest

from silkwatch.detectors.alerts import Alert, AlertConfig, rate, severity_for
from silkwatch.detectors.ledger import AlertLedger


def _alert(
    score: float,
    last_seen_ms: int = 3_600_000,
    kind: str = "beacon",
    dip: str | None = "1.2.3.4",
    first_seen_ms: int = 0,
) -> Alert:
    return Alert(
        kind, severity_for(score), score, "10.0.0.1", dip, 443, 6, first_seen_ms, last_seen_ms
    )


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


# (previous score, new score, revised?) — rescore_step 0.1, severities at 0.5/0.75/0.9
REVISION_TABLE = [
    (0.60, 0.60, 0),  # identical repeat
    (0.60, 0.69, 0),  # +0.09, same severity
    (0.60, 0.70, 1),  # +0.10: the step
    (0.70, 0.75, 1),  # medium → high, only +0.05
    (0.80, 0.50, 0),  # falling score never re-fires
    (0.92, 0.99, 0),  # already critical, +0.07
]


@pytest.mark.parametrize(("before", "after", "revised"), REVISION_TABLE)
def test_a_material_change_is_a_new_revision_of_the_same_id(before, after, revised):
    ledger = AlertLedger()
    [first] = ledger.admit(rate([_alert(before)], AlertConfig()))
    second = ledger.admit(rate([_alert(after, last_seen_ms=7_200_000)], AlertConfig()))
    assert [(a.id, a.revision) for a in second] == ([(first.id, 2)] if revised else [])
    key = ("beacon", "10.0.0.1", "1.2.3.4", 443, 6)
    assert ledger.entries[key].seen_ms == 7_200_000
    assert ledger.entries[key].score == (after if revised else before)


def test_findings_are_keyed_by_kind_and_pair():
    ledger = AlertLedger()
    sent = ledger.admit(
        [_alert(0.6), _alert(0.6, dip="5.6.7.8"), _alert(0.6, kind="c2_long_session")]
    )
    assert (len(sent), len({a.id for a in sent}), len(ledger)) == (3, 3, 3)


def test_a_finding_forgotten_after_a_quiet_period_comes_back_as_new():
    ledger = AlertLedger(AlertConfig(forget_after_ms=86_400_000))
    [first] = ledger.admit([_alert(0.6, last_seen_ms=0)])
    assert ledger.admit([_alert(0.6, last_seen_ms=86_400_000)]) == []  # at the horizon
    [again] = ledger.admit([_alert(0.6, first_seen_ms=2 * 86_400_000 + 1,
                                   last_seen_ms=2 * 86_400_000 + 1)])  # fmt: skip
    assert (again.revision, again.id != first.id) == (1, True)


def test_the_ledger_is_bounded_stalest_first():
    ledger = AlertLedger(AlertConfig(forget_after_ms=1_000), max_entries=2)
    ledger.admit([_alert(0.6, last_seen_ms=0, dip="9.9.9.9")])
    ledger.admit([_alert(0.6, last_seen_ms=5_000)])  # 9.9.9.9 is past the horizon now
    assert list(ledger.entries) == [("beacon", "10.0.0.1", "1.2.3.4", 443, 6)]
    ledger.admit([_alert(0.6, last_seen_ms=5_100, dip=f"9.9.9.{i}") for i in range(3)])
    assert (len(ledger), ledger.evicted) == (2, 2)


def test_the_ledger_round_trips_as_plain_data():
    ledger = AlertLedger()
    ledger.admit([_alert(0.6), _alert(0.8, kind="exfil", dip=None)])
    columns = json.loads(json.dumps(ledger.to_columns()))
    assert AlertLedger.from_columns(columns).entries == ledger.entries
