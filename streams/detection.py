"""The detection engine: one partition's columnar state, scored as it changes.

One :class:`DetectionProcessor` per Kafka partition (one in the embedded
runner) holds that partition's hosts and pairs in columns
(:class:`silkwatch.detectors.hoststate.HostHours`,
:class:`silkwatch.detectors.pairstate.PairState`):
a batch is a few vectorised passes, and every cap is enforced on every batch.
The Faust agent and the embedded runner call exactly this class.

When scoring happens:

* **hour close** (event time, deterministic): when the partition's watermark
  passes an hour's end plus the allowed lateness, that hour's exfiltration and
  the pairs that changed are scored at the hour's end, on exactly the flows
  started before that instant (later ones wait in
  :attr:`DetectionState.deferred`, whatever batch brought them), then state past
  its windows is forgotten.
* **between closes** (live feeds): with ``score_interval_s`` set, at most that
  often in wall time the pairs that changed since the last look are scored at
  the watermark, and the open hour's hosts are scored for exfiltration as soon
  as one crosses the sending floor, so an alert does not wait for the hour.

**The site, not the partition.** Beacon prevalence, the DNS peer comparison and
the exfiltration fit weigh a host against every host. A processor that holds one
of several partitions is given a :class:`SiteExchange`: at each hour close it
publishes its :class:`~silkwatch.detectors.population.PopulationPart` and scores
that hour with the merged site once every partition has published it; until
then it *waits* (:attr:`DetectionProcessor.waiting`) and its caller holds its
next messages back, so it scores on the same flows as a single processor would.

Every alert passes the :class:`silkwatch.detectors.ledger.AlertLedger`: a finding keeps
its id, an update is a new revision of it. Flows stamped too far ahead of the
partition's event time are quarantined (:func:`silkwatch.streams.processing.observe`),
held back and re-admitted when time reaches them, so one bad clock cannot blind
the detector. The whole state round-trips through :mod:`silkwatch.streams.checkpoint`
without pickle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from silkwatch.detectors.alerts import Alert, rate
from silkwatch.detectors.config import DetectorsConfig
from silkwatch.detectors.exfil import score_exfil
from silkwatch.detectors.hoststate import HostHours, exfil_inputs
from silkwatch.detectors.keyindex import KeyIndex
from silkwatch.detectors.ledger import AlertLedger
from silkwatch.detectors.pairstate import PairState
from silkwatch.detectors.population import PopulationPart, population_part
from silkwatch.detectors.schema import FlowBatch, empty_batch
from silkwatch.detectors.scoring import dns_pairs, score_pairs
from silkwatch.streams.processing import (
    HOUR_MS,
    Progress,
    StreamConfig,
    believed,
    close_reach,
    final_horizon,
    observe,
)

logger = logging.getLogger(__name__)


@dataclass
class DetectionState:
    """Everything one partition's detection knows; what a checkpoint saves.

    :param offset: source offset of the last message applied (-1: none yet)
    :param seq: batches applied (stamps the pairs each touched)
    :param closed_seq: ``seq`` at the last hour close (pairs touched after it are rescored)
    :param looked_seq: ``seq`` at the last scoring of any kind
    :param quarantine: flows held back as too far ahead of event time
    :param quarantined_copies: received copies held back the same way
    :param deferred: own flows past the reach of the next hour close, applied after it
        (:meth:`DetectionProcessor.process`: a close sees the same flows however the
        input was batched)
    :param deferred_copies: received copies deferred the same way
    """

    pairs: PairState
    sent: HostHours
    received: HostHours
    ledger: AlertLedger
    progress: Progress = field(default_factory=Progress)
    offset: int = -1
    seq: int = 0
    closed_seq: int = 0
    looked_seq: int = 0
    quarantine: list[FlowBatch] = field(default_factory=list)
    quarantined_copies: list[FlowBatch] = field(default_factory=list)
    deferred: list[FlowBatch] = field(default_factory=list)
    deferred_copies: list[FlowBatch] = field(default_factory=list)
    shed_host_hours: int = 0
    scored_until_ms: int = -(2**62)  # the event time of the last hour-close scoring
    #: the hour close in progress, when it waits for the site (closed up to the watermark)
    closing_until_ms: int | None = None

    @classmethod
    def empty(cls, detectors: DetectorsConfig) -> DetectionState:
        """A partition that has seen nothing."""
        return cls(
            PairState(detectors.pairs),
            HostHours("sent"),
            HostHours("received"),
            AlertLedger(detectors.alerts),
        )

    @property
    def nbytes(self) -> int:
        """Memory held by the columns (for the state-size metric)."""
        held = sum(b.nbytes for b in self.held_flows())
        return self.pairs.nbytes + self.sent.nbytes + self.received.nbytes + held

    def held_flows(self) -> list[FlowBatch]:
        """Flows held and not applied yet: quarantined, and deferred past an hour close."""
        return self.quarantine + self.quarantined_copies + self.deferred + self.deferred_copies


class SiteExchange(Protocol):
    """Where partitions' population parts meet (in memory, or a Kafka topic)."""

    def publish(self, partition: int, part: PopulationPart) -> None:
        """This partition's part at ``part.now_ms``; it has reached that instant."""

    def reached(self, partition: int, until_ms: int) -> None:
        """This partition has published every part it will for instants up to ``until_ms``."""

    def site(self, now_ms: int) -> PopulationPart | None:
        """The merged parts at ``now_ms`` once every partition reached it, else None."""

    def latest(self) -> PopulationPart | None:
        """The newest merged site known (for scoring between hour closes)."""


