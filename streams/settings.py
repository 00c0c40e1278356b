"""Worker settings, read from the environment: ``faust -A silkwatch.streams.app worker`` works too.

``silkwatch worker --broker ...`` sets these variables before it imports the
app; a plain Faust command line reads the same ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BROKER = "kafka://127.0.0.1:9092"


@dataclass(frozen=True)
class WorkerSettings:
    """Where the worker connects and what it calls its topics.

    :param broker: Kafka bootstrap URL(s), ``kafka://host:port[;host:port]``
    :param app_id: Faust application id: consumer group and changelog prefix
    :param partitions: partitions of the flows topic and of every table
    :param flows_topic: topic the publisher writes flow-batch frames to
    :param bins_topic: topic closed hours are emitted to (JSON)
    :param alerts_topic: topic alerts are emitted to (JSON)
    :param data_dir: Faust's local state folder
    :param web_host: address the worker's web server (JSON views, /metrics) binds
        (Faust's ``web_bind``): loopback unless set, since the views show hosts and
        traffic; ``0.0.0.0`` only where a scraper must reach it (a container)
    :param web_port: its port
    :param detectors_config: detector thresholds (TOML); None = the shipped defaults
    :param checkpoint_interval_s: wall time between checkpoints of a busy
        partition's detection state (and at every hour close)
    :param score_interval_s: wall time between scorings of what changed, between
        hour closes: the alert latency on a live feed (0: only at hour close)
    :param idle_close_s: a partition without a message for this long closes its
        last hour (the end of a published file, or a feed that paused)
    :param site_wait_s: an hour close waits at most this long for the other
        partitions' parts of the site (:mod:`silkwatch.streams.siteboard`), then scores
        with those it has
    :param roles: which agents run: ``bins`` (hourly bins, network hours, volume,
        flow counters) and/or ``detect`` (hosts, pairs, detectors, bytes by country).
        Workers with different roles scale separately and need different ``app_id``
        values (consumer groups).
    """

    broker: str = DEFAULT_BROKER
    app_id: str = "silkwatch"
    partitions: int = 8
    flows_topic: str = "silkwatch-flows"
    bins_topic: str = "silkwatch-bins"
    alerts_topic: str = "silkwatch-alerts"
    data_dir: Path = Path.home() / ".local" / "state" / "silkwatch"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    detectors_config: Path | None = None
    roles: tuple[str, ...] = ("bins", "detect")
    checkpoint_interval_s: float = 5.0
    score_interval_s: float = 2.0
    idle_close_s: float = 60.0
    site_wait_s: float = 60.0

    @classmethod
    def from_env(cls) -> WorkerSettings:
        """Settings from ``SILKWATCH_*`` variables; unset ones keep their defaults."""
        env = os.environ
        defaults = cls()
        return cls(
            broker=env.get("SILKWATCH_BROKER", defaults.broker),
            app_id=env.get("SILKWATCH_APP_ID", defaults.app_id),
            partitions=int(env.get("SILKWATCH_PARTITIONS", defaults.partitions)),
            flows_topic=env.get("SILKWATCH_FLOWS_TOPIC", defaults.flows_topic),
            bins_topic=env.get("SILKWATCH_BINS_TOPIC", defaults.bins_topic),
            alerts_topic=env.get("SILKWATCH_ALERTS_TOPIC", defaults.alerts_topic),
            data_dir=Path(env.get("SILKWATCH_DATA_DIR", defaults.data_dir)),
            web_host=env.get("SILKWATCH_WEB_HOST", defaults.web_host),
            web_port=int(env.get("SILKWATCH_WEB_PORT", defaults.web_port)),
            detectors_config=Path(env["SILKWATCH_DETECTORS_CONFIG"])
            if env.get("SILKWATCH_DETECTORS_CONFIG")
            else None,
            roles=tuple(env.get("SILKWATCH_ROLES", ",".join(defaults.roles)).split(",")),
            checkpoint_interval_s=float(
                env.get("SILKWATCH_CHECKPOINT_INTERVAL_S", defaults.checkpoint_interval_s)
            ),
            score_interval_s=float(
                env.get("SILKWATCH_SCORE_INTERVAL_S", defaults.score_interval_s)
            ),
            idle_close_s=float(env.get("SILKWATCH_IDLE_CLOSE_S", defaults.idle_close_s)),
            site_wait_s=float(env.get("SILKWATCH_SITE_WAIT_S", defaults.site_wait_s)),
        )

    def to_env(self) -> dict[str, str]:
        """The variables that reproduce these settings in a child process."""
        return {
            "SILKWATCH_BROKER": self.broker,
            "SILKWATCH_APP_ID": self.app_id,
            "SILKWATCH_PARTITIONS": str(self.partitions),
            "SILKWATCH_FLOWS_TOPIC": self.flows_topic,
            "SILKWATCH_BINS_TOPIC": self.bins_topic,
            "SILKWATCH_ALERTS_TOPIC": self.alerts_topic,
            "SILKWATCH_DATA_DIR": str(self.data_dir),
            "SILKWATCH_WEB_HOST": self.web_host,
            "SILKWATCH_WEB_PORT": str(self.web_port),
            "SILKWATCH_DETECTORS_CONFIG": str(self.detectors_config or ""),
            "SILKWATCH_ROLES": ",".join(self.roles),
            "SILKWATCH_CHECKPOINT_INTERVAL_S": str(self.checkpoint_interval_s),
            "SILKWATCH_SCORE_INTERVAL_S": str(self.score_interval_s),
            "SILKWATCH_IDLE_CLOSE_S": str(self.idle_close_s),
            "SILKWATCH_SITE_WAIT_S": str(self.site_wait_s),
        }
