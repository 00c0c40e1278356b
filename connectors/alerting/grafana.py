"""Grafana annotations: each alert as a region from its first to its last flow.

The dashboards show annotations tagged ``silkwatch`` + ``alert``
(``silkwatch.grafana.build.ANNOTATION_TAGS``) on every time series panel. One POST per
alert, with the alert's ``id:revision`` as ``Idempotency-Key`` header and in the
annotation's ``data``; a retry skips the alerts already annotated, so a
notification that failed half-way does not annotate twice. Grafana renders
annotation text as HTML: the text is HTML-escaped (``text.html_escape``).
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from typing import Any

from silkwatch.connectors.alerting.grouping import Notification
from silkwatch.connectors.alerting.http import DEFAULT_TIMEOUT_S, post_json
from silkwatch.connectors.alerting.schema import idempotency_key
from silkwatch.connectors.alerting.secrets import Secret
from silkwatch.connectors.alerting.text import html_escape, line

#: how many annotated alerts to remember for retries
REMEMBER = 10_000


def epoch_ms(iso: str) -> int:
    """``2015-06-17T15:00:00.013Z`` → 1434553200013.

    Examples
    --------
    >>> epoch_ms("2015-06-17T15:00:00.013Z")
    1434553200013
    """
    moment = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return round(moment.timestamp() * 1000)


class GrafanaAnnotationSink:
    """Posts alerts to ``<grafana>/api/annotations`` with a service account token.

    :param url: the Grafana base URL (not secret).
    :param token: a service account token with the annotations:write permission.
    :param tags: tags every annotation gets, besides the alert's kind and severity.
    """

    kind = "grafana"

    def __init__(
        self,
        name: str,
        url: str,
        token: Secret,
        *,
        tags: tuple[str, ...] = ("silkwatch", "alert"),
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.endpoint = Secret(url.rstrip("/") + "/api/annotations", url)
        self.token = token
        self.tags = tags
        self.timeout_s = timeout_s
        self._done: OrderedDict[str, None] = OrderedDict()

    def annotation(self, alert: dict[str, Any]) -> dict[str, Any]:
        """The annotation Grafana's HTTP API takes for one alert."""
        return {
            "time": epoch_ms(alert["first_seen"]),
            "timeEnd": epoch_ms(alert["last_seen"]),
            "tags": [*self.tags, str(alert.get("kind")), str(alert.get("severity"))],
            "text": html_escape(line(alert)),
            "data": {"idempotency_key": idempotency_key(alert)},
        }

    async def send(self, notification: Notification) -> None:
        """Annotate every alert not yet annotated; raises ``DeliveryError`` on the first failure."""
        for alert in notification.alerts:
            key = idempotency_key(alert)
            if key in self._done:
                continue
            await post_json(
                self.name,
                self.endpoint,
                self.annotation(alert),
                headers={"Authorization": f"Bearer {self.token.reveal()}", "Idempotency-Key": key},
                timeout_s=self.timeout_s,
            )
            self._done[key] = None
            if len(self._done) > REMEMBER:
                self._done.popitem(last=False)

    def __repr__(self) -> str:
        return f"GrafanaAnnotationSink(name={self.name!r}, token={self.token!r})"
