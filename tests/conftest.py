"""Session fixtures for tests that need real services; each starts only when a test asks.

- ``kafka_broker``: a real Apache Kafka broker (see ``tests/services/kafka.py``).
- ``prometheus_server``: a real Prometheus (see ``tests/services/prometheus.py``).
- ``shared_dir``: the sample data folder ``shared/`` beside the checkout.

The summary ends with the SiLK-suite pass count when its cases ran
(``tests/commands/test_silk_suite.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.kafka import KafkaBroker, start_kafka
from tests.services.prometheus import PrometheusServer, start_prometheus

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
#: SiLK-suite case name → passed byte for byte (filled by tests/commands/test_silk_suite.py)
SILK_SUITE_RESULTS = pytest.StashKey[dict]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config):
    """One line: how many of SiLK's own test cases silkwatch passed byte for byte."""
    results = config.stash.get(SILK_SUITE_RESULTS, None)
    if results:
        passed = sum(results.values())
        terminalreporter.write_sep(
            "-", f"SiLK 3.19.1 suite: {passed} of {len(results)} cases byte for byte"
        )


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One broker for the whole session: ``.bootstrap``, ``.url``, ``.create_topic(name, n)``."""
    broker = start_kafka(tmp_path_factory.mktemp("kafka"))
    yield broker
    broker.process.stop()


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """One Prometheus for the session: ``.scrape(["127.0.0.1:PORT"]) -> url``, ``.query(expr)``."""
    server = start_prometheus(tmp_path_factory.mktemp("prometheus"))
    yield server
    server.process.stop()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``shared/`` beside the checkout (sample data); skips when the folder is missing."""
    shared = SHARED.resolve()
    if not shared.is_dir():
        pytest.skip(f"sample data folder {shared} is missing (it sits beside the checkout)")
    return shared
