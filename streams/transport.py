"""Faust's Kafka transport, with fetches that do not sit idle at the broker.

faust-streaming 0.15 builds its aiokafka consumer with ``fetch_max_wait_ms=1500``
hard-coded. aiokafka keeps one fetch request in flight per broker and leaves
out the partitions whose records are still buffered; when the partitions it
does ask for have nothing new, the broker holds the request for the full
1.5 s, and the partitions drained meanwhile wait with it. A worker draining a
pre-filled topic stalled ~1.5 s every few seconds: 2 M flows took 4.4 s, and
2.6 s with 100 ms (``bench/bench_stream_e2e.py``). An idle worker now sends ten
small fetches a second instead of one.

The consumer also lets the app cap what it commits (``App.commit_ceiling``), and
a timer may write tables in the name of a partition's last event (:func:`acting_for`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import faust
from aiokafka import AIOKafkaConsumer
from faust import streams as faust_streams
from faust.transport.drivers import aiokafka as driver
from faust.types import TP, TransportT

FETCH_MAX_WAIT_MS = 100


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: TransportT) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when its fetcher starts
        return consumer


class _Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Seek every stream partition to its committed offset, or to its start without one.

        aiokafka's ``seek_to_committed`` moves only partitions committed past
        offset 0 and leaves the others where its fetcher stands. Faust drops the
        records of a fetch that returns while a rebalance is under way, so a
        partition with nothing committed yet could lose them for good: a worker
        that joined while a file was being published sat idle on partitions with
        messages left (lag 5-6, nothing read, until a restart). Reading such a
        partition from its start instead is what ``auto_offset_reset=earliest``
        means, and the roles skip what they applied before (offset-stamped
        state). Changelog partitions are left to Faust's recovery.
        """
        committed = await super().seek_to_committed()
        fresh = [
            tp for tp, offset in committed.items() if not offset and not self._is_changelog_tp(tp)
        ]
        if fresh:
            await self._thread.seek_to_beginning(*fresh)
        return committed

    def _new_offset(self, tp: TP) -> int | None:
        """Faust's next offset to commit, held at the app's ceiling for the partition."""
        offset = super()._new_offset(tp)
        ceiling = self.app.commit_ceiling
        limit = None if ceiling is None or offset is None else ceiling(tp)
        return offset if limit is None else min(offset, limit)


class _Transport(driver.Transport):
    Consumer = _Consumer


class App(faust.App):
    """A Faust app whose consumer fetches promptly (see the module docstring).

    ``commit_ceiling(tp)``, when set, caps the offset the consumer commits on a
    partition (None: no cap): the detect role commits only what its durable
    checkpoints hold (:mod:`silkwatch.streams.detectrole`).
    """

    commit_ceiling: Callable[[TP], int | None] | None = None

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)


@contextmanager
def acting_for(event: faust.EventT) -> Iterator[None]:
    """Table writes outside an agent, as if made while processing ``event``.

    Faust sends a table's changelog record to the partition of the event being
    processed and refuses a write when there is none, as in a timer. Closing an
    idle partition's last hour is such a write (a feed that paused, the end of a
    published file), so the timer acts in the name of the partition's newest
    event: the record goes to that partition's changelog, as the agent's would.
    """
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)
