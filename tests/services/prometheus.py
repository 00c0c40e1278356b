"""A real Prometheus (Debian's ``/usr/bin/prometheus``) for tests, scraping what a test names.

One server serves the whole session: ``scrape(targets)`` rewrites its configuration and
reloads it (``--web.enable-lifecycle``), which takes milliseconds instead of a restart.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.services.process import ServiceProcess, free_port, start_service, url_answers

PROMETHEUS_BIN = "/usr/bin/prometheus"
SCRAPE_INTERVAL_S = 1
JOB = "silkwatch"


def _config(targets: Sequence[str], metrics_path: str) -> dict[str, Any]:
    return {
        "global": {
            "scrape_interval": f"{SCRAPE_INTERVAL_S}s",
            "scrape_timeout": f"{SCRAPE_INTERVAL_S}s",
            "evaluation_interval": f"{SCRAPE_INTERVAL_S}s",
        },
        "scrape_configs": [
            {
                "job_name": JOB,
                "metrics_path": metrics_path,
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }


@dataclass
class PrometheusServer:
    """A running Prometheus at ``url`` that scrapes every second whatever ``scrape`` named."""

    url: str
    config_path: Path
    process: ServiceProcess

    def _get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as response:
            return json.load(response)["data"]

    def scrape(
        self, targets: Sequence[str], *, metrics_path: str = "/metrics", timeout_s: float = 30.0
    ) -> str:
        """Scrape ``targets`` ("host:port") instead of the previous ones; returns ``url``.

        Returns once every target has been scraped at least once (its health is "up" or
        "down", no longer "unknown"), so a query right after sees the first samples.
        """
        self.config_path.write_text(yaml.safe_dump(_config(targets, metrics_path)))
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass
        wanted = {f"http://{target}{metrics_path}" for target in targets}
        started = time.monotonic()
        while True:
            active = self.active_targets()
            scraped = {t["scrapeUrl"] for t in active if t["health"] != "unknown"}
            if {t["scrapeUrl"] for t in active} == wanted and scraped == wanted:
                return self.url
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(
                    f"prometheus at {self.url} has not scraped {sorted(wanted)} within "
                    f"{timeout_s:.0f} s; active targets: {active}"
                )
            time.sleep(0.1)

    def active_targets(self) -> list[dict[str, Any]]:
        """``/api/v1/targets`` active targets: ``labels``, ``scrapeUrl``, ``health``, …"""
        return self._get("/api/v1/targets", state="active")["activeTargets"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result vector of the instant PromQL query ``expr``."""
        return self._get("/api/v1/query", query=expr)["result"]


def start_prometheus(data_dir: Path) -> PrometheusServer:
    """Start Prometheus on a free loopback port with no targets yet; returns once ready."""
    config_path = data_dir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(_config([], "/metrics")))
    url = f"http://127.0.0.1:{free_port()}"
    process = start_service(
        "prometheus",
        [
            PROMETHEUS_BIN,
            f"--config.file={config_path}",
            f"--web.listen-address={url.removeprefix('http://')}",
            f"--storage.tsdb.path={data_dir / 'tsdb'}",
            "--web.enable-lifecycle",
        ],
        log_path=data_dir / "prometheus.log",
        ready=lambda: url_answers(f"{url}/-/ready"),
    )
    return PrometheusServer(url, config_path, process)
