"""The whole site at one scoring instant, from the parts its partitions hold.

Three scorers weigh a host or a pair against everyone else: beacon prevalence
(how many source hosts contact a destination, of how many in all), the DNS peer
comparison (every host's bytes to port 53, and how many clients each resolver
has) and exfiltration's fit across the hour's senders. On Kafka, a partition
holds only the sources that hash to it, so its own counts are a sample: with
150 hosts on 8 partitions, a telemetry service polled by every host looks rare
and its polling becomes a beacon.

Every count here is of *source* hosts, and each source lives in exactly one
partition; so the site's counts are the sums of the partitions' counts, and its
columns their concatenation. :func:`merge_parts` gives exactly what one
partition holding every host computes, whatever the partitioning: the alerts of
``silkwatch detect`` and of the Kafka workers on the same file are the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from silkwatch.detectors.beacon import Population
from silkwatch.detectors.dns import DnsPopulation
from silkwatch.detectors.hosts import HourSenders
from silkwatch.detectors.hoststate import HostHours, hour_senders, sender_columns
from silkwatch.detectors.keyindex import KeyIndex
from silkwatch.detectors.pairfeatures import pair_features
from silkwatch.detectors.pairstate import PairState
from silkwatch.detectors.schema import HOUR_MS
from silkwatch.detectors.scoring import (
    as_dns_population,
    as_population,
    dns_counts,
    dns_pairs,
    source_counts,
)


@dataclass
class PopulationPart:
    """What one partition (or, merged, the site) knows of everyone at ``now_ms``.

    :param now_ms: the scoring instant: the end of the hour just closed
    :param senders: hosts sent anything in that hour (else nothing is scored at it)
    :param sender_hosts: the hour's client senders' key words, shape (n, 2) uint64
    :param sender_bytes: their client bytes (int64)
    :param sender_packets: their client packets (int64)
    :param destinations: destinations' key words over the beacon window, (m, 2) uint64
    :param destination_sources: source hosts that contacted each (int64)
    :param sources: source hosts that contacted anything
    :param resolvers: port-53 servers' key words over the DNS window, (k, 2) uint64
    :param resolver_clients: source hosts that queried each (int64)
    :param dns_host_bytes: each querying host's bytes to port 53 (float64)
    """

    now_ms: int
    senders: bool
    sender_hosts: np.ndarray
    sender_bytes: np.ndarray
    sender_packets: np.ndarray
    destinations: np.ndarray
    destination_sources: np.ndarray
    sources: int
    resolvers: np.ndarray
    resolver_clients: np.ndarray
    dns_host_bytes: np.ndarray

    @cached_property
    def beacon(self) -> Population:
        """The beacon scorer's prevalence population (one per site: every partition reads it)."""
        return as_population(self.destinations, self.destination_sources, self.sources)

    @cached_property
    def dns(self) -> DnsPopulation:
        """The DNS scorer's population."""
        return as_dns_population(self.resolvers, self.resolver_clients, self.dns_host_bytes)

    def hour_senders(self) -> HourSenders:
        """The exfiltration fit's senders of the hour ending at ``now_ms``."""
        return hour_senders(
            self.now_ms - HOUR_MS, self.sender_hosts, self.sender_bytes, self.sender_packets
        )


#: each array field of :class:`PopulationPart`: (dtype, dimensions)
PART_ARRAYS: dict[str, tuple[type, int]] = {
    "sender_hosts": (np.uint64, 2),
    "sender_bytes": (np.int64, 1),
    "sender_packets": (np.int64, 1),
    "destinations": (np.uint64, 2),
    "destination_sources": (np.int64, 1),
    "resolvers": (np.uint64, 2),
    "resolver_clients": (np.int64, 1),
    "dns_host_bytes": (np.float64, 1),
}


def population_part(
    pairs: PairState,
    sent: HostHours,
    *,
    now_ms: int,
    beacon_window_ms: int,
    dns_window_ms: int,
) -> PopulationPart:
    """This partition's part of the site's population at ``now_ms`` (an hour's end)."""
    hour_ms = now_ms - HOUR_MS
    words, client_bytes, client_packets = sender_columns(sent, hour_ms)
    destinations, sharing, sources = source_counts(
        pairs, since_ms=now_ms - beacon_window_ms, now_ms=now_ms
    )
    features = pair_features(
        pairs,
        np.flatnonzero(dns_pairs(pairs)),
        since_ms=now_ms - dns_window_ms,
        now_ms=now_ms,
        gates=(),
    )
    resolvers, clients, host_bytes = dns_counts(pairs, features)
    return PopulationPart(
        now_ms,
        bool((sent.hours == hour_ms).any()),
        words,
        client_bytes,
        client_packets,
        destinations.copy(),
        sharing,
        sources,
        resolvers.copy(),
        clients,
        host_bytes,
    )


def merge_parts(parts: Sequence[PopulationPart]) -> PopulationPart:
    """The site's population from its partitions' parts at one instant (sums and concatenations).

    >>> a = PopulationPart(7, True, np.array([[0, 1]], np.uint64), np.array([5]), np.array([1]),
    ...     np.array([[9, 9], [8, 8]], np.uint64), np.array([2, 1]), 3,
    ...     np.zeros((0, 2), np.uint64), np.zeros(0, np.int64), np.zeros(0))
    >>> b = PopulationPart(7, False, np.zeros((0, 2), np.uint64), np.zeros(0, np.int64),
    ...     np.zeros(0, np.int64), np.array([[8, 8]], np.uint64), np.array([4]), 4,
    ...     np.zeros((0, 2), np.uint64), np.zeros(0, np.int64), np.zeros(0))
    >>> site = merge_parts([a, b])
    >>> site.senders, site.sources, site.destinations.tolist(), site.destination_sources.tolist()
    (True, 7, [[9, 9], [8, 8]], [2, 5])
    """
    if len({part.now_ms for part in parts}) != 1:
        raise ValueError("parts of different instants")

    def summed(name: str, counts: str) -> tuple[np.ndarray, np.ndarray]:
        index = KeyIndex(2, seed=0)
        slots = index.slots(np.concatenate([getattr(p, name) for p in parts]))
        total = np.zeros(len(index), dtype=np.int64)
        np.add.at(total, slots, np.concatenate([getattr(p, counts) for p in parts]))
        return index.keys.copy(), total

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    destinations, sharing = summed("destinations", "destination_sources")
    resolvers, clients = summed("resolvers", "resolver_clients")
    return PopulationPart(
        parts[0].now_ms,
        any(p.senders for p in parts),
        joined("sender_hosts"),
        joined("sender_bytes"),
        joined("sender_packets"),
        destinations,
        sharing,
        sum(p.sources for p in parts),
        resolvers,
        clients,
        joined("dns_host_bytes"),
    )


def empty_part(now_ms: int) -> PopulationPart:
    """Nobody at ``now_ms``: what a partition with nothing to say contributes."""
    no_keys, none = np.zeros((0, 2), dtype=np.uint64), np.zeros(0, dtype=np.int64)
    return PopulationPart(
        now_ms, False, no_keys, none, none, no_keys, none, 0, no_keys, none, np.zeros(0)
    )
