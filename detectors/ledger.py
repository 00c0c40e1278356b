"""What was reported: stable alert ids, revisions, and the repeats held back.

Scorers re-report everything they still see each time they run, so the
ledger decides what an analyst is told. A finding keeps one id for as long as
it is seen (its key: kind plus whichever of sip, dip, dport, proto apply); it
is reported once, and again as a new *revision* of the same id only when it
changed materially: its score rose by ``rescore_step`` or its severity rose. A
key not seen for ``forget_after_ms`` of event time is forgotten, and if it
comes back it is a new finding with a new id.

The id is a hash of the key and of the forgetting period (``forget_after_ms``
of event time, a week by default) in which the finding was first reported, so
two runs over the same flows (the embedded runner and the Kafka workers, or a
worker and its replay after a restart) give the same ids even when they first
report it at slightly different moments.

The ledger is bounded (``max_entries``, the stalest forgotten first) and its
state is plain data (:meth:`AlertLedger.to_columns`), never pickled.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from silkwatch.detectors.alerts import SEVERITIES, Alert, AlertConfig, AlertKey, alert_key


@dataclass(frozen=True)
class Entry:
    """What the ledger remembers of one finding.

    :param id: the finding's stable id (16 hex characters)
    :param revision: revisions reported so far (the last one's number)
    :param score: score of the last revision
    :param severity_rank: index in :data:`SEVERITIES` of the last revision
    :param seen_ms: newest ``last_seen_ms`` of any report of it, sent or held
    """

    id: str
    revision: int
    score: float
    severity_rank: int
    seen_ms: int


def alert_id(key: AlertKey, period: int) -> str:
    """The stable id of a finding: its key and the forgetting period it was first reported in.

    Examples
    --------
    >>> alert_id(("beacon", "10.0.0.1", "1.2.3.4", 443, 6), 2_372)
    '7334b8ee97453181'
    """
    text = "|".join("" if part is None else str(part) for part in (*key, period))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class AlertLedger:
    """Decides which alerts are new findings, which are revisions, which are repeats.

    :param config: the rescore step and forgetting horizon. Default - ``AlertConfig()``
    :param max_entries: findings remembered at most; the stalest go first. Default - 100,000

    Examples
    --------
    >>> ledger = AlertLedger()
    >>> a = Alert("beacon", "medium", 0.6, "10.0.0.1", "1.2.3.4", 443, 6, 0, 3_600_000)
    >>> [(x.id, x.revision) for x in ledger.admit([a])]
    [('4610950c3db71f42', 1)]
    >>> ledger.admit([a])  # the same again: held back
    []
    >>> b = dataclasses.replace(a, severity="high", score=0.8, last_seen_ms=7_200_000)
    >>> [(x.id, x.revision, x.severity) for x in ledger.admit([b])]  # same finding, revision 2
    [('4610950c3db71f42', 2, 'high')]
    """

    def __init__(self, config: AlertConfig | None = None, *, max_entries: int = 100_000) -> None:
        self.config = config or AlertConfig()
        self.max_entries = max_entries
        self.entries: dict[AlertKey, Entry] = {}
        self.evicted = 0

    def __len__(self) -> int:
        return len(self.entries)

    def admit(self, alerts: Iterable[Alert]) -> list[Alert]:
        """The alerts to send, with ids and revisions; repeats are held back."""
        sent: list[Alert] = []
        for alert in sorted(alerts, key=lambda a: (a.last_seen_ms, -a.score, repr(alert_key(a)))):
            key = alert_key(alert)
            old = self.entries.get(key)
            rank = SEVERITIES.index(alert.severity)
            if old is not None and alert.last_seen_ms - old.seen_ms > self.config.forget_after_ms:
                old = None  # forgotten: a new finding
            if old is None:
                period = alert.first_seen_ms // self.config.forget_after_ms
                entry = Entry(alert_id(key, period), 1, alert.score, rank, 0)
            elif self._material(old, alert.score, rank):
                entry = Entry(old.id, old.revision + 1, alert.score, rank, old.seen_ms)
            else:
                self.entries[key] = dataclasses.replace(
                    old, seen_ms=max(old.seen_ms, alert.last_seen_ms)
                )
                continue
            self.entries[key] = dataclasses.replace(
                entry, seen_ms=max(entry.seen_ms, alert.last_seen_ms)
            )
            sent.append(dataclasses.replace(alert, id=entry.id, revision=entry.revision))
        self._forget()
        return sent

    def to_columns(self) -> dict[str, list[Any]]:
        """The ledger as plain lists (for a checkpoint): keys and entries, column-wise."""
        keys = list(self.entries)
        entries = [self.entries[key] for key in keys]
        return {
            "keys": [list(key) for key in keys],
            **{
                field.name: [getattr(entry, field.name) for entry in entries]
                for field in dataclasses.fields(Entry)
            },
            "evicted": [self.evicted],
        }

    @classmethod
    def from_columns(
        cls, columns: dict[str, list[Any]], config: AlertConfig | None = None, **kwargs: Any
    ) -> AlertLedger:
        """A ledger back from :meth:`to_columns` (validated: a bad checkpoint raises ValueError).

        Examples
        --------
        >>> ledger = AlertLedger()
        >>> _ = ledger.admit([Alert("exfil", "high", 0.8, "10.0.0.5", None, None, None, 0, 1)])
        >>> AlertLedger.from_columns(ledger.to_columns()).entries == ledger.entries
        True
        """
        ledger = cls(config, **kwargs)
        names = [field.name for field in dataclasses.fields(Entry)]
        try:
            rows = zip(columns["keys"], *(columns[name] for name in names), strict=True)
            for key, *values in rows:
                kind, sip, dip, dport, proto = key
                entry = Entry(
                    str(values[0]), int(values[1]), float(values[2]), int(values[3]), int(values[4])
                )
                if not 0 <= entry.severity_rank < len(SEVERITIES):
                    raise ValueError(f"severity rank {entry.severity_rank}")
                ledger.entries[(str(kind), sip, dip, dport, proto)] = entry
            ledger.evicted = int(columns["evicted"][0])
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"not an alert ledger: {exc!r}") from exc
        return ledger

    def _material(self, old: Entry, score: float, rank: int) -> bool:
        return rank > old.severity_rank or score >= old.score + self.config.rescore_step - 1e-12

    def _forget(self) -> None:
        """Drop findings unseen for the forgetting horizon, then the stalest over the cap."""
        if not self.entries:
            return
        newest_ms = max(entry.seen_ms for entry in self.entries.values())
        horizon_ms = newest_ms - self.config.forget_after_ms
        if any(entry.seen_ms < horizon_ms for entry in self.entries.values()):
            self.entries = {k: e for k, e in self.entries.items() if e.seen_ms >= horizon_ms}
        excess = len(self.entries) - self.max_entries
        if excess > 0:
            stalest = sorted(self.entries, key=lambda k: (self.entries[k].seen_ms, k))[:excess]
            for key in stalest:
                del self.entries[key]
            self.evicted += excess
