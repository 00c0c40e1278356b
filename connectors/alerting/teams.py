"""Microsoft Teams through a Workflows (Power Automate) webhook, as an Adaptive Card.

The Office 365 connector webhooks are retired; a Teams "Post to a channel when a
webhook request is received" workflow takes a message whose attachment is an
Adaptive Card, and answers 202 Accepted.
"""

from __future__ import annotations

from typing import Any

from connectors.alerting.grouping import Notification
from connectors.alerting.http import WebhookSink
from connectors.alerting.text import line, more_line, title, worst_severity

#: Adaptive Card colour names per severity (cards take names, not hex)
CARD_COLOURS = {"low": "Accent", "medium": "Warning", "high": "Warning", "critical": "Attention"}


class TeamsSink(WebhookSink):
    """Posts an Adaptive Card to a Teams Workflows webhook URL."""

    kind = "teams"

    def payload(self, notification: Notification) -> dict[str, Any]:
        body: list[dict[str, Any]] = [
            {
                "type": "TextBlock",
                "text": title(notification),
                "weight": "Bolder",
                "size": "Medium",
                "color": CARD_COLOURS[worst_severity(notification)],
                "wrap": True,
            }
        ]
        body += [
            {"type": "TextBlock", "text": text, "wrap": True, "spacing": "Small"}
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
