"""Alertmanager-like grouping: batch alerts per group, and rate-limit each group.

The rules are Alertmanager's (``group_wait``, ``group_interval``,
``repeat_interval``), adapted to alerts that are events rather than firing
states:

- The first alert of a new group waits ``group_wait_s`` so that its siblings
  (the rest of a noisy hour) arrive in the same notification.
- After a group has notified, it notifies again at most once per
  ``group_interval_s``, and only if new alerts joined it.
- An alert already notified (same fingerprint: kind, sip, dip, dport, proto) is
  not notified again within ``repeat_interval_s``.

So a group sends at most ``1 + window / group_interval_s`` notifications per
window, however many alerts arrive. The state is a plain object driven by
explicit timestamps (``now_s``), never the clock, so every timeline is a test.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: the alert fields that identify "the same alert" for repeat_interval
FINGERPRINT_FIELDS = ("kind", "sip", "dip", "dport", "proto")


@dataclass(frozen=True)
class GroupingConfig:
    """When notifications go out.

    :param group_by: alert fields whose values make a group. Default - ``("kind",)``
    :param group_wait_s: wait before a new group's first notification. Default - 30
    :param group_interval_s: least time between two notifications of a group. Default - 300
    :param repeat_interval_s: least time before one alert is notified again. Default - 4 h
    :param max_alerts: most alerts listed in one notification; the rest are counted
        (``truncated``), as Alertmanager's ``truncatedAlerts``. Default - 50
    """

    group_by: tuple[str, ...] = ("kind",)
    group_wait_s: float = 30.0
    group_interval_s: float = 300.0
    repeat_interval_s: float = 4 * 3600.0
    max_alerts: int = 50


@dataclass(frozen=True)
class Notification:
    """One message to one receiver: a group's new alerts, each with its source offset.

    :param group: ``group_by`` field name → value
    :param alerts: alert dicts (``Alert.to_dict()``), oldest first, at most ``max_alerts``
    :param truncated: how many more alerts the group had but the message leaves out
    :param tokens: opaque per-alert tokens (e.g. Kafka partition and offset) of
        *every* alert covered, listed or truncated, to acknowledge on delivery
    """

    group: dict[str, Any]
    alerts: tuple[dict[str, Any], ...]
    truncated: int = 0
    tokens: tuple[Any, ...] = ()

    @property
    def group_key(self) -> str:
        """Stable text key of the group, like Alertmanager's ``groupKey``."""
        return "{}:" + json.dumps(self.group, sort_keys=True, separators=(",", ":"))


@dataclass
class _Group:
    created_s: float
    last_sent_s: float | None = None
    pending: list[tuple[dict[str, Any], Any]] = field(default_factory=list)


def fingerprint(alert: Mapping[str, Any]) -> str:
    """A short stable hash of what makes an alert the same alert.

    Examples
    --------
    >>> fingerprint({"kind": "beacon", "sip": "10.0.0.1", "dip": "1.2.3.4", "dport": 443,
    ...              "proto": 6, "score": 0.9})
    '170b9b3ad188f2a4'
    """
    identity = json.dumps([alert.get(k) for k in FINGERPRINT_FIELDS], separators=(",", ":"))
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


class Grouper:
    """Groups alerts and says, for a given moment, which notifications are due.

    Feed it with :meth:`add` as alerts arrive and call :meth:`due` regularly;
    both take the current time explicitly.

    Examples
    --------
    >>> g = Grouper(GroupingConfig(group_wait_s=30, group_interval_s=300))
    >>> g.add({"kind": "exfil", "sip": "10.0.0.1"}, now_s=0, token=("alerts", 0, 7))
    []
    >>> g.due(now_s=29)
    []
    >>> [(n.group, len(n.alerts), n.tokens) for n in g.due(now_s=30)]
    [({'kind': 'exfil'}, 1, (('alerts', 0, 7),))]
    """

    def __init__(self, config: GroupingConfig | None = None) -> None:
        self.config = config or GroupingConfig()
        self._groups: dict[tuple, _Group] = {}
        self._notified_s: dict[str, float] = {}

    def add(self, alert: Mapping[str, Any], *, now_s: float, token: Any = None) -> list[Any]:
        """Take one alert. Returns the tokens of alerts needing no notification
        (repeats within ``repeat_interval_s``), which the caller may acknowledge at once."""
        print_ = fingerprint(alert)
        sent_s = self._notified_s.get(print_)
        if sent_s is not None and now_s - sent_s < self.config.repeat_interval_s:
            return [token]
        key = tuple(alert.get(name) for name in self.config.group_by)
        group = self._groups.setdefault(key, _Group(created_s=now_s))
        if any(fingerprint(a) == print_ for a, _ in group.pending):
            return [token]  # already waiting in this group's next notification
        group.pending.append((dict(alert), token))
        return []

    def next_due_s(self) -> float | None:
        """The earliest time at which :meth:`due` will return something, if any."""
        times = [self._due_at(g) for g in self._groups.values() if g.pending]
        return min(times, default=None)

    def _due_at(self, group: _Group) -> float:
        if group.last_sent_s is None:
            return group.created_s + self.config.group_wait_s
        return group.last_sent_s + self.config.group_interval_s

    def due(self, *, now_s: float) -> list[Notification]:
        """Notifications to send now; their groups count them as sent at ``now_s``."""
        out = []
        for key, group in list(self._groups.items()):
            if not group.pending:
                if group.last_sent_s is not None and (
                    now_s - group.last_sent_s >= self.config.group_interval_s
                ):
                    del self._groups[key]  # idle: the next alert starts a new group
                continue
            if now_s < self._due_at(group):
                continue
            alerts = [a for a, _ in group.pending]
            out.append(
                Notification(
                    group=dict(zip(self.config.group_by, key, strict=True)),
                    alerts=tuple(alerts[: self.config.max_alerts]),
                    truncated=max(0, len(alerts) - self.config.max_alerts),
                    tokens=tuple(t for _, t in group.pending),
                )
            )
            for alert in alerts:
                self._notified_s[fingerprint(alert)] = now_s
            group.pending = []
            group.last_sent_s = now_s
        self._forget(now_s)
        return out

    def _forget(self, now_s: float) -> None:
        """Drop fingerprints older than ``repeat_interval_s`` so memory stays bounded."""
        horizon = now_s - self.config.repeat_interval_s
        for print_ in [p for p, t in self._notified_s.items() if t <= horizon]:
            del self._notified_s[print_]
