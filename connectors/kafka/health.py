"""Whether the broker is there, told once per change instead of once per retry.

The Kafka clients retry a lost broker on their own, and log every attempt: a
worker whose broker stopped wrote about 70 lines a second (aiokafka's "Unable
connect to node", "Unable to update metadata", "Failed fetch messages", ...).
What an operator needs is the state: one line when the broker goes, one when
it answers again (with how many client errors were held back), and a metric.

- :class:`BrokerOutage` keeps that state and writes those lines; the publisher
  uses it directly while it waits for acknowledgements.
- :class:`BrokerWatch` is a ``logging.Filter`` on the Kafka clients' loggers
  (a worker installs it): their first connection error marks the broker lost,
  everything they log until it answers again is counted, not shown.
- :func:`answers` asks the broker for its API versions: an open port is not yet
  a broker that serves; :func:`wait_for_broker` waits until it does.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

logger = logging.getLogger(__name__)

#: loggers of the Kafka clients (aiokafka under Faust, kafka-python) and Faust's driver
CLIENT_LOGGERS = ("aiokafka", "kafka", "faust.transport")

_PREFIXES = tuple(f"{name}." for name in CLIENT_LOGGERS)

#: what those clients log when they cannot reach a broker
CONNECTION_ERRORS = (
    "Unable connect to node",
    "Unable to update metadata",
    "NodeNotReadyError",
    "KafkaConnectionError",
    "Connect call failed",
    "Connection refused",
)

#: an ApiVersions request, version 0, correlation id 1, client id "silkwatch"
_API_VERSIONS = struct.pack(">hhih9s", 18, 0, 1, 9, b"silkwatch")


def answers(bootstrap: str, *, timeout_s: float = 2.0) -> bool:
    """True when a broker of ``bootstrap`` (``host:port[,host:port]``) answers ApiVersions.

    Examples
    --------
    >>> answers("127.0.0.1:1", timeout_s=0.5)  # nothing listens on port 1
    False
    """
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s) as sock:
                sock.sendall(struct.pack(">i", len(_API_VERSIONS)) + _API_VERSIONS)
                reply = sock.recv(10)  # size, correlation id, error code
        except (OSError, ValueError):
            continue
        if len(reply) >= 10 and struct.unpack(">iih", reply[:10])[1:] == (1, 0):
            return True
    return False


class BrokerOutage:
    """Reachable or not, one broker: a log line per change, reminders while it is down.

    :param bootstrap: ``host:port[,host:port]``, named in every line
    :param remind_s: least seconds between two :meth:`remind` lines. Default - 15
    :param clock: seconds, monotonic. Default - ``time.monotonic``

    Examples
    --------
    >>> now = [0.0]
    >>> outage = BrokerOutage("127.0.0.1:9092", clock=lambda: now[0])
    >>> outage.lost("no acknowledgement for 5 s"), outage.lost("again")
    (True, False)
    >>> now[0] = 20.0
    >>> outage.down_s
    20.0
    >>> outage.back(), outage.back(), outage.down_s
    (True, False, 0.0)
    """

    def __init__(
        self, bootstrap: str, *, remind_s: float = 15.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.bootstrap = bootstrap
        self.remind_s = remind_s
        self._clock = clock
        self.down_since: float | None = None
        self._reminded_s = 0.0
        self.held_back = 0  # client errors and warnings not shown while it was down

    @property
    def down_s(self) -> float:
        """Seconds since the broker was marked lost (0 while it is up)."""
        return 0.0 if self.down_since is None else self._clock() - self.down_since

    def lost(self, why: str) -> bool:
        """Mark the broker lost; logs and returns True only if it was up."""
        if self.down_since is not None:
            return False
        self.down_since = self._reminded_s = self._clock()
        logger.warning("kafka %s: broker lost (%s)", self.bootstrap, why)
        return True

    def remind(self, detail: str) -> None:
        """While down, one line at most every ``remind_s``: how long, and ``detail``."""
        if self.down_since is None or self._clock() - self._reminded_s < self.remind_s:
            return
        self._reminded_s = self._clock()
        logger.warning(
            "kafka %s: still unreachable after %.0f s; %s", self.bootstrap, self.down_s, detail
        )

    def back(self) -> bool:
        """Mark the broker back; logs and returns True only if it was lost."""
        if self.down_since is None:
            return False
        held = f" ({self.held_back:,} client errors held back)" if self.held_back else ""
        logger.warning("kafka %s: broker back after %.0f s%s", self.bootstrap, self.down_s, held)
        self.down_since, self.held_back = None, 0
        return True


def wait_for_broker(bootstrap: str, *, poll_s: float = 1.0) -> None:
    """Return once ``bootstrap`` answers; a broker that does not is waited for, in two lines.

    A worker started before its broker (a compose stack, a reboot) waits for it,
    saying so once and once more when it answers, backing off from ``poll_s`` to 5 s.
    """
    outage = BrokerOutage(bootstrap)
    while not answers(bootstrap):
        outage.lost("no answer at start; waiting for it")
        time.sleep(poll_s)
        poll_s = min(2 * poll_s, 5.0)
    outage.back()


class BrokerWatch(logging.Filter):
    """Collapses the Kafka clients' connection errors into :class:`BrokerOutage` lines.

    The first connection error (:data:`CONNECTION_ERRORS`) marks the broker lost;
    from then on every record of the clients' loggers is counted and dropped, and a
    thread asks the broker (:func:`answers`, backing off from ``probe_s`` to 5 s)
    until it answers and the clients logged no connection error for ``quiet_s`` (a
    broker shutting down still answers for a moment). For ``grace_s`` after that,
    connection errors are the clients catching up: counted, not a new outage.

    :param bootstrap: ``host:port[,host:port]``
    :param registry: where ``silkwatch_kafka_broker_up`` and
        ``silkwatch_kafka_client_errors_total`` go. Default - None (no metrics)
    :param probe_s: first wait between two probes while the broker is lost. Default - 1
    :param quiet_s: no connection error for this long, with the broker answering, is
        back. Default - 3
    :param grace_s: after the broker is back, how long its errors are not an outage. Default - 15
    """

    def __init__(
        self,
        bootstrap: str,
        registry: CollectorRegistry | None = None,
        *,
        probe_s: float = 1.0,
        quiet_s: float = 3.0,
        grace_s: float = 15.0,
    ) -> None:
        super().__init__()
        self.outage = BrokerOutage(bootstrap)
        self.probe_s, self.quiet_s, self.grace_s = probe_s, quiet_s, grace_s
        self._back_at_s = self._error_at_s = float("-inf")
        self._lock = threading.Lock()  # Faust's consumer logs from a thread of its own
        self.up = self.client_errors = None
        if registry is not None:
            ns = {"namespace": "silkwatch", "subsystem": "kafka", "registry": registry}
            self.up = Gauge("broker_up", "1 when the broker answers, 0 while it is lost.", **ns)
            self.client_errors = Counter(
                "client_errors",
                "Connection errors (and, while lost, all warnings) the Kafka clients logged.",
                **ns,
            )
            self.up.set(1)

    def install(self) -> BrokerWatch:
        """Filter every Kafka client logger that exists now (their modules are imported)."""
        for name, client in list(logging.root.manager.loggerDict.items()):
            if isinstance(client, logging.Logger) and f"{name}.".startswith(_PREFIXES):
                client.addFilter(self)
        return self

    def filter(self, record: logging.LogRecord) -> bool:
        """False (dropped) for what the clients say about a broker that is gone."""
        with self._lock:
            error = record.levelno >= logging.WARNING and _is_connection_error(record)
            if error:
                self._error_at_s = time.monotonic()
            down = self.outage.down_since is not None
            if not (down or error):
                return True
            if record.levelno >= logging.WARNING:
                self.outage.held_back += down
                if self.client_errors is not None:
                    self.client_errors.inc()
            if down or self._error_at_s - self._back_at_s < self.grace_s:
                return False
            if self.up is not None:
                self.up.set(0)
            self.outage.lost(record.getMessage()[:200])
        threading.Thread(
            target=self._await_return, name="silkwatch-broker-probe", daemon=True
        ).start()
        return False

    def _await_return(self) -> None:
        """Probe until the broker answers, then mark it back."""
        wait_s = self.probe_s
        while True:
            time.sleep(wait_s)
            wait_s = min(2 * wait_s, 5.0)
            if not answers(self.outage.bootstrap):
                continue
            with self._lock:
                if time.monotonic() - self._error_at_s < self.quiet_s:
                    continue
                if self.up is not None:
                    self.up.set(1)
                self.outage.back()
                self._back_at_s = time.monotonic()
                return


def _is_connection_error(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return any(text in message for text in CONNECTION_ERRORS)
