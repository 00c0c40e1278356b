"""Real ``silkwatch worker`` processes for stream tests, and reading their JSON views."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from silkwatch.streams.network import network_totals
from silkwatch.streams.settings import WorkerSettings
from tests.services.process import ServiceProcess, free_port, start_service, url_answers


@dataclass
class Worker:
    """A running worker process and the port of its web server."""

    service: ServiceProcess
    web_port: int

    def bins(self) -> list[dict]:
        """This worker's hourly bins (``/silkwatch/bins/``)."""
        return self._get("/silkwatch/bins/")

    def hosts(self) -> list[dict]:
        """This worker's per-host hourly statistics (``/silkwatch/hosts/``)."""
        return self._get("/silkwatch/hosts/")

    def _get(self, path: str) -> list[dict]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}{path}", timeout=10) as r:
            return json.loads(r.read())

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no final commit."""
        os.kill(self.service.pid, signal.SIGKILL)
        self.service.popen.wait()

    def detect(self) -> dict[str, dict]:
        """Per detect partition held here: offset, state size, drops (``/silkwatch/detect/``)."""
        return self._get("/silkwatch/detect/")


def start_worker(
    broker_url: str,
    workdir: Path,
    *,
    app_id: str,
    topic: str,
    roles: str = "bins,detect",
    env: dict[str, str] | None = None,
) -> Worker:
    """Start ``silkwatch worker`` and return once its web server answers.

    :param env: more ``SILKWATCH_*`` settings for the child (checkpoint interval, ...)
    """
    web_port = free_port()
    settings = WorkerSettings(
        broker=broker_url,
        app_id=app_id,
        flows_topic=topic,
        bins_topic=f"{topic}-bins",
        alerts_topic=f"{topic}-alerts",
        data_dir=workdir / f"data-{web_port}",
        web_port=web_port,
    )
    argv = [
        sys.executable, "-m", "silkwatch", "worker",
        "--broker", settings.broker, "--app-id", app_id, "--topic", topic,
        "--web-port", str(web_port), "--data-dir", str(settings.data_dir), "--loglevel", "info",
        "--roles", roles,
    ]  # fmt: skip
    env_before = dict(os.environ)
    os.environ.update(settings.to_env())  # bins/alerts topic names reach the child
    os.environ.update(env or {})
    try:
        service = start_service(
            f"worker-{web_port}",
            argv,
            log_path=workdir / f"worker-{web_port}.log",
            ready=lambda: url_answers(f"http://127.0.0.1:{web_port}/silkwatch/bins/"),
            timeout_s=90,
        )
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    return Worker(service, web_port)


def wait_for(condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def hourly_totals(*workers: Worker) -> dict[int, tuple[float, float, float]]:
    """Network totals per hour summed over the workers' views (each owns some partitions)."""
    out: dict[int, tuple[float, float, float]] = {}
    for worker in workers:
        for hour, values in network_totals(worker.bins()).items():
            old = out.get(hour, (0.0, 0.0, 0.0))
            out[hour] = tuple(a + b for a, b in zip(old, values, strict=True))
    return out
