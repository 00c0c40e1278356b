"""The words every chat sink shows (one title per notification, one line per alert),
and how each target's markup is escaped.

Anyone who can write to the alerts topic controls the text of an alert (its
``reason`` above all), so every line is first made one line of plain text
(control characters, newlines included, become spaces), then escaped for its
target: Slack's mrkdwn control sequences (``<!channel>``, ``<@U…>``,
``<url|text>``), Mattermost's Markdown and ``@`` mentions, HTML for Grafana
annotations; Teams gets card text runs, which are not Markdown at all, and
Alertmanager label values are bounded plain strings.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from silkwatch.connectors.alerting.grouping import Notification
from silkwatch.connectors.prometheus import protocol_label

#: a colour per severity (hex), shared by Slack/Mattermost attachments and Teams cards
SEVERITY_COLOURS = {
    "low": "#8AB8FF",
    "medium": "#FADE2A",
    "high": "#FF9830",
    "critical": "#F2495C",
}

_SEVERITY_ORDER = tuple(SEVERITY_COLOURS)

#: longest Alertmanager label value (Alertmanager has no limit; receivers index them)
MAX_LABEL_CHARS = 256

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_MENTION = re.compile(r"@(?=\w)")
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+!|<>~&])")
_ZWSP = "\u200b"


def one_line(text: str) -> str:
    """Control characters (newlines, escapes, NUL…) as one space each run.

    Examples
    --------
    >>> one_line("a\\nb\\x1b[31m c")
    'a b [31m c'
    """
    return _CONTROL.sub(" ", text)


def slack_escape(text: str) -> str:
    """Slack mrkdwn: ``& < >`` as entities (Slack's own rule), which disarms
    ``<!channel>``, ``<!here>``, ``<@U…>`` and ``<url|text>``; ``@name`` broken too.

    Examples
    --------
    >>> print(slack_escape("<!channel> <!here> <https://evil.example|click> & co"))
    &lt;!channel&gt; &lt;!here&gt; &lt;https://evil.example|click&gt; &amp; co
    >>> slack_escape("@here")
    '@\u200bhere'
    """
    escaped = one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MENTION.sub("@" + _ZWSP, escaped)


def mattermost_escape(text: str) -> str:
    r"""Mattermost Markdown: every inline markup character backslash-escaped (links,
    images, emphasis, code, HTML), and ``@channel``/``@all``/``@user`` mentions broken
    by a zero-width space after the ``@``.

    Examples
    --------
    >>> print(mattermost_escape("![x](http://evil.example/t.png) <b>*all*</b>"))
    \!\[x\]\(http://evil.example/t.png\) \<b\>\*all\*\</b\>
    >>> mattermost_escape("@channel")
    '@\u200bchannel'
    """
    return _MENTION.sub("@" + _ZWSP, _MARKDOWN.sub(r"\\\1", one_line(text)))


def html_escape(text: str) -> str:
    """Grafana annotation text (rendered as HTML): tags and entities shown, not run.

    Examples
    --------
    >>> html_escape('<img src=x onerror="alert(1)"> & <!here>')
    '&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; &lt;!here&gt;'
    """
    return html.escape(one_line(text), quote=True)


def label_value(value: Any) -> str:
    """An Alertmanager label value: one line, at most ``MAX_LABEL_CHARS`` characters.

    Examples
    --------
    >>> label_value("10.0.0.1\\n"), len(label_value("x" * 1000))
    ('10.0.0.1 ', 256)
    """
    return one_line(str(value))[:MAX_LABEL_CHARS]


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
    return one_line(f"silkwatch: {count} {noun} ({group}), worst {worst_severity(notification)}")


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
    """One alert as one line of plain text (not yet escaped for any target).

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
    return one_line(f"{text}: {alert['reason']}" if alert.get("reason") else text)


def more_line(notification: Notification) -> list[str]:
    """``… and 12 more`` when the notification was truncated, else nothing."""
    return [f"… and {notification.truncated} more"] if notification.truncated else []
