"""Writing ``-o PATH`` like a command-line tool: one helper for every command that writes.

* A regular file (or a new path) is written to a temporary file beside it and
  renamed over it at the end, so a reader never sees half a file and a failed
  run leaves the old one in place.
* A symlink, FIFO, character device (``/dev/null``, ``/dev/stdout``) or socket is
  opened and written through: renaming over it would replace the link or the
  device with a regular file.
* The new file's mode is ``0666 & ~umask``, as ``open(2)`` gives, not the 0600 of a
  temporary file.
* A missing folder or a refused permission is one error line, not a traceback.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from silkwatch.detectors.exceptions import SilkwatchError

#: names that mean standard output / standard error, as SiLK's tools take them
STDOUT_NAMES = ("-", "stdout")
STDERR_NAMES = ("stderr",)


class OutputError(SilkwatchError):
    """The output cannot be created or written (missing folder, permission, full disk)."""

    reason = "output_error"

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: cannot write: {detail}")
        self.path = path


def _output_error(name: str, exc: OSError) -> OutputError:
    """The one line for an output that cannot be created."""
    detail = "no such folder" if isinstance(exc, FileNotFoundError) else exc.strerror
    return OutputError(name, detail or str(exc))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _is_regular_or_new(path: Path) -> bool:
    """True when renaming over ``path`` is safe: it does not exist or is a plain file."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return True
    return stat.S_ISREG(mode)


@contextlib.contextmanager
def open_output(target: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary stream for ``target``: a path, or ``-``/``stdout``/``stderr``.

    Standard output and error are not closed. For a regular file the data lands
    only if the ``with`` block completes; otherwise the old file stays as it was.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with open_output(folder / "out.txt") as out:
    ...     _ = out.write(b"hello")
    >>> (folder / "out.txt").read_bytes()
    b'hello'
    """
    name = os.fspath(target)
    if name in STDOUT_NAMES:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    if name in STDERR_NAMES:
        yield sys.stderr.buffer
        sys.stderr.buffer.flush()
        return
    path = Path(name)
    if not _is_regular_or_new(path):
        try:
            stream = open(path, "wb")  # noqa: SIM115 - closed below, errors made one line
        except OSError as exc:
            raise OutputError(name, exc.strerror or str(exc)) from exc
        with stream:
            try:
                yield stream
            except OSError as exc:
                raise OutputError(name, exc.strerror or str(exc)) from exc
        return
    folder = path.parent
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise _output_error(name, exc) from exc
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as stream:
            yield stream
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise OutputError(name, exc.strerror or str(exc)) from exc
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def open_stream(target: str | os.PathLike) -> BinaryIO:
    """``target`` opened for writing as SiLK's ``--output-path`` does: in place, no temp file.

    For writers that close the stream themselves (the text tables of ``cut``, ``count``,
    ``uniq``, ``stats``); standard output and error are returned as they are. A
    missing folder or a refused permission is one :class:`OutputError` line.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "table.txt")
    >>> with open_stream(path) as out:
    ...     _ = out.write(b"x|")
    >>> open(path, "rb").read()
    b'x|'
    """
    name = os.fspath(target)
    if name in STDOUT_NAMES:
        return sys.stdout.buffer
    if name in STDERR_NAMES:
        return sys.stderr.buffer
    try:
        return open(name, "wb")
    except OSError as exc:
        raise _output_error(name, exc) from exc


@contextlib.contextmanager
def open_text_output(target: str | os.PathLike | None, encoding: str = "utf-8") -> Iterator:
    """As :func:`open_output` for text; ``None`` is standard output."""
    if target is None or os.fspath(target) in STDOUT_NAMES:
        yield sys.stdout
        sys.stdout.flush()
        return
    with open_output(target) as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, write_through=False)
        try:
            yield text
            text.flush()
        finally:
            text.detach()
