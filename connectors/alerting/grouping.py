"""Alertmanager-like grouping: batch alerts per group, and rate-limit each group.

The rules are Alertmanager's (``group_wait``, ``group_interval``,
``repeat_interval``), adapted to alerts that are events rather than firing
states:

- The first alert of a new group waits ``group_wait_s`` so that its siblings
  (the rest of a noisy hour) arrive in the same notification.
- After a group has notified, it notifies again at most once per
  ``group_interval_s``, and only if new alerts joined it.
- One revision of one finding (same ``id`` and ``revision``, the idempotency
  key) is not notified again within ``repeat_interval_s``; a higher revision
  (an escalation) is news. While a finding waits in a group, a newer revision
  replaces the older one in the same notification.

So a group sends at most ``1 + window / group_interval_s`` notifications per
window, however many alerts arrive. The state is a plain object driven by
explicit timestamps (``now_s``), never the clock, so every timeline is a test.

Cost: :meth:`Grouper.add` is O(1) (dicts keyed by finding id), :meth:`Grouper.due`
is O(alerts it sends), and forgetting is amortised O(1) per alert (the
notified keys are kept in send order), so n alerts cost O(n) in all
(``bench/bench_alert_grouping.py``).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any


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
    :param alerts: validated alert dicts (``silkwatch.connectors.alerting.schema``), oldest
        first, at most ``max_alerts``
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

    @property
    def idempotency_keys(self) -> list[str]:
        """``id:revision`` of each listed alert, in order: the same on every retry."""
        return [f"{a['id']}:{a['revision']}" for a in self.alerts]

    @property
    def idempotency_key(self) -> str:
        """The ``Idempotency-Key`` header: the alert's key, or the keys comma-separated.

        Examples
        --------
        >>> a = {"id": "00000000000000aa", "revision": 1}
        >>> b = {"id": "00000000000000bb", "revision": 2}
        >>> Notification({}, (a,)).idempotency_key, Notification({}, (a, b)).idempotency_key
        ('00000000000000aa:1', '00000000000000aa:1,00000000000000bb:2')
        """
        return ",".join(self.idempotency_keys)


@dataclass
class _Group:
    created_s: float
    last_sent_s: float | None = None
    #: finding id → (newest alert, tokens of every revision folded into it)
    pending: dict[str, tuple[dict[str, Any], list[Any]]] = field(default_factory=dict)


class Grouper:
    """Groups alerts and says, for a given moment, which notifications are due.

    Feed it with :meth:`add` as alerts arrive and call :meth:`due` regularly;
    both take the current time explicitly, which must not go backwards.

    Examples
    --------
    >>> g = Grouper(GroupingConfig(group_wait_s=30, group_interval_s=300))
    >>> g.add({"id": "00000000000000aa", "revision": 1, "kind": "exfil"}, now_s=0,
    ...       token=("alerts", 0, 7))
    []
    >>> g.due(now_s=29)
    []
    >>> [(n.group, len(n.alerts), n.tokens) for n in g.due(now_s=30)]
    [({'kind': 'exfil'}, 1, (('alerts', 0, 7),))]
    """

    def __init__(self, config: GroupingConfig | None = None) -> None:
        self.config = config or GroupingConfig()
        self._groups: dict[tuple, _Group] = {}
        #: idempotency key → when it was notified, oldest first
        self._notified_s: OrderedDict[str, float] = OrderedDict()
        #: alerts waiting in all groups
        self.pending = 0

    def add(self, alert: dict[str, Any], *, now_s: float, token: Any = None) -> list[Any]:
        """Take one alert (kept as it is: the caller hands it over and does not change it).

        Returns the tokens of alerts needing no notification (a revision already
        notified within ``repeat_interval_s``, or older than the one already
        waiting), which the caller may acknowledge at once."""
        finding, revision = alert["id"], alert["revision"]
        sent_s = self._notified_s.get(f"{finding}:{revision}")
        if sent_s is not None and now_s - sent_s < self.config.repeat_interval_s:
            return [token]
        key = tuple([_hashable(alert.get(name)) for name in self.config.group_by])
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(created_s=now_s)
        waiting = group.pending.get(finding)
        if waiting is None:
            group.pending[finding] = (alert, [token])
            self.pending += 1
            return []
        if revision > waiting[0]["revision"]:  # an escalation replaces what waits
            group.pending[finding] = (alert, [*waiting[1], token])
            return []
        return [token]  # the same or an older revision is already waiting

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
            alerts = [a for a, _ in group.pending.values()]
            out.append(
                Notification(
                    group=dict(zip(self.config.group_by, key, strict=True)),
                    alerts=tuple(alerts[: self.config.max_alerts]),
                    truncated=max(0, len(alerts) - self.config.max_alerts),
                    tokens=tuple(t for _, tokens in group.pending.values() for t in tokens),
                )
            )
            notified = self._notified_s
            for alert in alerts:
                sent = f"{alert['id']}:{alert['revision']}"
                if sent in notified:
                    notified.move_to_end(sent)  # kept in send order
                notified[sent] = now_s
            self.pending -= len(group.pending)
            group.pending = {}
            group.last_sent_s = now_s
        self._forget(now_s)
        return out

    def _forget(self, now_s: float) -> None:
        """Drop keys notified more than ``repeat_interval_s`` ago (oldest first, so
        each key is looked at once), keeping memory bounded."""
        horizon = now_s - self.config.repeat_interval_s
        notified = self._notified_s
        while notified:
            oldest = next(iter(notified))
            if notified[oldest] > horizon:
                break
            del notified[oldest]


def _hashable(value: Any) -> Any:
    """Group-by values as dict keys (validated alerts hold no lists there, but stay safe)."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value
