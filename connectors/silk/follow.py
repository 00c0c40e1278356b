"""Follow a growing SiLK repository, as rwflowpack/rwflowappend fill it.

New hour files appear and existing ones grow by whole blocks (or records) at
their end. The follower reads what is complete, remembers per file how far it
got in a small JSON checkpoint, and on restart continues from there: no flow
is lost and none is delivered twice, because a batch only counts as consumed
once the caller asks for the next one (or stops through the ``stop`` event).
A half-written block or header at the end of a file is simply not complete
yet; it is read on a later poll.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Collection, Iterator
from pathlib import Path

from silkwatch.connectors.silk.exceptions import SilkCheckpointError, SilkTruncatedError
from silkwatch.connectors.silk.reader import DEFAULT_ROWS, Position, open_silk
from silkwatch.connectors.silk.repository import HourFile, iter_repository
from silkwatch.detectors.schema import FlowBatch

logger = logging.getLogger(__name__)

_CHECKPOINT_VERSION = 1
_HEADER_START_BYTES = 16


class Checkpoint:
    """Per hour file (path relative to the root): the position after the last delivered batch.

    Saved by writing a temporary file and renaming it over the old one, so a
    crash leaves either the old or the new checkpoint, never a torn one.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.files: dict[str, Position] = {}
        if self.path.exists():
            try:
                saved = json.loads(self.path.read_text())
                if saved.get("version") != _CHECKPOINT_VERSION:
                    raise ValueError(f"version {saved.get('version')!r}")
                self.files = {name: Position(*pos) for name, pos in saved["files"].items()}
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise SilkCheckpointError(str(self.path), f"unreadable ({exc})") from exc

    def get(self, name: str) -> Position | None:
        """Where to resume ``name``, or None if it was never read."""
        return self.files.get(name)

    def set(self, name: str, position: Position) -> None:
        """Record ``position`` for ``name`` and save the checkpoint."""
        self.files[name] = position
        self.save()

    def save(self) -> None:
        """Write the checkpoint atomically (temporary file, fsync, rename)."""
        body = {
            "version": _CHECKPOINT_VERSION,
            "files": {name: [p.offset, p.skip] for name, p in sorted(self.files.items())},
        }
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            with open(temporary, "w") as out:
                json.dump(body, out, indent=0)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            raise SilkCheckpointError(str(self.path), f"cannot save ({exc.strerror})") from exc


def _iter_new(
    hour_file: HourFile, name: str, checkpoint: Checkpoint, rows: int
) -> Iterator[tuple[FlowBatch, Position]]:
    """The complete batches of one hour file beyond its checkpoint."""
    position = checkpoint.get(name)
    size = hour_file.path.stat().st_size
    if position is not None and position.offset > size:
        logger.warning("path=%s event=shrunk offset=%d size=%d", name, position.offset, size)
        position = None
    if (position is not None and position.offset == size) or size < _HEADER_START_BYTES:
        return
    try:
        silk = open_silk(hour_file.path)
    except SilkTruncatedError:  # header still being written
        return
    with silk:
        yield from silk.iter_positioned(rows, resume=position, tail_ok=True)


def iter_follow(
    root: str | os.PathLike,
    checkpoint_path: str | os.PathLike,
    *,
    poll_s: float = 5.0,
    stop: threading.Event | None = None,
    rows: int = DEFAULT_ROWS,
    sensors: Collection[int] | None = None,
    types: Collection[str] | None = None,
    start_ms: int | None = None,
    once: bool = False,
) -> Iterator[FlowBatch]:
    """Every flow of a repository, then every flow added to it, forever (or until ``stop``).

    Parameters
    ----------
    root
        The repository root (``%T/%Y/%m/%d/%x`` below it).
    checkpoint_path
        JSON file remembering how far each hour file was read; created if missing.
    poll_s
        Seconds between scans when nothing new was found. Default - 5.
    stop
        Set it to end the iteration cleanly: checked after every batch and while
        idle. Batches delivered before it is set are not delivered again.
        Default - run forever.
    rows
        Maximum flows per batch. Default - 65,536.
    sensors, types, start_ms
        Which hour files to follow (see ``iter_repository``). Default - all.
    once
        Return after one scan (read what is complete now, e.g. from cron).
        Default - False.
    """
    root = Path(root)
    checkpoint = Checkpoint(checkpoint_path)
    stop = stop or threading.Event()
    while True:
        for hour_file in iter_repository(root, sensors=sensors, types=types, start_ms=start_ms):
            name = hour_file.path.relative_to(root).as_posix()
            for batch, position in _iter_new(hour_file, name, checkpoint, rows):
                yield batch
                checkpoint.set(name, position)  # the caller is back: the batch is consumed
                if stop.is_set():
                    return
        if once or stop.wait(poll_s):
            return
