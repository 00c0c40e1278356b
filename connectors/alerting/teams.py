"""Microsoft Teams through a Workflows (Power Automate) webhook, as an Adaptive Card.

The Office 365 connector webhooks are retired; a Teams "Post to a channel when a
webhook request is received" workflow takes a message whose attachment is an
Adaptive Card, and answers 202 Accepted.

Alert text goes into ``RichTextBlock`` text runs, which cards show as they are
(a ``TextBlock`` would render Markdown links and emphasis from an alert's text).
"""

from __future__ import annotations

from typing import Any

from silkwatch.connectors.alerting.grouping import Notification
from silkwatch.connectors.alerting.http import WebhookSink
from silkwatch.connectors.alerting.text import line, more_line, one_line, title, worst_severity

#: Adaptive Card colour names per severity (cards take names, not hex)
CARD_COLOURS = {"low": "Accent", "medium": "Warning", "high": "Warning", "critical": "Attention"}


class TeamsSink(WebhookSink):
    """Posts an Adaptive Card to a Teams Workflows webhook URL."""

    kind = "teams"

    def payload(self, notification: Notification) -> dict[str, Any]:
        heading = {
            "type": "TextRun",
            "text": title(notification),
            "weight": "Bolder",
            "size": "Medium",
            "color": CARD_COLOURS[worst_severity(notification)],
        }
        body: list[dict[str, Any]] = [{"type": "RichTextBlock", "inlines": [heading]}]
        body += [
            {
                "type": "RichTextBlock",
                "inlines": [{"type": "TextRun", "text": one_line(text)}],
                "spacing": "Small",
            }
            for text in [line(a) for a in notification.alerts] + more_line(notification)
        ]
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": body,
                    },
                }
            ],
        }
