"""Mattermost incoming webhooks: Markdown text plus a Slack-style attachment.

Mattermost accepts Slack's attachment format but not Block Kit, so this sink
sends the alert lines as a Markdown list with the severity colour bar. Alert
text is Markdown-escaped and its ``@`` mentions broken (``text.mattermost_escape``).
"""

from __future__ import annotations

from typing import Any

from silkwatch.connectors.alerting.grouping import Notification
from silkwatch.connectors.alerting.http import DEFAULT_TIMEOUT_S, WebhookSink
from silkwatch.connectors.alerting.secrets import Secret
from silkwatch.connectors.alerting.text import (
    SEVERITY_COLOURS,
    line,
    mattermost_escape,
    more_line,
    title,
    worst_severity,
)


class MattermostSink(WebhookSink):
    """Posts to a Mattermost incoming webhook (``https://mm.example/hooks/<id>``).

    :param username: the name the post appears under. Default - ``silkwatch``
    """

    kind = "mattermost"

    def __init__(
        self,
        name: str,
        url: Secret,
        *,
        username: str = "silkwatch",
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__(name, url, timeout_s=timeout_s)
        self.username = username

    def payload(self, notification: Notification) -> dict[str, Any]:
        lines = [f"- {mattermost_escape(line(a))}" for a in notification.alerts]
        lines += more_line(notification)
        return {
            "username": self.username,
            "text": f"#### {mattermost_escape(title(notification))}",
            "attachments": [
                {
                    "color": SEVERITY_COLOURS[worst_severity(notification)],
                    "fallback": mattermost_escape(title(notification)),
                    "text": "\n".join(lines),
                }
            ],
        }
