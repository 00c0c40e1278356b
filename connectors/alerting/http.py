"""POSTing JSON to a receiver, and the error every failed delivery becomes.

Failures are reported by sink name and a short reason (``http_503``,
``timeout``, ``connection``), never with the URL or the HTTP library's message:
both may contain the webhook secret.

Every request carries an ``Idempotency-Key`` header and the same value as the
body field ``idempotency_key``: ``id:revision`` of each alert it lists,
comma-separated. A retry (after a timeout, say, when the receiver did get the
first try but answered late) carries the same key, so the receiver can drop it.

Timeouts (``docs/alerts.md``): ``timeout_s`` (default 10 s, per sink in
``sinks.toml``) bounds the whole request; connecting alone is bounded by
``CONNECT_TIMEOUT_S``. A receiver's ``Retry-After`` is honoured up to
``MAX_RETRY_AFTER_S``.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from silkwatch.connectors.alerting.grouping import Notification
from silkwatch.connectors.alerting.secrets import Secret
from silkwatch.detectors.exceptions import SilkwatchError

DEFAULT_TIMEOUT_S = 10.0

#: longest wait for a TCP connection (and TLS handshake), within ``timeout_s``
CONNECT_TIMEOUT_S = 5.0

#: the longest ``Retry-After`` honoured, so a bogus header cannot stall a sink for a day
MAX_RETRY_AFTER_S = 600.0


class DeliveryError(SilkwatchError):
    """A receiver did not acknowledge a notification; the delivery loop retries it."""

    reason = "delivery_failed"

    def __init__(self, sink: str, reason: str, *, retry_after_s: float = 0.0) -> None:
        self.sink = sink
        self.reason = reason
        #: the receiver's ``Retry-After`` (Slack and Teams send it with 429), else 0
        self.retry_after_s = retry_after_s
        super().__init__(f"alert delivery: sink {sink}: {reason}")


async def post_json(
    sink: str,
    url: Secret,
    payload: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> None:
    """POST ``payload``; any status other than 2xx, or no answer, is a :class:`DeliveryError`."""
    timeout = aiohttp.ClientTimeout(total=timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S))
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url.reveal(), json=payload, headers=headers) as response,
        ):
            await response.read()
            status = response.status
            retry_after = response.headers.get("Retry-After", "")
    except TimeoutError:
        raise DeliveryError(sink, "timeout") from None
    except aiohttp.ClientConnectionError:
        raise DeliveryError(sink, "connection") from None
    except (aiohttp.ClientError, ValueError) as exc:
        raise DeliveryError(sink, type(exc).__name__.lower()) from None
    if not 200 <= status < 300:
        wait_s = float(retry_after) if retry_after.isdigit() else 0.0
        raise DeliveryError(sink, f"http_{status}", retry_after_s=min(wait_s, MAX_RETRY_AFTER_S))


class WebhookSink:
    """A sink that POSTs one JSON document per notification.

    Subclasses say only what the document looks like (:meth:`payload`).
    """

    #: the ``type`` name in ``sinks.toml``
    kind = "webhook"

    def __init__(self, name: str, url: Secret, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.name = name
        self.url = url
        self.timeout_s = timeout_s

    def payload(self, notification: Notification) -> dict[str, Any]:
        raise NotImplementedError

    def headers(self) -> dict[str, str] | None:
        return None

    async def send(self, notification: Notification) -> None:
        """Deliver one notification; raises :class:`DeliveryError` unless acknowledged."""
        key = notification.idempotency_key
        await post_json(
            self.name,
            self.url,
            {**self.payload(notification), "idempotency_key": key},
            headers={"Idempotency-Key": key, **(self.headers() or {})},
            timeout_s=self.timeout_s,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, url={self.url!r})"
