"""A generic JSON webhook in Alertmanager's webhook format (version 4).

Anything a SOC already points Alertmanager at (ticketing bridges, SOAR
playbooks, ``alertmanager-webhook-*`` adapters) can take silkwatch alerts
unchanged. Our alerts are events, so each is ``firing`` with the zero
``endsAt`` Alertmanager uses for alerts without a known end. The fingerprint is
the finding's id; each alert also carries its ``idempotencyKey``. Label values
are one line and bounded (``text.label_value``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from silkwatch.connectors.alerting.grouping import Notification
from silkwatch.connectors.alerting.http import DEFAULT_TIMEOUT_S, WebhookSink
from silkwatch.connectors.alerting.secrets import Secret
from silkwatch.connectors.alerting.text import label_value, line, one_line

#: Alertmanager's ``endsAt`` for an alert that has not ended
ZERO_TIME = "0001-01-01T00:00:00Z"

_LABEL_FIELDS = ("severity", "sip", "dip", "dport", "proto")


def labels(alert: Mapping[str, Any]) -> dict[str, str]:
    """Alertmanager labels: ``alertname`` is the kind; absent fields are left out."""
    out = {"alertname": label_value(alert.get("kind")), "source": "silkwatch"}
    out.update({k: label_value(alert[k]) for k in _LABEL_FIELDS if alert.get(k) is not None})
    return out


def annotations(alert: Mapping[str, Any]) -> dict[str, str]:
    """Human text and the numbers behind the score (annotation values are strings)."""
    return {
        "summary": line(alert),
        "description": one_line(str(alert.get("reason", ""))),
        "score": str(alert.get("score")),
        "evidence": json.dumps(alert.get("evidence", {}), sort_keys=True),
        "last_seen": str(alert.get("last_seen")),
    }


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    return {k: v for k, v in maps[0].items() if all(m.get(k) == v for m in maps[1:])}


class AlertmanagerWebhookSink(WebhookSink):
    """POSTs Alertmanager's webhook JSON to any URL.

    :param external_url: where a reader finds more (e.g. the Grafana wall).
        Default - empty
    """

    kind = "webhook"

    def __init__(
        self,
        name: str,
        url: Secret,
        *,
        external_url: str = "",
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__(name, url, timeout_s=timeout_s)
        self.external_url = external_url

    def payload(self, notification: Notification) -> dict[str, Any]:
        alerts = [
            {
                "status": "firing",
                "labels": labels(a),
                "annotations": annotations(a),
                "startsAt": a.get("first_seen"),
                "endsAt": ZERO_TIME,
                "generatorURL": self.external_url,
                "fingerprint": a["id"],
                "idempotencyKey": f"{a['id']}:{a['revision']}",
            }
            for a in notification.alerts
        ]
        return {
            "version": "4",
            "groupKey": notification.group_key,
            "truncatedAlerts": notification.truncated,
            "status": "firing",
            "receiver": self.name,
            "groupLabels": {k: label_value(v) for k, v in notification.group.items()},
            "commonLabels": _common([a["labels"] for a in alerts]),
            "commonAnnotations": _common([a["annotations"] for a in alerts]),
            "externalURL": self.external_url,
            "alerts": alerts,
        }
