"""The worker's web server (``/metrics``, the JSON views) listens on 127.0.0.1 unless
``--web-host`` names another address: a real ``silkwatch worker`` on the real broker,
its listening socket read from the kernel's table."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from silkwatch.streams.settings import WorkerSettings
from tests.streams.workers import start_worker

pytestmark = pytest.mark.kafka


def listening_addresses(port: int) -> list[str]:
    """Local addresses of the IPv4/IPv6 TCP sockets listening on ``port`` (``/proc/net``)."""
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        path = Path(table)
        if not path.exists():
            continue
        for row in path.read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                found.append(_address(address, width))
    return sorted(found)


def _address(hex_address: str, width: int) -> str:
    if width == 8:  # little-endian IPv4
        return ".".join(str(int(hex_address[i : i + 2], 16)) for i in (6, 4, 2, 0))
    return "::" if int(hex_address, 16) == 0 else hex_address


def test_default_web_host_is_loopback(monkeypatch):
    monkeypatch.delenv("SILKWATCH_WEB_HOST", raising=False)
    assert WorkerSettings.from_env().web_host == "127.0.0.1"


def test_worker_listens_on_loopback_only(kafka_broker, tmp_path):
    tag = uuid.uuid4().hex[:8]
    worker = start_worker(kafka_broker.url, tmp_path, app_id=f"bind-{tag}", topic=f"bind-{tag}")
    try:
        assert listening_addresses(worker.web_port) == ["127.0.0.1"]
    finally:
        worker.service.stop()
