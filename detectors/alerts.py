"""Alerts: the one record every detector emits, and deduplication of repeats.

A scorer runs each time an event-time hour closes and re-reports everything it
still sees, so without deduplication an analyst would get the same beacon 24
times a day. :func:`dedupe` lets an alert through once per (kind, pair or host)
and again only when it changes materially: the score rose by at least
``AlertConfig.rescore_step``, the severity rose, or the previous report was
forgotten (``forget_after_ms`` of event time without the alert being seen).

The dedupe state is a keyed aggregate like every other piece of detection
state: a mapping from :func:`alert_key` to a small frozen :class:`Reported`,
which the embedded runner keeps in a dict and the stream keeps in a Faust table.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable, Mapping
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
    id: str = ""  # stable for one finding (detectors.ledger); empty until the ledger admits it
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


@dataclass(frozen=True)
class Reported:
    """What dedupe remembers about one alert key.

    :param score: score of the last alert let through
    :param severity_rank: index in :data:`SEVERITIES` of that alert
    :param seen_ms: newest ``last_seen_ms`` of any alert with this key,
        reported or suppressed (drives forgetting)
    """

    score: float
    severity_rank: int
    seen_ms: int


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
    """The identity dedupe uses: kind plus whichever of pair/port/proto apply.

    Examples
    --------
    >>> alert_key(Alert("dns_tunnel", "high", 0.8, "10.0.0.7", "10.0.0.53", 53, 17, 0, 1))
    ('dns_tunnel', '10.0.0.7', '10.0.0.53', 53, 17)
    """
    return (alert.kind, alert.sip, alert.dip, alert.dport, alert.proto)


def dedupe(
    state: Mapping[AlertKey, Reported],
    alerts: Iterable[Alert],
    config: AlertConfig | None = None,
) -> tuple[dict[AlertKey, Reported], list[Alert]]:
    """Let through only alerts that are new or changed materially.

    Pure: returns a new state mapping and the alerts to send, leaving ``state``
    untouched. Keys not seen for ``forget_after_ms`` (measured from the newest
    ``last_seen_ms`` in this call, event time) are dropped, which bounds the state.

    :param state: what was reported before (``{}`` to start)
    :param alerts: this round's alerts, in any order
    :param config: severity cut points and the rescore step. Default - ``AlertConfig()``

    Examples
    --------
    >>> a = Alert("beacon", "medium", 0.6, "10.0.0.1", "1.2.3.4", 443, 6, 0, 3_600_000)
    >>> state, sent = dedupe({}, [a])
    >>> len(sent)
    1
    >>> state, sent = dedupe(state, [a])  # the same again: suppressed
    >>> len(sent)
    0
    >>> b = Alert("beacon", "high", 0.8, "10.0.0.1", "1.2.3.4", 443, 6, 0, 7_200_000)
    >>> state, sent = dedupe(state, [b])  # score +0.2 and severity up: re-fires
    >>> [(x.severity, x.score) for x in sent]
    [('high', 0.8)]
    """
    config = config or AlertConfig()
    new_state = dict(state)
    sent: list[Alert] = []
    for alert in sorted(alerts, key=lambda a: (a.last_seen_ms, -a.score)):
        key = alert_key(alert)
        old = new_state.get(key)
        rank = SEVERITIES.index(alert.severity)
        forgotten = old is not None and alert.last_seen_ms - old.seen_ms > config.forget_after_ms
        if old is None or forgotten or _material(old, alert.score, rank, config):
            sent.append(alert)
            new_state[key] = Reported(float(alert.score), rank, alert.last_seen_ms)
        else:
            new_state[key] = Reported(
                old.score, old.severity_rank, max(old.seen_ms, alert.last_seen_ms)
            )
    if new_state:
        newest_ms = max(entry.seen_ms for entry in new_state.values())
        horizon_ms = newest_ms - config.forget_after_ms
        new_state = {key: entry for key, entry in new_state.items() if entry.seen_ms >= horizon_ms}
    return new_state, sent


def _material(old: Reported, score: float, rank: int, config: AlertConfig) -> bool:
    """True when a repeat differs enough from what was last reported."""
    return rank > old.severity_rank or score >= old.score + config.rescore_step - 1e-12


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
