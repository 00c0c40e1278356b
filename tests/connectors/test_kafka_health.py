"""The Kafka clients' flood of connection errors becomes one line per broker state change."""

from __future__ import annotations

import logging
import socket
import struct
import threading

from prometheus_client import CollectorRegistry

from silkwatch.connectors.kafka.health import BrokerWatch, answers
from tests.streams.workers import wait_for

REFUSED = "Unable connect to node with id 1: [Errno 111] Connect call failed ('127.0.0.1', 9)"


def serve_api_versions(server: socket.socket) -> None:
    """Answer one connection the way a broker answers ApiVersions (correlation 1, no error)."""
    connection, _ = server.accept()
    with connection:
        connection.recv(64)
        connection.sendall(struct.pack(">iih", 6, 1, 0))


def test_a_flood_of_client_errors_is_one_line_when_lost_and_one_when_back(caplog):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    bootstrap = f"127.0.0.1:{server.getsockname()[1]}"
    client = logging.getLogger("aiokafka.silkwatch_test")  # exists before install()
    client.setLevel(logging.DEBUG)  # a command run in this process may have quietened "aiokafka"
    registry = CollectorRegistry()
    watch = BrokerWatch(bootstrap, registry, probe_s=0.05, quiet_s=0.0).install()
    sample = registry.get_sample_value
    try:
        with caplog.at_level(logging.INFO):
            client.info("Discovered coordinator 1 for group g")  # up: not the watch's business
            for _ in range(100):
                client.error(REFUSED)
            client.warning("Heartbeat failed for group g")  # lost: every client line is held
            assert sample("silkwatch_kafka_broker_up") == 0
            assert not answers(bootstrap, timeout_s=0.5)
            server.listen()
            serving = threading.Thread(target=serve_api_versions, args=(server,))
            serving.start()
            wait_for(lambda: sample("silkwatch_kafka_broker_up") == 1, timeout_s=10, what="back")
            serving.join()
            client.error(REFUSED)  # the clients catching up within grace_s: no new outage
    finally:
        client.removeFilter(watch)
        server.close()
    lines = [record.getMessage() for record in caplog.records]
    assert lines[:2] == [
        "Discovered coordinator 1 for group g",
        f"kafka {bootstrap}: broker lost ({REFUSED})",
    ]
    assert lines[2].startswith(f"kafka {bootstrap}: broker back after ")
    assert lines[2].endswith(" s (100 client errors held back)")
    assert len(lines) == 3
    assert sample("silkwatch_kafka_client_errors_total") == 102  # errors and warnings alike
