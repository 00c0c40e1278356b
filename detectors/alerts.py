"""Alerts: the one record every detector emits, and how scores become severities.

Scorers re-report everything they still see each time they run; what an
analyst is told (a new finding, or a new revision of one) is decided by
:class:`silkwatch.detectors.ledger.AlertLedger`, which keys findings by :func:`alert_key`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: severities from least to most urgent; the index is the rank
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")

#: (kind, sip, dip, dport, proto) — None where a field does not apply
AlertKey = tuple[str, str | None, str | None, int | None, int | None]


@dataclass(frozen=True)
class AlertConfig:
    """How scores become severities, and what counts as a material change.

    :param medium_at: lowest score rated ``medium``. Default - 0.5
    :param high_at: lowest score rated ``high``. Default - 0.75
    :param critical_at: lowest score rated ``critical``. Default - 0.9
    :param rescore_step: a repeat is reported again when its score rose by at
        least this much since the last report. Default - 0.1
    :param forget_after_ms: event time after which a key not seen again is
        forgotten, so a beacon that stops and comes back is reported anew.
        Default - 7 days
    """

    medium_at: float = 0.5
    high_at: float = 0.75
    critical_at: float = 0.9
    rescore_step: float = 0.1
    forget_after_ms: int = 7 * 86_400_000


@dataclass(frozen=True)
class Alert:
    """One finding, with the numbers behind it and a sentence for the analyst.

    ``evidence`` holds plain numbers (bytes, packets, bytes/packet, flows,
    period, jitter, baseline…) so that a reader can check the score by hand.
    Times are event time in ms since the UNIX epoch (UTC).
    """

    kind: str
    severity: str
    score: float
    sip: str | None
    dip: str | None
    dport: int | None
    proto: int | None
    first_seen_ms: int
    last_seen_ms: int
    evidence: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    # stable for one finding (silkwatch.detectors.ledger); empty until the ledger admits it
    id: str = ""
    revision: int = 0  # 1 for the first report of a finding, then one more per update

    def to_dict(self) -> dict[str, Any]:
        """The alert as a JSON-ready object (times as ISO 8601 UTC, ms precision).

        Examples
        --------
        >>> a = Alert("beacon", "high", 0.8123, "10.0.0.1", "1.2.3.4", 443, 6,
        ...           1434553200013, 1434556800000, {"flows": np.int64(24)}, "Regular.")
        >>> d = a.to_dict()
        >>> d["first_seen"], d["last_seen"], d["score"], d["evidence"]
        ('2015-06-17T15:00:00.013Z', '2015-06-17T16:00:00.000Z', 0.812, {'flows': 24})
        """
        return {
            "kind": self.kind,
            "severity": self.severity,
            "score": round(float(self.score), 3),
            "sip": self.sip,
            "dip": self.dip,
            "dport": self.dport,
            "proto": self.proto,
            "first_seen": iso_utc(self.first_seen_ms),
            "last_seen": iso_utc(self.last_seen_ms),
            "evidence": {key: _plain(value) for key, value in self.evidence.items()},
            "reason": self.reason,
            "id": self.id,
            "revision": self.revision,
        }


def iso_utc(ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC with milliseconds.

    Examples
    --------
    >>> iso_utc(0), iso_utc(1434553200013)
    ('1970-01-01T00:00:00.000Z', '2015-06-17T15:00:00.013Z')
    """
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=int(ms))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def severity_for(score: float, config: AlertConfig | None = None) -> str:
    """The severity word for a score in [0, 1].

    Examples
    --------
    >>> [severity_for(s) for s in (0.0, 0.49, 0.5, 0.75, 0.9, 1.0)]
    ['low', 'low', 'medium', 'high', 'critical', 'critical']
    """
    config = config or AlertConfig()
    cuts = (config.medium_at, config.high_at, config.critical_at)
    return SEVERITIES[sum(score >= cut for cut in cuts)]


def rate(alerts: Iterable[Alert], config: AlertConfig) -> list[Alert]:
    """The alerts with severities re-rated from their scores by the site's ``[alerts]`` cuts.

    Scorers rate with the defaults; the engine applies this to every alert, so
    ``medium_at``, ``high_at`` and ``critical_at`` in a site's config take effect.

    Examples
    --------
    >>> a = Alert("beacon", "medium", 0.6, "10.0.0.1", "1.2.3.4", 443, 6, 0, 1)
    >>> [x.severity for x in rate([a], AlertConfig(high_at=0.55, critical_at=0.95))]
    ['high']
    """
    return [dataclasses.replace(a, severity=severity_for(a.score, config)) for a in alerts]


def alert_key(alert: Alert) -> AlertKey:
    """The identity of a finding (the ledger's key): kind plus whichever of pair/port/proto apply.

    Examples
    --------
    >>> alert_key(Alert("dns_tunnel", "high", 0.8, "10.0.0.7", "10.0.0.53", 53, 17, 0, 1))
    ('dns_tunnel', '10.0.0.7', '10.0.0.53', 53, 17)
    """
    return (alert.kind, alert.sip, alert.dip, alert.dport, alert.proto)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays → JSON-ready Python values; floats rounded to 4 places."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
