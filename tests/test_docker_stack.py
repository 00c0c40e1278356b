"""The docker stack agrees with the repo, without Docker (none can run where we test).

Checks what a ``docker compose up`` would otherwise find out late: mounted paths exist,
the Prometheus scrape target is the worker's web port, Grafana's datasource is the
Prometheus service, the Kafka image is the broker version the tests run, the services'
commands parse with the real ``silkwatch`` parser, the image's entry point is ``silkwatch``.
"""

from __future__ import annotations

import re
import shlex
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from silkwatch.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
DEFAULTED_VARIABLE = re.compile(r"\$\{\w+:-([^}]*)\}")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return _load(DOCKER / "docker-compose.yml")["services"]


def _bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of every bind mount (``${VAR:-default}`` at its default)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = DEFAULTED_VARIABLE.sub(r"\1", volume).split(":")[:2]
        if source.startswith("."):
            mounts[target] = (DOCKER / source).resolve()
    return mounts


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_compose_has_the_seven_services(services: dict[str, Any]) -> None:
    assert sorted(services) == [
        "alerts", "collector", "grafana", "kafka", "prometheus", "publisher", "worker"
    ]  # fmt: skip
    assert services["grafana"]["image"] == "grafana/grafana:11.6.0"


def test_every_bind_mount_exists_in_the_repo(services: dict[str, Any]) -> None:
    mounts = {
        (name, target): source
        for name, service in services.items()
        for target, source in _bind_mounts(service).items()
    }
    assert {key: source.relative_to(ROOT).as_posix() for key, source in mounts.items()} == {
        ("grafana", "/etc/grafana/provisioning"): "grafana/provisioning",
        ("grafana", "/var/lib/grafana/dashboards"): "grafana/dashboards",
        ("prometheus", "/etc/prometheus/prometheus.yml"): "docker/prometheus/prometheus.yml",
        ("prometheus", "/etc/prometheus/rules.yml"): "docker/prometheus/rules.yml",
        ("publisher", "/data"): "docker/data",
        ("alerts", "/etc/silkwatch/sinks.toml"): "docker/alerts/sinks.toml",
    }
    assert [key for key, source in mounts.items() if not source.exists()] == []


def test_named_volumes_are_declared(services: dict[str, Any]) -> None:
    declared = set(_load(DOCKER / "docker-compose.yml")["volumes"])
    used = {
        volume.split(":")[0]
        for service in services.values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "$"))
    }
    assert used == declared == {
        "kafka-data", "worker-data", "collector-data", "prometheus-data", "grafana-data"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("service", "port_option", "host_option"),
    [("worker", "--web-port", "--web-host"), ("alerts", "--metrics-port", "--metrics-host")],
)
def test_prometheus_scrapes_each_metrics_port(
    services: dict[str, Any], service: str, port_option: str, host_option: str
) -> None:
    jobs = _load(DOCKER / "prometheus" / "prometheus.yml")["scrape_configs"]
    targets = {
        target.split(":")[0]: (target.split(":")[1], job["metrics_path"])
        for job in jobs
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert sorted(targets) == ["alerts", "worker"]
    port, path = targets[service]
    assert path == "/metrics"
    command = services[service]["command"]
    assert _option(command, port_option) == port
    # Bound to 127.0.0.1 (the default) the port would be unreachable from Prometheus.
    assert _option(command, host_option) == "0.0.0.0"


def test_grafana_reads_the_prometheus_service(services: dict[str, Any]) -> None:
    provisioning = ROOT / "grafana" / "provisioning"
    (datasource,) = _load(provisioning / "datasources" / "prometheus.yml")["datasources"]
    scrape = _load(DOCKER / "prometheus" / "prometheus.yml")["global"]

    assert datasource["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in services["prometheus"]["ports"]
    # $__rate_interval in the dashboards builds on the datasource's idea of the interval.
    assert datasource["jsonData"]["timeInterval"] == scrape["scrape_interval"] == "15s"

    providers = [
        provider
        for path in sorted((provisioning / "dashboards").glob("*.yml"))
        for provider in _load(path)["providers"]
    ]
    assert [p["options"]["path"] for p in providers] == ["/var/lib/grafana/dashboards"]


def test_kafka_image_is_the_broker_version_the_tests_run(services: dict[str, Any]) -> None:
    pom = ET.parse(DOCKER / "kafka" / "pom.xml").getroot()
    version = pom.findtext("m:properties/m:kafka.version", namespaces=POM_NS)
    assert version == "4.4.0"
    assert services["kafka"]["image"] == f"apache/kafka:{version}"
    environment = services["kafka"]["environment"]
    assert "PLAINTEXT://kafka:9092" in environment["KAFKA_ADVERTISED_LISTENERS"].split(",")
    for name in ("worker", "publisher", "alerts"):
        assert _option(services[name]["command"], "--broker") == "kafka://kafka:9092"


@pytest.mark.parametrize(
    ("service", "command"),
    [("worker", "worker"), ("publisher", "publish"), ("alerts", "alerts"),
     ("collector", "collect")],
)  # fmt: skip
def test_service_commands_parse_with_the_real_cli(
    services: dict[str, Any], service: str, command: str
) -> None:
    # build_parser() alone only lists the commands; the command's own parser parses
    args = build_parser(command).parse_args(services[service]["command"])
    assert args.run.__module__ == f"silkwatch.commands.{command}"


def test_dockerfile_installs_silkwatch_as_the_entry_point() -> None:
    lines = [
        line
        for line in (DOCKER / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
        if line and not line.startswith("#")
    ]
    instructions = [(line.split(maxsplit=1)[0], line.split(maxsplit=1)[1]) for line in lines]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert dict(instructions)["ENTRYPOINT"] == '["silkwatch"]'
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["silkwatch"] == "silkwatch.cli:main"

    copied = [shlex.split(arg)[:-1] for op, arg in instructions if op == "COPY"]
    sources = sorted(source for sources in copied for source in sources)
    assert sources == [
        "README.md",
        "connectors",
        "detectors",
        "grafana",
        "pyproject.toml",
        "silkwatch",
        "streams",
    ]
    assert [source for source in sources if not (ROOT / source).exists()] == []
    # Every package pyproject.toml installs is copied in.
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(packages["package-dir"].values()) <= set(sources)