class DetectionProcessor:
    """Applies one partition's flow batches to its state; scores what changed.

    :param partition: the Kafka partition this processor owns (0 when embedded)
    :param config: event-time settings shared with the bins side
    :param detectors: every detector's thresholds
    :param state: a restored state (a checkpoint). Default - empty
    :param score_interval_s: score changed pairs and the open hour at most this
        often, wall time, between hour closes. Default - None (only at hour
        close: a finite file gives the same alerts however it is batched)
    :param clock: wall clock in seconds (tests pass their own). Default - ``time.monotonic``
    :param exchange: the site's parts, when this processor holds one of several
        partitions. Default - None (it holds every host: the site is its own)
    """

    def __init__(
        self,
        partition: int,
        config: StreamConfig,
        detectors: DetectorsConfig,
        *,
        state: DetectionState | None = None,
        score_interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        exchange: SiteExchange | None = None,
    ) -> None:
        self.partition = partition
        self.config = config
        self.detectors = detectors
        self.state = state or DetectionState.empty(detectors)
        self.score_interval_s = score_interval_s
        self.clock = clock
        self.exchange = exchange
        self._last_look_s = clock()
        #: parts published up to this instant (not checkpointed: a restart publishes again)
        self._published_until_ms = -(2**62)

    def process(
        self,
        batch: FlowBatch,
        offset: int,
        *,
        wall_ms: int | None = None,
        received_copy: bool = False,
    ) -> list[Alert]:
        """Apply the message at ``offset``; return the alerts (new findings and revisions).

        :param wall_ms: the wall clock (ms) on a live feed, capping how far ahead
            of it a flow may be stamped. Default - None (replay: event time only)
        :param received_copy: the flows are copies sent here for their destinations
            (``silkwatch.connectors.kafka.frame.RECEIVED_COPY``): they count on their
            destinations' received side and stand as the other side of this
            partition's connections, and are scored in their sources' partitions.
            They come just before the partition's own flows of the same batch, so
            they do not move event time nor close hours: the own frame after them
            does. Default - False

        An hour is scored on exactly the flows that started before its end plus
        the allowed lateness (:func:`~silkwatch.streams.processing.close_reach`),
        as if they came one at a time in time order: a flow past that reach is
        deferred until the hour has closed. A pair keeps only its newest flows, so
        applying a whole batch before closing the hours it spans would let the
        batch's later flows push out the ones an earlier hour is judged on, and the
        alerts would depend on how the input was cut into batches or messages.
        """
        state = self.state
        if offset <= state.offset:
            return []  # applied before a restart
        if self.waiting:
            raise RuntimeError(f"partition {self.partition} waits for the site: hold its messages")
        if received_copy:
            trusted = believed(state.progress, batch, self.config, wall_ms=wall_ms)
            self._hold(batch[~trusted], state.quarantined_copies)
            self._admit(_rows(batch, trusted), copies=True)
            state.offset = offset
            return []
        until_ms, trusted = observe(state.progress, batch, self.config, wall_ms=wall_ms)
        self._hold(batch[~trusted], state.quarantine)
        self._admit(_rows(batch, trusted))
        own_due, copies_due = self._readmit(wall_ms)
        self._admit(own_due)
        self._admit(copies_due, copies=True)
        state.offset = offset
        alerts = self._close(until_ms)
        if not alerts and self._due():
            alerts = self._look()
        return alerts

    @property
    def waiting(self) -> bool:
        """An hour close waits for other partitions' parts (hold this one's next messages)."""
        closing = self.state.closing_until_ms
        return closing is not None and not self._site_ready()

    @property
    def waiting_for_ms(self) -> int | None:
        """The instant whose site a waiting close needs (None when not waiting)."""
        closed = self.state.progress.closed_until_ms
        return closed + self.config.bin_ms if self.waiting and closed is not None else None

    def resume(self) -> list[Alert]:
        """Go on with an hour close that waited, as far as the site allows."""
        closing = self.state.closing_until_ms
        return [] if closing is None else self._close(closing)

    def tick(self) -> list[Alert]:
        """Between messages: score what changed if ``score_interval_s`` has passed.

        The worker calls this from a timer, so the flow that decides a finding is
        scored within the interval even when no message follows it.
        """
        return self._look() if self._due() else []

    def flush(self) -> list[Alert]:
        """Close every hour up to the watermark (end of a finite input, or an idle feed)."""
        progress = self.state.progress
        if progress.watermark_ms <= -(2**61):
            return []
        horizon_ms, closing_ms = final_horizon(progress, self.config), self.state.closing_until_ms
        return self._close(horizon_ms if closing_ms is None else max(horizon_ms, closing_ms))

    @property
    def deferred(self) -> int:
        """Flows held until an hour close lets them in (their batch reached past it)."""
        state = self.state
        return sum(len(b) for b in state.deferred + state.deferred_copies)

    @property
    def quarantined(self) -> int:
        """Flows held back now as stamped too far ahead of event time."""
        state = self.state
        return sum(len(b) for b in state.quarantine + state.quarantined_copies)

    def _apply(self, flows: FlowBatch, *, copies: bool = False) -> None:
        if len(flows) == 0:
            return
        state = self.state
        state.seq += 1
        state.pairs.update(flows, seq=state.seq, own=not copies)
        if not copies:  # a copy's source sends in its own partition
            state.sent.update(flows)
        state.received.update(flows)
        state.pairs.shed()
        for hosts in (state.sent, state.received):
            excess = len(hosts) - self.detectors.pairs.max_host_hours
            if excess > 0:  # the oldest hours go first
                order = np.argsort(hosts.hours, kind="stable")
                keep = np.ones(len(hosts), dtype=bool)
                keep[order[:excess]] = False
                hosts.keep(keep)
                state.shed_host_hours += excess

    def _admit(self, flows: FlowBatch, *, copies: bool = False) -> None:
        """Apply the flows within the reach of the hours closed so far; defer the rest."""
        if len(flows) == 0:
            return
        closed_ms = self.state.progress.closed_until_ms
        if closed_ms is None:
            now = np.zeros(len(flows), dtype=bool)
        else:
            now = flows["stime_ms"] < close_reach(closed_ms, self.config)
        self._apply(_rows(flows, now), copies=copies)
        if now.all():
            return
        name = "deferred_copies" if copies else "deferred"
        later, held = flows[~now], getattr(self.state, name)
        held = np.concatenate([*held, later]) if held else later
        # one array in time order (stable: equal starts keep their arrival order); a
        # sorted feed adds flows in order, and the held flows need no sorting then
        start = held["stime_ms"]
        if not (start[1:] >= start[:-1]).all():
            held = held[np.argsort(start, kind="stable")]
        # copies wait for this partition's own flows, which may have stopped (hosts
        # that only receive): past the quarantine's cap the oldest go in at once
        over = len(held) - self.config.max_quarantined_flows if copies else 0
        if over > 0:
            self._apply(held[:over], copies=True)
            held = held[over:]
        setattr(self.state, name, [held])

    def _apply_deferred(self, closed_ms: int) -> None:
        """Apply the deferred flows within reach once every hour before ``closed_ms`` closed."""
        state, reach_ms = self.state, close_reach(closed_ms, self.config)
        for name, copies in (("deferred_copies", True), ("deferred", False)):
            if not getattr(state, name):
                continue
            [held] = getattr(state, name)
            due = int(np.searchsorted(held["stime_ms"], reach_ms, side="left"))
            setattr(state, name, [held[due:]] if due < len(held) else [])
            self._apply(held[:due], copies=copies)

    def _hold(self, flows: FlowBatch, held: list[FlowBatch]) -> None:
        """Quarantine flows stamped too far ahead; the oldest held go when over the cap."""
        if len(flows) == 0:
            return
        state = self.state
        logger.warning(
            "quarantined flows stamped ahead of event time partition=%d flows=%d "
            "watermark_ms=%d newest_ms=%d",
            self.partition,
            len(flows),
            state.progress.watermark_ms,
            int(flows["stime_ms"].max()),
        )
        held.append(flows.copy())
        over = self.quarantined - self.config.max_quarantined_flows
        while over > 0 and held:
            first = held[0]
            if len(first) <= over:
                held.pop(0)
                over -= len(first)
                state.progress.dropped_future_flows += len(first)
            else:
                held[0] = first[over:]
                state.progress.dropped_future_flows += over
                over = 0

    def _readmit(self, wall_ms: int | None) -> tuple[FlowBatch, FlowBatch]:
        """Held flows that event time has now reached: own flows, and received copies."""
        state = self.state
        ceiling = state.progress.watermark_ms + self.config.future_tolerance_ms
        if wall_ms is not None:
            ceiling = min(ceiling, wall_ms + self.config.future_tolerance_ms)
        due = []
        for name in ("quarantine", "quarantined_copies"):
            if not getattr(state, name):
                due.append(empty_batch())
                continue
            held = np.concatenate(getattr(state, name))
            ready = held["stime_ms"] <= ceiling
            setattr(state, name, [held[~ready]] if (~ready).any() else [])
            due.append(held[ready])
        return due[0], due[1]

    def _due(self) -> bool:
        if self.score_interval_s is None:
            return False
        now_s = self.clock()
        if now_s - self._last_look_s < self.score_interval_s:
            return False
        self._last_look_s = now_s
        return True

    def _close(self, until_ms: int) -> list[Alert]:
        """Score every hour in [closed_until, until_ms), then forget what fell out of windows.

        With an exchange, each hour waits for the site: the close stops there (the
        hours before it stay closed) and :meth:`resume` goes on with it.
        """
        state, progress = self.state, self.state.progress
        start_ms = progress.closed_until_ms if progress.closed_until_ms is not None else -(2**62)
        if until_ms <= start_ms:
            return []
        state.closing_until_ms = until_ms
        found: list[Alert] = []
        for hour_ms in self._hours(start_ms, until_ms):
            self._apply_deferred(hour_ms)
            now_ms = hour_ms + self.config.bin_ms
            site = self._site(now_ms)
            if self.exchange is not None:
                if site is None:  # another partition has not closed this hour yet
                    progress.closed_until_ms = hour_ms
                    return state.ledger.admit(rate(found, self.detectors.alerts))
                if not site.senders:  # nobody sent in the hour: not a scoring instant
                    continue
            found += self._score_hosts(hour_ms, site)
            # pairs a batch touched, and pairs with flows after the last close's scoring
            fresh = (state.pairs.touched > state.closed_seq) | (
                state.pairs.last_ms > state.scored_until_ms
            )
            found += self._score_pairs(
                now_ms=now_ms, chosen=fresh, changed_after_ms=state.scored_until_ms, site=site
            )
            state.scored_until_ms = now_ms
            state.closed_seq = state.seq
        if self.exchange is not None:
            self.exchange.reached(self.partition, until_ms)
        progress.closed_until_ms = until_ms
        state.closing_until_ms = None
        self._apply_deferred(until_ms)
        state.closed_seq = state.looked_seq = state.seq
        self._expire(until_ms)
        return state.ledger.admit(rate(found, self.detectors.alerts))

    def _hours(self, start_ms: int, until_ms: int) -> list[int]:
        """The hours an hour close visits: those with a sender here, or with an
        exchange every hour from this partition's first (another's may have senders)."""
        state = self.state
        hours = np.concatenate(
            [state.sent.hours, *(b["stime_ms"] - b["stime_ms"] % HOUR_MS for b in state.deferred)]
        )
        if self.exchange is None:
            hours = np.unique(hours)
            return hours[(hours >= start_ms) & (hours < until_ms)].tolist()
        first_ms = max(start_ms, int(hours.min()) if len(hours) else until_ms)
        return list(range(first_ms, until_ms, self.config.bin_ms))

    def _site(self, now_ms: int) -> PopulationPart | None:
        """The site at ``now_ms`` (None: not everyone is there yet, or no exchange)."""
        if self.exchange is None:
            return None
        if self._published_until_ms < now_ms:
            d = self.detectors
            part = population_part(
                self.state.pairs,
                self.state.sent,
                now_ms=now_ms,
                beacon_window_ms=d.beacon.window_ms,
                dns_window_ms=d.dns.window_ms,
            )
            self.exchange.publish(self.partition, part)
            self._published_until_ms = now_ms
        return self.exchange.site(now_ms)

    def _site_ready(self) -> bool:
        """The waiting close's next hour has its site (or there is no exchange)."""
        closed = self.state.progress.closed_until_ms
        if self.exchange is None or closed is None:
            return True
        return self._site(closed + self.config.bin_ms) is not None

    def _look(self) -> list[Alert]:
        """Between closes: the pairs changed since the last look, and the open hour's hosts."""
        state = self.state
        if state.seq == state.looked_seq:
            return []
        watermark = state.progress.watermark_ms
        site = self.exchange.latest() if self.exchange is not None else None
        chosen = state.pairs.touched > state.looked_seq
        found = self._score_pairs(now_ms=watermark, chosen=chosen, site=site)
        found += self._score_hosts(watermark - watermark % HOUR_MS)
        state.looked_seq = state.seq
        return state.ledger.admit(rate(found, self.detectors.alerts))

    def _score_hosts(self, hour_ms: int, site: PopulationPart | None = None) -> list[Alert]:
        """Exfiltration in the hour (fitted across the site's senders of it, when given)."""
        d = self.detectors
        inputs = exfil_inputs(
            self.state.sent,
            self.state.received,
            self.state.pairs,
            hour_ms=hour_ms,
            baseline_hours=d.exfil.baseline_hours,
            min_sent_bytes=d.exfil.min_sent_bytes,
            max_destinations=d.exfil.max_destinations,
            senders=site.hour_senders() if site is not None else None,
        )
        if inputs is None:  # no host sent enough in the hour to be scored
            return []
        sent, received = inputs
        return score_exfil(sent, received, hour_start_ms=hour_ms, config=d.exfil)

    def _score_pairs(
        self,
        *,
        now_ms: int,
        chosen: np.ndarray,
        changed_after_ms: int | None = None,
        site: PopulationPart | None = None,
    ) -> list[Alert]:
        """Every pair scorer over the ``chosen`` pairs (and all DNS pairs, if one is chosen).

        :param changed_after_ms: at an hour close, the previous close's instant: pairs
            without a flow since were scored then, on the same flows
        :param site: the whole site's populations (else counted from this partition)
        """
        pairs = self.state.pairs
        pairs.compact()
        # received copies are scored in their sources' partitions
        live = pairs.own & (pairs.counts > 0) & (pairs.first_ms <= now_ms)
        chosen = chosen[: len(pairs)] & live
        if not chosen.any():
            return []
        # scorers weigh a source's pairs together (fan-out, DNS per host): all of them come,
        # with the unchanged pairs of those sources that a prefilter kept when last scored
        rows = np.flatnonzero(chosen | (live & pairs.candidate[: len(pairs)]))
        sources = KeyIndex(2, seed=0)
        owner = sources.slots(pairs.index.keys[rows, :2])
        chosen_source = np.zeros(len(sources), dtype=bool)
        chosen_source[owner[chosen[rows]]] = True
        chosen[rows] |= chosen_source[owner] & pairs.candidate[rows]
        dns = dns_pairs(pairs)
        if (chosen & dns).any():
            chosen |= dns  # resolvers are told by all clients
        return score_pairs(
            pairs,
            np.flatnonzero(chosen),
            now_ms=now_ms,
            detectors=self.detectors,
            changed_after_ms=changed_after_ms,
            populations=None if site is None else {"beacon": site.beacon, "dns": site.dns},
        )

    def _expire(self, closed_ms: int) -> None:
        """Forget host hours past the baseline and pairs idle for a whole window.

        Measured from the hours closed (up to ``closed_ms``), not from the watermark
        (which a batch's last flow sets): what is forgotten does not depend on the
        batching either.
        """
        state = self.state
        keep_hours = self.detectors.exfil.baseline_hours + 1
        before_ms = closed_ms - closed_ms % HOUR_MS - keep_hours * HOUR_MS
        state.sent.expire(before_ms)
        state.received.expire(before_ms)
        state.pairs.expire(closed_ms + self.config.bin_ms)  # the next close's instant


def _rows(flows: FlowBatch, mask: np.ndarray) -> FlowBatch:
    """The flows where ``mask`` holds, without copying a batch that is kept whole."""
    return flows if mask.all() else flows[mask]
