"""Walk a SiLK data repository laid out as ``%T/%Y/%m/%d/%x``.

``%x`` is ``<prefix>-<sensor>_<YYYYMMDD>.<HH>`` (``out/2015/06/17/out-S3_20150617.15``),
so the sensor, flowtype and hour of each hour file are known from its path:
selecting by them costs a directory listing, not a read, as with rwfilter's
``--sensors``/``--type``/``--start-date``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from silkwatch.connectors.silk.site import FLOWTYPE_BY_PREFIX, sensor_id
from silkwatch.detectors.schema import HOUR_MS

logger = logging.getLogger(__name__)

_HOUR_FILE = re.compile(r"^(?P<prefix>[^-/]+)-(?P<sensor>[^_/]+)_(?P<day>\d{8})\.(?P<hour>\d{2})$")


@dataclass(frozen=True, order=True)
class HourFile:
    """One hour file of a repository, with what its path says about it."""

    hour_ms: int
    type_name: str
    sensor: int
    path: Path


def parse_hour_file(path: Path) -> HourFile | None:
    """What the file name says (None if it is not named like a repository hour file)."""
    match = _HOUR_FILE.match(path.name)
    if not match:
        return None
    flowtype = FLOWTYPE_BY_PREFIX.get(match["prefix"])
    try:
        sensor = sensor_id(match["sensor"])
        hour = datetime.strptime(match["day"] + match["hour"], "%Y%m%d%H").replace(tzinfo=UTC)
    except ValueError:
        return None
    type_name = flowtype.type_name if flowtype else match["prefix"]
    return HourFile(int(hour.timestamp()) * 1000, type_name, sensor, path)


def iter_repository(
    root: Path,
    *,
    sensors: Collection[int] | None = None,
    types: Collection[str] | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> Iterator[HourFile]:
    """The hour files under ``root`` that pass the filters, oldest hour first.

    Parameters
    ----------
    sensors
        Sensor ids to keep. Default - all.
    types
        Type names (``in``, ``outweb``, ...) to keep. Default - all.
    start_ms, end_ms
        Keep hours whose start lies in ``[start_ms, end_ms]`` (both inclusive,
        compared with the hour's start as rwfilter compares file hours).
        Default - no bound.
    """
    found = []
    for path in Path(root).rglob("*"):
        hour_file = parse_hour_file(path)
        if hour_file is None or not path.is_file():
            continue
        if sensors is not None and hour_file.sensor not in sensors:
            continue
        if types is not None and hour_file.type_name not in types:
            continue
        if start_ms is not None and hour_file.hour_ms < start_ms - start_ms % HOUR_MS:
            continue
        if end_ms is not None and hour_file.hour_ms > end_ms:
            continue
        found.append(hour_file)
    logger.debug("repository=%s hour_files=%d", root, len(found))
    return iter(sorted(found))
