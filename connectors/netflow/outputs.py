"""Where collected flows go besides Kafka: a SiLK repository, or a SiLK stream.

The repository is laid out as rwflowpack writes it with SiLK's default
``path-format`` ``%T/%Y/%m/%d/%x``: ``in/2026/12/07/in-S0_20261207.13``, one file
per (flowtype, sensor, hour of the flow's start), appended to as flows arrive
(rwflowappend's way), so ``silkwatch``'s repository readers and SiLK's
``rwfilter --data-rootdir`` read it.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np

from silkwatch.connectors.silk.header import PackedFile
from silkwatch.connectors.silk.repository import HOUR_MS
from silkwatch.connectors.silk.site import TWOWAY_FLOWTYPES, sensor_name
from silkwatch.connectors.silk.writer import SilkWriter, hour_file_entries
from silkwatch.detectors.schema import FlowBatch


def hour_file_path(root: Path, flowtype: int, sensor: int, hour_ms: int) -> Path:
    """Where rwflowpack puts one hour of one sensor and flowtype.

    >>> hour_file_path(Path("/data"), 0, 3, 1_434_553_200_000).as_posix()
    '/data/in/2015/06/17/in-S3_20150617.15'
    """
    flow_type = TWOWAY_FLOWTYPES[flowtype]
    hour = datetime.fromtimestamp(hour_ms / 1000, UTC)
    name = f"{flow_type.prefix}-{sensor_name(sensor)}_{hour:%Y%m%d.%H}"
    return root / flow_type.type_name / f"{hour:%Y}" / f"{hour:%m}" / f"{hour:%d}" / name


class RepositoryWriter:
    """Appends batches to the hour files of a SiLK repository (a context manager).

    Every flow must carry a sensor and a flowtype of the twoway site (the
    collector sets them). At most ``max_open`` hour files stay open; the least
    recently written is closed first. ``flush`` makes every record written so
    far visible to readers (call it once per burst).
    """

    def __init__(self, root: Path, *, max_open: int = 32) -> None:
        self.root = Path(root)
        self.max_open = max_open
        self.records_written = 0
        self._open: OrderedDict[tuple[int, int, int], SilkWriter] = OrderedDict()

    def send(self, batch: FlowBatch) -> None:
        """Write each flow into the hour file of its start time, sensor and flowtype."""
        if not batch.size:
            return
        hour = batch["stime_ms"] - batch["stime_ms"] % HOUR_MS
        keys = np.stack([batch["flowtype"].astype(np.int64), batch["sensor"], hour], axis=1)
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        for index, (flowtype, sensor, hour_ms) in enumerate(unique.tolist()):
            self._writer(flowtype, sensor, hour_ms).write(batch[inverse.reshape(-1) == index])
        self.records_written += int(batch.size)

    def _writer(self, flowtype: int, sensor: int, hour_ms: int) -> SilkWriter:
        key = (flowtype, sensor, hour_ms)
        writer = self._open.pop(key, None)
        if writer is None:
            path = hour_file_path(self.root, flowtype, sensor, hour_ms)
            path.parent.mkdir(parents=True, exist_ok=True)
            exists = path.exists() and path.stat().st_size > 0
            entries = hour_file_entries(PackedFile(hour_ms, flowtype, sensor))
            writer = SilkWriter(path, append=exists, entries=entries)
            while len(self._open) >= self.max_open:
                self._open.popitem(last=False)[1].close()
        self._open[key] = writer
        return writer

    def flush(self) -> None:
        """Make everything written so far visible to readers."""
        for writer in self._open.values():
            writer.flush()

    def close(self) -> None:
        """Close every open hour file."""
        while self._open:
            self._open.popitem(last=False)[1].close()

    def __enter__(self) -> RepositoryWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class StreamWriter:
    """A SiLK flow stream on a binary file object (``--output -``: standard output)."""

    def __init__(self, target: BinaryIO | Path) -> None:
        self._writer = SilkWriter(target)

    def send(self, batch: FlowBatch) -> None:
        """Append the flows of ``batch``."""
        if batch.size:
            self._writer.write(batch)

    def flush(self) -> None:
        """Push the records out (a reader downstream sees them now)."""
        self._writer.flush()

    def close(self) -> None:
        """Flush; close the file if it was opened here."""
        self._writer.close()
