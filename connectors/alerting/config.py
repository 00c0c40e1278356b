"""``sinks.toml``: which receivers get alerts, and the grouping rules.

Secrets are never written in the file: each sink names an environment variable
(``url_env``, ``token_env``) or a file (``url_file``, ``token_file``).

.. code-block:: toml

    topic = "silkwatch-alerts"       # optional, the default (the worker's alerts topic)
    dead_letter_topic = "silkwatch-alerts-deadletter"   # optional, the default: <topic>-deadletter

    [grouping]                       # optional; Alertmanager's defaults but quicker
    group_by = ["kind"]
    group_wait_s = 30
    group_interval_s = 300
    repeat_interval_s = 14400

    [[sinks]]
    name = "soc-slack"
    type = "slack"                   # slack | mattermost | teams | webhook | apprise | grafana
    url_env = "SLACK_WEBHOOK_URL"

    [[sinks]]
    name = "annotations"
    type = "grafana"
    url = "http://grafana:3000"      # the Grafana base URL is not a secret
    token_file = "/run/secrets/grafana_token"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from silkwatch.connectors.alerting.apprise_sink import AppriseSink
from silkwatch.connectors.alerting.delivery import (
    DEFAULT_TOPIC,
    AlertSink,
    DeadLetterRunner,
    SinkRunner,
)
from silkwatch.connectors.alerting.grafana import GrafanaAnnotationSink
from silkwatch.connectors.alerting.grouping import GroupingConfig
from silkwatch.connectors.alerting.http import DeliveryError
from silkwatch.connectors.alerting.mattermost import MattermostSink
from silkwatch.connectors.alerting.secrets import Secret, SecretError, read_secret
from silkwatch.connectors.alerting.slack import SlackSink
from silkwatch.connectors.alerting.teams import TeamsSink
from silkwatch.connectors.alerting.webhook import AlertmanagerWebhookSink
from silkwatch.connectors.prometheus import Metrics
from silkwatch.detectors.exceptions import SilkwatchError

WEBHOOK_SINKS = {
    cls.kind: cls for cls in (SlackSink, MattermostSink, TeamsSink, AlertmanagerWebhookSink)
}
SINK_TYPES = (*WEBHOOK_SINKS, "apprise", "grafana")


class DeliveryConfigError(SilkwatchError):
    """``sinks.toml`` is missing, malformed, or names a secret that cannot be read."""

    reason = "alert_config"

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        super().__init__(f"alert config: {path}: {detail}")


@dataclass(frozen=True)
class DeliveryConfig:
    topic: str
    grouping: GroupingConfig
    sinks: tuple[AlertSink, ...]
    dead_letter_topic: str = ""


def _secret(entry: dict[str, Any], key: str) -> Secret:
    if key in entry:
        raise SecretError(f"{key} must not be written in the file: use {key}_env or {key}_file")
    return read_secret(env=entry.get(f"{key}_env"), file=entry.get(f"{key}_file"))


def build_sink(entry: dict[str, Any]) -> AlertSink:
    """One sink from its ``[[sinks]]`` table (secrets read here)."""
    kind = entry.get("type")
    name = str(entry.get("name", kind))
    options = {k: entry[k] for k in ("timeout_s",) if k in entry}
    if kind in WEBHOOK_SINKS:
        extra = {k: entry[k] for k in ("username", "external_url") if k in entry}
        return WEBHOOK_SINKS[kind](name, _secret(entry, "url"), **options, **extra)
    if kind == "apprise":
        return AppriseSink(name, _secret(entry, "url"))
    if kind == "grafana":
        return GrafanaAnnotationSink(name, str(entry["url"]), _secret(entry, "token"), **options)
    raise ValueError(f"unknown type {kind!r} (one of {', '.join(SINK_TYPES)})")


def load_delivery_config(path: Path) -> DeliveryConfig:
    """Read ``sinks.toml``, resolving every secret, so errors show at start, not at 3 a.m."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise DeliveryConfigError(path, f"cannot read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DeliveryConfigError(path, f"not valid TOML ({exc})") from exc
    known = {f.name for f in fields(GroupingConfig)}
    grouping_table = data.get("grouping", {})
    unknown = set(grouping_table) - known
    if unknown:
        raise DeliveryConfigError(path, f"[grouping]: unknown keys {sorted(unknown)}")
    if "group_by" in grouping_table:
        grouping_table = {**grouping_table, "group_by": tuple(grouping_table["group_by"])}
    for key, least in (("group_wait_s", 0), ("group_interval_s", 0), ("repeat_interval_s", 0),
                       ("max_alerts", 1)):  # fmt: skip
        value = grouping_table.get(key, least)
        wrong_type = isinstance(value, bool) or not isinstance(value, int | float)
        if wrong_type or value < least or (key == "max_alerts" and not isinstance(value, int)):
            raise DeliveryConfigError(
                path, f"[grouping] {key} = {value!r}: must be a number >= {least}"
            )
    sinks = []
    for index, entry in enumerate(data.get("sinks", [])):
        try:
            sinks.append(build_sink(entry))
        except (KeyError, TypeError, ValueError, SecretError, DeliveryError) as exc:
            raise DeliveryConfigError(path, f"sinks[{index}] ({entry.get('name')}): {exc}") from exc
    if not sinks:
        raise DeliveryConfigError(path, "no [[sinks]] configured")
    names = [s.name for s in sinks]
    if len(set(names)) != len(names):
        raise DeliveryConfigError(
            path, f"sink names must be unique (they name consumer groups): {names}"
        )
    topic = str(data.get("topic", DEFAULT_TOPIC))
    return DeliveryConfig(
        topic=topic,
        grouping=GroupingConfig(**grouping_table),
        sinks=tuple(sinks),
        dead_letter_topic=str(data.get("dead_letter_topic", f"{topic}-deadletter")),
    )


def build_runners(
    config: DeliveryConfig, bootstrap: str, *, metrics: Metrics | None = None
) -> list[SinkRunner | DeadLetterRunner]:
    """One delivery loop per configured sink, and the dead-letter loop, for ``run_delivery``."""
    runners: list[SinkRunner | DeadLetterRunner] = [
        SinkRunner(bootstrap, sink, grouping=config.grouping, topic=config.topic, metrics=metrics)
        for sink in config.sinks
    ]
    dead_letters = DeadLetterRunner(
        bootstrap,
        topic=config.topic,
        dead_letter_topic=config.dead_letter_topic or None,
        metrics=metrics,
    )
    return [*runners, dead_letters]
