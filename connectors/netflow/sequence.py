"""Loss from sequence numbers, by each protocol's own definition.

* NetFlow v5: the header's ``flow_sequence`` counts *flows* sent before this
  packet, per engine (type, id): next expected = sequence + records in the packet.
* NetFlow v9: ``package_sequence`` counts *export packets* per source id
  (RFC 3954 §5.1): next expected = sequence + 1; a gap is lost packets, not flows.
* IPFIX: ``sequence`` counts *data records* sent before this message per
  observation domain (RFC 7011 §3.1): next expected = sequence + data records here.

All are modulo 2^32. A jump backwards of less than half the range is a late
(reordered) datagram, not loss; anything else re-synchronises without blame, as
does an exporter restart.

Some IPFIX exporters count differently: softflowd 1.1 sends the number of flow
records sent *including* the message's own (and not its options records). For
IPFIX the tracker keeps both readings until one fits the stream exactly and the
other does not, then keeps to that one; until then it reports loss only where
both agree, so such an exporter is not blamed for loss it did not have.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

_WRAP = 1 << 32
_HALF = 1 << 31
RFC, INCLUSIVE = "rfc", "inclusive"


class _State(NamedTuple):
    sequence: int
    advance: int | None  # what the message added by the RFC's reading (None: unknown)
    mode: str | None  # RFC or INCLUSIVE once the stream showed which; None until then


class SequenceTracker:
    """Sequence state per (version, exporter, domain), bounded (LRU).

    Examples
    --------
    >>> tracker = SequenceTracker()
    >>> tracker.update((10, "192.0.2.1", 0), 100, 30)  # first message: nothing to compare
    0
    >>> tracker.update((10, "192.0.2.1", 0), 130, 5)   # as expected
    0
    >>> tracker.update((10, "192.0.2.1", 0), 150, 5)   # 15 records never arrived
    15
    >>> tracker.update((10, "192.0.2.1", 0), 140, 5)   # a late datagram: not loss
    0

    softflowd's reading (the sequence already counts the message's own flows):

    >>> [tracker.update((10, "192.0.2.2", 0), s, n + 1, n) for s, n in
    ...  [(24, 24), (56, 32), (89, 33), (121, 32), (163, 32)]]
    [0, 0, 0, 0, 10]
    """

    def __init__(self, max_keys: int = 65_536) -> None:
        self.max_keys = max_keys
        self._state: OrderedDict[tuple, _State] = OrderedDict()

    def update(
        self, key: tuple, sequence: int, advance: int | None, flows_here: int | None = None
    ) -> int:
        """Record one message; return how many units went missing before it.

        ``advance`` is what this message adds to the count by the protocol's
        definition (records, or 1 packet); None when it is unknown (a data set
        whose template is missing), which makes the next message re-synchronise.
        ``flows_here`` (IPFIX only) is the message's flow records without options
        records, for the inclusive reading.
        """
        state = self._state.pop(key, None)
        lost = 0
        mode = state.mode if state else None
        if state is not None and state.advance is not None:
            gaps = {RFC: (sequence - state.sequence - state.advance) % _WRAP}
            if flows_here is not None:
                gaps[INCLUSIVE] = (sequence - state.sequence - flows_here) % _WRAP
            if mode is None and len(gaps) == 2 and 0 in gaps.values():
                # one reading fits exactly, the other would claim loss: that settles it
                other = max(gaps.values())
                if 0 < other < _HALF:
                    mode = RFC if gaps[RFC] == 0 else INCLUSIVE
            if mode is not None and mode not in gaps:  # this message's flows are unknown
                gap = 0
            elif mode is not None:
                gap = gaps[mode]
            else:
                gap = gaps[RFC] if len(set(gaps.values())) == 1 else 0
            if gap >= _HALF:  # late or duplicate: keep the furthest point reached
                self._state[key] = state._replace(mode=mode)
                return 0
            lost = gap
        self._state[key] = _State(sequence, advance, mode)
        while len(self._state) > self.max_keys:
            self._state.popitem(last=False)
        return lost
