"""The bins topic's messages: a :class:`~silkwatch.streams.processing.ClosedHour` as JSON, and back.

Only the worker's Kafka edge uses this (the flows agent's bins step sends, the network agent
reads back); the embedded runner hands its closed hours on as they are.

Examples
--------
>>> hour = ClosedHour(2, 3_600_000, {("total", 0): (2.0, 150.0, 2.0)}, 7_200_000)
>>> closed_hour_message(hour)
b'{"partition":2,"hour_start_ms":3600000,"closed_until_ms":7200000,"volumes":[["total",0,2.0,150.0,2.0]]}'
>>> closed_hour_from_message(closed_hour_message(hour)) == hour
True

Nothing read from Kafka is trusted: a message of another shape is a
:class:`BinsMessageError` naming what is wrong, never a crash of the agent.

>>> closed_hour_from_message(b'{"partition": 2, "hour_start_ms": "soon"}')
Traceback (most recent call last):
...
silkwatch.streams.binstopic.BinsMessageError: bins message: hour_start_ms is not an integer
>>> closed_hour_from_message(b"{")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
silkwatch.streams.binstopic.BinsMessageError: bins message: not JSON (Expecting property name ...)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.streams.processing import ClosedHour


class BinsMessageError(SilkwatchError):
    """A bins-topic message that is not a closed hour as :func:`closed_hour_message` writes it."""

    reason = "bad_bins_message"

    def __init__(self, detail: str) -> None:
        super().__init__(f"bins message: {detail}")


def closed_hour_message(hour: ClosedHour) -> bytes:
    """A closed partition hour as the JSON message sent to the bins topic."""
    message = {
        "partition": hour.partition,
        "hour_start_ms": hour.hour_start_ms,
        "closed_until_ms": hour.closed_until_ms,
        "volumes": [[dim, value, *counts] for (dim, value), counts in hour.volumes.items()],
    }
    return json.dumps(message, separators=(",", ":")).encode()


def closed_hour_from_message(data: bytes) -> ClosedHour:
    """The closed partition hour a bins-topic message carries; :class:`BinsMessageError` if none."""
    try:
        message = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BinsMessageError(f"not JSON ({exc})") from None
    if not isinstance(message, Mapping):
        raise BinsMessageError(f"a {type(message).__name__}, not an object")
    partition, hour_ms, closed_ms = (
        _integer(message, name) for name in ("partition", "hour_start_ms", "closed_until_ms")
    )
    volumes = message.get("volumes")
    if not isinstance(volumes, list):
        raise BinsMessageError("volumes is not a list")
    counted = {}
    for row in volumes:
        if not (isinstance(row, list) and len(row) == 5 and isinstance(row[0], str)):
            raise BinsMessageError(
                f"volume row {str(row)[:60]} is not [dimension, value, 3 counts]"
            )
        dim, value, *counts = row
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise BinsMessageError(f"volume value {value!r} is not an integer or a string")
        if not all(_count(c) for c in counts):
            raise BinsMessageError(f"volume counts {counts} are not finite numbers >= 0")
        counted[(dim, value)] = tuple(float(c) for c in counts)
    return ClosedHour(partition, hour_ms, counted, closed_ms)


def _integer(message: Mapping[str, Any], name: str) -> int:
    value = message.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BinsMessageError(f"{name} is not an integer")
    return value


def _count(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value >= 0
    )
