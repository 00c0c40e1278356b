"""Alert dicts as they appear on the alerts topic, with the ``id`` and ``revision`` the
worker stamps on each (``f"{id}:{revision}"`` is the idempotency key)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from silkwatch.detectors.alerts import Alert


def finding_id(alert: dict[str, Any]) -> str:
    """A stable 16-hex id for one finding (kind and endpoints), as the worker's would be."""
    identity = json.dumps([alert.get(k) for k in ("kind", "sip", "dip", "dport", "proto")])
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def stamped(alert: Alert, *, id: str | None = None, revision: int = 1) -> dict[str, Any]:
    """``alert.to_dict()`` with an id (given, or derived) and a revision."""
    record = alert.to_dict()
    record["id"] = id or record.get("id") or finding_id(record)
    record["revision"] = revision
    return record
