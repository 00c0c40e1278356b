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
"""

from __future__ import annotations

from collections import OrderedDict

_WRAP = 1 << 32
_HALF = 1 << 31


class SequenceTracker:
    """Next expected sequence number per (version, exporter, domain), bounded (LRU).

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
    """

    def __init__(self, max_keys: int = 65_536) -> None:
        self.max_keys = max_keys
        self._expected: OrderedDict[tuple, int | None] = OrderedDict()

    def update(self, key: tuple, sequence: int, advance: int | None) -> int:
        """Record one message; return how many units went missing before it.

        ``advance`` is what this message adds to the count (records or 1); None
        when it is unknown (a data set whose template is missing), which makes
        the next message re-synchronise instead of guessing.
        """
        expected = self._expected.pop(key, None)
        lost = 0
        if expected is not None:
            gap = (sequence - expected) % _WRAP
            if 0 < gap < _HALF:
                lost = gap
            elif gap != 0:  # late or duplicate: keep the furthest point reached
                self._expected[key] = expected
                return 0
        self._expected[key] = None if advance is None else (sequence + advance) % _WRAP
        while len(self._expected) > self.max_keys:
            self._expected.popitem(last=False)
        return lost
