"""Grouping and rate limits on explicit timelines (seconds), Alertmanager's rules."""

from __future__ import annotations

import itertools

import pytest

from silkwatch.connectors.alerting.grouping import Grouper, GroupingConfig
from tests.connectors.alert_samples import finding_id

CONFIG = GroupingConfig(group_wait_s=30, group_interval_s=300, repeat_interval_s=3600)


def alert(kind="exfil", sip="10.0.0.1", dip="198.51.100.1", dport=443, revision=1):
    record = {"kind": kind, "severity": "high", "sip": sip, "dip": dip, "dport": dport, "proto": 6}
    return {**record, "id": finding_id(record), "revision": revision}


def sent(notifications):
    return [(n.group["kind"], [a["dip"] for a in n.alerts], n.truncated) for n in notifications]


def test_group_wait_collects_siblings_into_one_notification():
    g = Grouper(CONFIG)
    g.add(alert(dip="a"), now_s=0, token=1)
    g.add(alert(dip="b"), now_s=10, token=2)
    g.add(alert(kind="beacon", dip="c"), now_s=20, token=3)
    assert g.next_due_s() == 30
    assert g.due(now_s=29) == []
    # exfil waited from t=0; beacon's own group waits until t=50
    (exfil,) = g.due(now_s=30)
    assert sent([exfil]) == [("exfil", ["a", "b"], 0)] and exfil.tokens == (1, 2)
    assert sent(g.due(now_s=50)) == [("beacon", ["c"], 0)]


def test_group_interval_limits_a_noisy_group():
    g = Grouper(CONFIG)
    notifications, times = [], []
    # 1,000 distinct alerts of one kind, one every 3.6 s over an hour
    for i in range(1000):
        now = i * 3.6
        g.add(alert(dip=f"10.9.{i // 256}.{i % 256}"), now_s=now, token=i)
        due = g.due(now_s=now)
        notifications += due
        times += [now] * len(due)
    # due() runs every 3.6 s: first at 32.4, then ≥ 300 s apart → 12 in the hour
    assert len(notifications) == 12
    assert all(b - a >= 300 for a, b in itertools.pairwise(times))
    notifications += g.due(now_s=4000)  # the rest of the hour, after one more group_interval
    assert len(notifications) == 13
    assert sum(len(n.alerts) + n.truncated for n in notifications) == 1000
    assert sorted(t for n in notifications for t in n.tokens) == list(range(1000))


def test_repeat_interval_suppresses_the_same_alert():
    g = Grouper(CONFIG)
    g.add(alert(), now_s=0, token="first")
    assert len(g.due(now_s=30)) == 1
    # the same alert again within the hour: acknowledged at once, not notified
    assert g.add(alert(), now_s=100, token="again") == ["again"]
    assert g.due(now_s=400) == []
    # after repeat_interval it is news again; its group went idle, so group_wait anew
    assert g.add(alert(), now_s=3700, token="later") == []
    assert g.due(now_s=3729) == []
    assert [n.tokens for n in g.due(now_s=3730)] == [("later",)]


def test_duplicate_while_pending_is_folded():
    g = Grouper(CONFIG)
    assert g.add(alert(), now_s=0, token=1) == []
    assert g.add(alert(), now_s=5, token=2) == [2]
    (n,) = g.due(now_s=30)
    assert (len(n.alerts), n.tokens) == (1, (1,))


def test_escalation_replaces_the_waiting_revision_and_is_news_after_sending():
    g = Grouper(CONFIG)
    assert g.add(alert(revision=1), now_s=0, token=1) == []
    assert g.add(alert(revision=2), now_s=5, token=2) == []  # replaces revision 1
    assert g.add(alert(revision=1), now_s=6, token=3) == [3]  # older than what waits
    (n,) = g.due(now_s=30)
    assert ([a["revision"] for a in n.alerts], n.tokens) == ([2], (1, 2))
    assert n.idempotency_key == f"{alert()['id']}:2"
    # revision 2 again within repeat_interval: acknowledged; revision 3 is news
    assert g.add(alert(revision=2), now_s=100, token=4) == [4]
    assert g.add(alert(revision=3), now_s=100, token=5) == []
    assert [n.idempotency_keys for n in g.due(now_s=330)] == [[f"{alert()['id']}:3"]]


def test_max_alerts_truncates_but_covers_every_token():
    g = Grouper(GroupingConfig(group_wait_s=0, max_alerts=3))
    for i in range(5):
        g.add(alert(dip=str(i)), now_s=0, token=i)
    (n,) = g.due(now_s=0)
    assert sent([n]) == [("exfil", ["0", "1", "2"], 2)]
    assert n.tokens == (0, 1, 2, 3, 4)


def test_idle_group_is_forgotten_and_starts_over_with_group_wait():
    g = Grouper(CONFIG)
    g.add(alert(dip="a"), now_s=0)
    g.due(now_s=30)
    assert g.due(now_s=330) == []  # idle for a group_interval: dropped
    g.add(alert(dip="b"), now_s=1000)
    assert g.due(now_s=1029) == [] and len(g.due(now_s=1030)) == 1


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [(("kind",), 2), (("kind", "sip"), 3), ((), 1)],
)
def test_group_by(group_by, expected):
    g = Grouper(GroupingConfig(group_by=group_by, group_wait_s=0))
    for kind, sip in [("exfil", "a"), ("exfil", "b"), ("beacon", "a")]:
        g.add(alert(kind=kind, sip=sip), now_s=0)
    assert len(g.due(now_s=0)) == expected
