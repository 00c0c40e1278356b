"""Slack incoming webhooks: a header block, one line per alert, severity colour bar.

Alert text is mrkdwn-escaped (``text.slack_escape``): an alert cannot ping a
channel or hide a link. The header block is ``plain_text``, never parsed.
"""

from __future__ import annotations

from typing import Any

from silkwatch.connectors.alerting.grouping import Notification
from silkwatch.connectors.alerting.http import WebhookSink
from silkwatch.connectors.alerting.text import (
    SEVERITY_COLOURS,
    line,
    more_line,
    slack_escape,
    title,
    worst_severity,
)

#: Slack cuts a section's text at 3,000 characters
MAX_SECTION_CHARS = 3000


class SlackSink(WebhookSink):
    """Posts to a Slack incoming webhook (``https://hooks.slack.com/services/...``)."""

    kind = "slack"

    def payload(self, notification: Notification) -> dict[str, Any]:
        lines = [f"• {slack_escape(line(a))}" for a in notification.alerts]
        lines += more_line(notification)
        body = "\n".join(lines)
        if len(body) > MAX_SECTION_CHARS:
            body = body[: MAX_SECTION_CHARS - 1] + "…"
        return {
            # notifications and clients without blocks (mrkdwn, so escaped)
            "text": slack_escape(title(notification)),
            "attachments": [
                {
                    "color": SEVERITY_COLOURS[worst_severity(notification)],
                    "blocks": [
                        {
                            "type": "header",
                            "text": {"type": "plain_text", "text": title(notification)},
                        },
                        {"type": "section", "text": {"type": "mrkdwn", "text": body}},
                    ],
                }
            ],
        }
