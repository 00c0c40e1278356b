"""Slack incoming webhooks: a header block, one line per alert, severity colour bar."""

from __future__ import annotations

from typing import Any

from connectors.alerting.grouping import Notification
from connectors.alerting.http import WebhookSink
from connectors.alerting.text import SEVERITY_COLOURS, line, more_line, title, worst_severity

#: Slack cuts a section's text at 3,000 characters
MAX_SECTION_CHARS = 3000


class SlackSink(WebhookSink):
    """Posts to a Slack incoming webhook (``https://hooks.slack.com/services/...``)."""

    kind = "slack"

    def payload(self, notification: Notification) -> dict[str, Any]:
        lines = [f"• {line(a)}" for a in notification.alerts] + more_line(notification)
        body = "\n".join(lines)
        if len(body) > MAX_SECTION_CHARS:
            body = body[: MAX_SECTION_CHARS - 1] + "…"
        return {
            "text": title(notification),  # notifications and clients without blocks
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
