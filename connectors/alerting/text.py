"""The words every chat sink shows: one title per notification, one line per alert."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.alerting.grouping import Notification
from connectors.prometheus import protocol_label

#: a colour per severity (hex), shared by Slack/Mattermost attachments and Teams cards
SEVERITY_COLOURS = {
    "low": "#8AB8FF",
    "medium": "#FADE2A",
    "high": "#FF9830",
    "critical": "#F2495C",
}

_SEVERITY_ORDER = tuple(SEVERITY_COLOURS)


def worst_severity(notification: Notification) -> str:
    """The most urgent severity among a notification's alerts."""
    ranks = [_SEVERITY_ORDER.index(a.get("severity", "low")) for a in notification.alerts]
    return _SEVERITY_ORDER[max(ranks, default=0)]


def title(notification: Notification) -> str:
    """``silkwatch: 3 alerts (exfil), worst high``.

    Examples
    --------
    >>> n = Notification({"kind": "exfil"}, ({"severity": "high"}, {"severity": "low"}), 1)
    >>> title(n)
    'silkwatch: 3 alerts (exfil), worst high'
    """
    count = len(notification.alerts) + notification.truncated
    group = ", ".join(str(v) for v in notification.group.values())
    noun = "alert" if count == 1 else "alerts"
    return f"silkwatch: {count} {noun} ({group}), worst {worst_severity(notification)}"


def endpoint(alert: Mapping[str, Any]) -> str:
    """``10.0.0.5 → 198.51.100.7:443/tcp`` with whatever parts the alert has."""
    source = alert.get("sip") or "*"
    target = alert.get("dip") or "*"
    if alert.get("dport") is not None:
        target += f":{alert['dport']}"
    if alert.get("proto") is not None:
        target += f"/{protocol_label(alert['proto'])}"
    return f"{source} → {target}"


def line(alert: Mapping[str, Any]) -> str:
    """One alert as one line of plain text.

    Examples
    --------
    >>> line({"kind": "beacon", "severity": "high", "score": 0.812, "sip": "10.0.0.1",
    ...       "dip": "1.2.3.4", "dport": 443, "proto": 6, "last_seen": "2015-06-17T16:00:00.000Z",
    ...       "reason": "Regular."})
    '[high] beacon 10.0.0.1 → 1.2.3.4:443/tcp score 0.812 at 2015-06-17T16:00:00.000Z: Regular.'
    """
    text = (
        f"[{alert.get('severity')}] {alert.get('kind')} {endpoint(alert)} "
        f"score {alert.get('score')} at {alert.get('last_seen')}"
    )
    return f"{text}: {alert['reason']}" if alert.get("reason") else text


def more_line(notification: Notification) -> list[str]:
    """``… and 12 more`` when the notification was truncated, else nothing."""
    return [f"… and {notification.truncated} more"] if notification.truncated else []
