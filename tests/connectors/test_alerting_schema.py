"""The alert schema: the malformed alerts of issue 14 (and their kin) each get one exact,
bounded reason; a valid alert comes back as the plain dict the sinks format."""

from __future__ import annotations

import json

import pytest

from silkwatch.connectors.alerting.schema import MAX_ALERT_BYTES, InvalidAlert, validate_alert
from silkwatch.detectors.alerts import Alert
from tests.connectors.alert_samples import stamped

GOOD = stamped(
    Alert(
        "beacon", "high", 0.8123, "10.0.0.1", "2001:db8::7", 443, 6,
        1434553200013, 1434556800000, {"flows": 24}, "Regular.",
    ),
    id="0123456789abcdef",
    revision=3,
)  # fmt: skip


def test_a_valid_alert_is_kept_field_for_field():
    assert validate_alert(json.dumps({**GOOD, "extra": "dropped"}).encode()) == {
        "id": "0123456789abcdef",
        "revision": 3,
        "kind": "beacon",
        "severity": "high",
        "score": 0.812,
        "first_seen": "2015-06-17T15:00:00.013Z",
        "last_seen": "2015-06-17T16:00:00.000Z",
        "sip": "10.0.0.1",
        "dip": "2001:db8::7",
        "dport": 443,
        "proto": 6,
        "evidence": {"flows": 24},
        "reason": "Regular.",
    }


def without(name: str) -> dict:
    return {k: v for k, v in GOOD.items() if k != name}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({**GOOD, "severity": "urgent"}, "invalid_severity"),  # issue 14
        ({**GOOD, "kind": ["exfil"]}, "invalid_kind"),  # issue 14
        (without("first_seen"), "missing_first_seen"),  # issue 14
        (without("id"), "missing_id"),
        (without("revision"), "missing_revision"),
        ({**GOOD, "id": "0123456789ABCDEF"}, "invalid_id"),
        ({**GOOD, "id": "0123"}, "invalid_id"),
        ({**GOOD, "revision": 0}, "invalid_revision"),
        ({**GOOD, "revision": True}, "invalid_revision"),
        ({**GOOD, "kind": "<!channel>"}, "invalid_kind"),
        ({**GOOD, "score": 1.5}, "invalid_score"),
        ({**GOOD, "score": "high"}, "invalid_score"),
        ({**GOOD, "sip": "not-an-address"}, "invalid_sip"),
        ({**GOOD, "dip": "<script>"}, "invalid_dip"),
        ({**GOOD, "dport": 70000}, "invalid_dport"),
        ({**GOOD, "proto": -1}, "invalid_proto"),
        ({**GOOD, "last_seen": "yesterday"}, "invalid_last_seen"),
        ({**GOOD, "last_seen": "2015-06-17T14:00:00.000Z"}, "invalid_last_seen"),
        ({**GOOD, "evidence": [1, 2]}, "invalid_evidence"),
        ({**GOOD, "reason": "x" * 2001}, "invalid_reason"),
        ([GOOD], "not_object"),
        ("a string", "not_object"),
    ],
)
def test_each_fault_has_its_reason(record, reason):
    with pytest.raises(InvalidAlert) as info:
        validate_alert(json.dumps(record).encode())
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not_json"),
        (None, "not_json"),
        (b"{not json", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b'{"reason": "' + b"x" * MAX_ALERT_BYTES + b'"}', "too_large"),
    ],
)
def test_records_that_are_not_json(raw, reason):
    with pytest.raises(InvalidAlert) as info:
        validate_alert(raw)
    assert info.value.reason == reason
