"""Sampling rates in force, per (exporter, domain, sampler id).

Rates arrive three ways: the NetFlow v5 header (``sampling_interval``), options
data records (v9 ``SAMPLING_INTERVAL``/``FLOW_SAMPLER_RANDOM_INTERVAL`` with a
``FLOW_SAMPLER_ID``; IPFIX ``samplingInterval``, ``samplerRandomInterval``,
``samplingPacketInterval``/``Space``, ``samplingSize``/``Population`` with a
``samplerId`` or ``selectorId``), or a ``samplingInterval`` inside the data record
itself. A data record with no sampler id takes the rate of sampler 0, the
exporter's default.
"""

from __future__ import annotations

from collections import OrderedDict

#: IPFIX/v9 element ids read from options data
SAMPLER_IDS = (48, 302)  # samplerId / FLOW_SAMPLER_ID, selectorId
INTERVAL = 34  # samplingInterval / SAMPLING_INTERVAL
RANDOM_INTERVAL = 50  # samplerRandomInterval / FLOW_SAMPLER_RANDOM_INTERVAL
PACKET_INTERVAL, PACKET_SPACE = 305, 306
SIZE, POPULATION = 309, 310
#: rates are 32-bit in every exporter we know; larger values are damage, kept in range
MAX_RATE = 0xFFFF_FFFF
SAMPLING_ELEMENTS = frozenset({INTERVAL, RANDOM_INTERVAL, PACKET_INTERVAL, SIZE, POPULATION})


def rate_of(values: dict[int, int]) -> int | None:
    """The 1-in-N rate an options record states, if it states one.

    >>> rate_of({48: 1, 50: 100}), rate_of({305: 1, 306: 99}), rate_of({309: 1, 310: 64})
    (100, 100, 64)
    >>> rate_of({48: 1}) is None
    True
    """
    for key in (INTERVAL, RANDOM_INTERVAL):
        if values.get(key):
            return values[key]
    if values.get(PACKET_INTERVAL):
        return (values[PACKET_INTERVAL] + values.get(PACKET_SPACE, 0)) // values[PACKET_INTERVAL]
    if values.get(SIZE) and values.get(POPULATION):
        return values[POPULATION] // values[SIZE]
    return None


def sampler_of(values: dict[int, int]) -> int:
    """The sampler an options record is about (0: the exporter's default)."""
    return next((values[key] for key in SAMPLER_IDS if key in values), 0)


class SamplingTable:
    """Bounded map (exporter, domain, sampler id) → rate (1 = unsampled).

    >>> table = SamplingTable()
    >>> table.set(("192.0.2.1", 0, 3), 100)
    >>> table.rate(("192.0.2.1", 0, 3)), table.rate(("192.0.2.1", 0, 4))
    (100, 1)
    """

    def __init__(self, max_entries: int = 65_536) -> None:
        self.max_entries = max_entries
        self.rates: OrderedDict[tuple[str, int, int], int] = OrderedDict()

    def set(self, key: tuple[str, int, int], rate: int) -> None:
        """Record the rate now in force for one sampler."""
        self.rates.pop(key, None)
        self.rates[key] = min(max(1, int(rate)), MAX_RATE)
        while len(self.rates) > self.max_entries:
            self.rates.popitem(last=False)

    def rate(self, key: tuple[str, int, int]) -> int:
        """The rate of one sampler, falling back to the exporter's default, else 1."""
        found = self.rates.get(key)
        if found is None and key[2] != 0:
            found = self.rates.get((key[0], key[1], 0))
        return found or 1
