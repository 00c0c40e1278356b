"""The alert schema every record on the alerts topic must meet before any sink sees it.

One malformed record (an unknown severity, a list-valued ``kind``, a missing
``first_seen``) used to crash the delivery loop, which then crash-looped and
re-sent what it had already sent. Now each record is decoded and validated
here, with msgspec (one C pass: JSON decoding and type checks together); a
record that fails gets a short, bounded ``reason`` (the metrics label) and a
``detail`` sentence, and goes to the dead-letter topic instead of to any sink.

Only the fields below are kept: a sink never formats a field it was not
validated for.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from silkwatch.detectors.exceptions import SilkwatchError

#: ISO 8601 UTC with up to microseconds, as ``silkwatch.detectors.alerts.iso_utc`` writes it
ISO_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"

#: longest alert record taken (bytes of JSON); Kafka's own limit is 4 MiB
MAX_ALERT_BYTES = 256 * 1024

#: longest ``reason`` sentence, in characters
MAX_REASON_CHARS = 2000

_Timestamp = Annotated[str, Meta(pattern=ISO_UTC)]
_Address = Annotated[str, Meta(max_length=45)]


class AlertRecord(msgspec.Struct, kw_only=True):
    """One alert as the worker publishes it (``Alert.to_dict()`` plus id and revision).

    ``id`` is stable for one finding; an escalation or update of it is a higher
    ``revision``. ``f"{id}:{revision}"`` is the idempotency key receivers get.
    """

    id: Annotated[str, Meta(pattern=r"^[0-9a-f]{16}$")]
    revision: Annotated[int, Meta(ge=1)]
    kind: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    severity: Literal["low", "medium", "high", "critical"]
    score: Annotated[float, Meta(ge=0.0, le=1.0)]
    first_seen: _Timestamp
    last_seen: _Timestamp
    sip: _Address | None = None
    dip: _Address | None = None
    dport: Annotated[int, Meta(ge=0, le=65535)] | None = None
    proto: Annotated[int, Meta(ge=0, le=255)] | None = None
    evidence: dict[str, Any] = msgspec.field(default_factory=dict)
    reason: Annotated[str, Meta(max_length=MAX_REASON_CHARS)] = ""


FIELDS = AlertRecord.__struct_fields__

_DECODER = msgspec.json.Decoder(AlertRecord)
_FIELD_AT = re.compile(r"at `\$\.(\w+)")
_MISSING = re.compile(r"missing required field `(\w+)`")


class InvalidAlert(SilkwatchError):
    """A record on the alerts topic that is not a valid alert.

    :param reason: a label from a fixed set (``not_json``, ``not_object``,
        ``too_large``, ``missing_<field>``, ``invalid_<field>``), for metrics
    :param detail: what exactly is wrong, for the dead-letter record
    """

    reason = "invalid_alert"

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"alert schema: {reason}: {detail}")


def _reason(message: str) -> str:
    """A bounded label for msgspec's message (field names come from the schema only)."""
    missing = _MISSING.search(message)
    if missing and missing.group(1) in FIELDS:
        return f"missing_{missing.group(1)}"
    at = _FIELD_AT.search(message)
    if at and at.group(1) in FIELDS:
        return f"invalid_{at.group(1)}"
    return "not_object" if "Expected `object`" in message else "invalid_alert"


def validate_alert(raw: bytes | None) -> dict[str, Any]:
    """Decode and validate one record; returns the alert as a plain dict.

    Raises :class:`InvalidAlert` with a bounded reason.

    Examples
    --------
    >>> good = (b'{"id": "00000000000000ab", "revision": 2, "kind": "exfil", '
    ...         b'"severity": "high", "score": 0.8, "sip": "10.0.0.1", '
    ...         b'"first_seen": "2015-06-17T15:00:00.000Z", '
    ...         b'"last_seen": "2015-06-17T16:00:00.000Z"}')
    >>> a = validate_alert(good)
    >>> a["id"], a["revision"], a["dip"], a["evidence"]
    ('00000000000000ab', 2, None, {})
    >>> validate_alert(good.replace(b'"high"', b'"urgent"'))
    Traceback (most recent call last):
    ...
    silkwatch.connectors.alerting.schema.InvalidAlert: alert schema: invalid_severity: Invalid \
enum value \
'urgent' - at `$.severity`
    >>> validate_alert(b'{"kind": ["exfil"]}')
    Traceback (most recent call last):
    ...
    silkwatch.connectors.alerting.schema.InvalidAlert: alert schema: invalid_kind: Expected `str`, \
got `array` - at `$.kind`
    """
    if raw is None or not raw.strip():
        raise InvalidAlert("not_json", "empty record")
    if len(raw) > MAX_ALERT_BYTES:
        raise InvalidAlert("too_large", f"{len(raw)} bytes (at most {MAX_ALERT_BYTES})")
    try:
        record = _DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        raise InvalidAlert(_reason(str(exc)), str(exc)) from None
    except msgspec.DecodeError as exc:
        raise InvalidAlert("not_json", str(exc)) from None
    for name in ("sip", "dip"):
        value = getattr(record, name)
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise InvalidAlert(
                    f"invalid_{name}", f"not an IP address - at `$.{name}`"
                ) from None
    if record.last_seen < record.first_seen:
        raise InvalidAlert("invalid_last_seen", "last_seen is before first_seen")
    return msgspec.to_builtins(record)


def idempotency_key(alert: dict[str, Any]) -> str:
    """``id:revision``: the same for every retry of one revision of one finding.

    Examples
    --------
    >>> idempotency_key({"id": "00000000000000ab", "revision": 3})
    '00000000000000ab:3'
    """
    return f"{alert['id']}:{alert['revision']}"
