"""The bins topic's messages: a :class:`~streams.processing.ClosedHour` as JSON and back.

Only the worker's Kafka edge uses this (the bins agent sends, the network agent
reads back); the embedded runner hands its closed hours on as they are.

Examples
--------
>>> hour = ClosedHour(2, 3_600_000, {("total", 0): (2.0, 150.0, 2.0)}, 7_200_000)
>>> closed_hour_message(hour)
{'partition': 2, 'hour_start_ms': 3600000, 'closed_until_ms': 7200000,
 'volumes': [['total', 0, 2.0, 150.0, 2.0]]}
>>> closed_hour_from_message(closed_hour_message(hour)) == hour
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.processing import ClosedHour


def closed_hour_message(hour: ClosedHour) -> dict[str, Any]:
    """A closed partition hour as the JSON object sent to the bins topic."""
    return {
        "partition": hour.partition,
        "hour_start_ms": hour.hour_start_ms,
        "closed_until_ms": hour.closed_until_ms,
        "volumes": [[dim, value, *counts] for (dim, value), counts in hour.volumes.items()],
    }


def closed_hour_from_message(message: Mapping[str, Any]) -> ClosedHour:
    """The closed partition hour a bins-topic message carries."""
    return ClosedHour(
        message["partition"],
        message["hour_start_ms"],
        {(dim, value): (r, b, p) for dim, value, r, b, p in message["volumes"]},
        message["closed_until_ms"],
    )
