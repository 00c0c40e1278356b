"""A real Apache Kafka broker for tests, run by ``docker/kafka/kafka.sh``.

The broker's configuration lives once, in ``docker/kafka/server.properties.in``; this
module only picks free ports and a data directory, and knows when the broker answers.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from tests.services.process import (
    ServiceProcess,
    ServiceStartError,
    free_ports,
    port_answers,
    start_service,
)

KAFKA_SH = Path(__file__).resolve().parents[2] / "docker" / "kafka" / "kafka.sh"

#: a start takes 3-5 s on an idle 2-core machine, 15-36 s was seen with 8 people sharing it
START_TIMEOUT_S = 120.0


@dataclass
class KafkaBroker:
    """A running single-node broker: ``bootstrap`` for kafka-python/aiokafka, ``url`` for Faust."""

    bootstrap: str
    process: ServiceProcess

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def admin(self) -> KafkaAdminClient:
        """A kafka-python admin client on this broker; the caller closes it."""
        return KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10_000)

    def create_topic(self, name: str, partitions: int = 1) -> str:
        """Create ``name`` with ``partitions`` partitions and wait until each has a leader.

        The broker is shared by the whole session: give each test its own topic names.
        Returns ``name``.
        """
        admin = self.admin()
        try:
            admin.create_topics(
                {name: {"num_partitions": partitions, "replication_factor": 1}},
                wait_for_metadata=True,
            )
        finally:
            admin.close()
        return name


def fetch_jars() -> None:
    """The broker jars from Maven Central into ``docker/kafka/lib/`` (a no-op once cached)."""
    done = subprocess.run([KAFKA_SH, "fetch"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServiceStartError(f"{KAFKA_SH} fetch failed:\n{done.stdout}{done.stderr}")


def _answers(bootstrap: str, port: int) -> bool:
    """True once the broker serves metadata (an open port alone comes slightly earlier)."""
    if not port_answers(port):
        return False
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2_000)
    except KafkaError:
        return False
    try:
        return bool(admin.describe_cluster()["brokers"])
    except KafkaError:
        return False
    finally:
        admin.close()


def start_kafka(data_dir: Path, ports: tuple[int, int] | None = None) -> KafkaBroker:
    """Format ``data_dir`` and start a broker + controller on two free loopback ports,
    or on ``ports`` (broker, controller): a restart of the broker that used them."""
    fetch_jars()
    port, controller_port = ports or free_ports(2)
    bootstrap = f"127.0.0.1:{port}"
    process = start_service(
        "kafka",
        [KAFKA_SH, "run", data_dir, str(port), str(controller_port)],
        log_path=data_dir / "kafka.log",
        ready=lambda: _answers(bootstrap, port),
        timeout_s=START_TIMEOUT_S,
    )
    return KafkaBroker(bootstrap, process)
