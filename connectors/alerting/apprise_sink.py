"""Any notification service apprise knows (``tgram://``, ``mailto://``, ``pover://``, …).

apprise reports only success or failure, so a failure is retried as a whole.
The body is declared plain text, so apprise escapes it for HTML and Markdown
targets itself. apprise logs the URLs it handles (at debug, and in full when
one does not parse): ``secrets.redact_logs`` removes them.
"""

from __future__ import annotations

import apprise

from silkwatch.connectors.alerting.grouping import Notification
from silkwatch.connectors.alerting.http import DeliveryError
from silkwatch.connectors.alerting.secrets import Secret
from silkwatch.connectors.alerting.text import line, more_line, title, worst_severity

_NOTIFY_TYPES = {
    "low": apprise.NotifyType.INFO,
    "medium": apprise.NotifyType.WARNING,
    "high": apprise.NotifyType.FAILURE,
    "critical": apprise.NotifyType.FAILURE,
}


class AppriseSink:
    """Sends each notification through one apprise URL (which holds the credentials)."""

    kind = "apprise"

    def __init__(self, name: str, url: Secret) -> None:
        self.name = name
        self.url = url
        self._apprise = apprise.Apprise()
        if not self._apprise.add(url.reveal()):
            raise DeliveryError(name, "apprise_url_not_understood")

    async def send(self, notification: Notification) -> None:
        """Deliver one notification; raises :class:`DeliveryError` unless apprise succeeded."""
        body = "\n".join([line(a) for a in notification.alerts] + more_line(notification))
        ok = await self._apprise.async_notify(
            body=body,
            title=title(notification),
            notify_type=_NOTIFY_TYPES[worst_severity(notification)],
            body_format=apprise.NotifyFormat.TEXT,
        )
        if not ok:
            raise DeliveryError(self.name, "apprise_failed")

    def __repr__(self) -> str:
        return f"AppriseSink(name={self.name!r}, url={self.url!r})"
