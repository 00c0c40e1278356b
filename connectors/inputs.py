"""What every command reads: many files, ``-``/``stdin``, directories, repository trees, globs.

One helper so that ``detect``, ``cut``, ``count``, ``uniq``, ``stats``, ``plot``,
``filter`` and ``sort`` accept the same inputs, as SiLK's tools do:

* no input named → standard input, unless it is a terminal (then one error line);
* ``-`` or ``stdin`` → standard input;
* a glob (``/data/silk/in/2015/06/17/*``) → its matches, sorted;
* a directory → its repository hour files (``%T/%Y/%m/%d/%x``), oldest hour first,
  or, when it holds none, every regular file under it, sorted by path.

A damaged file among many is reported in one line on stderr and the run goes on
with the next one, like rwfilter; :data:`FAULTS` counts them so that the command
line exits 1 at the end. With a single input the error ends the run, as before.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from silkwatch.connectors.silk.repository import iter_repository, parse_hour_file
from silkwatch.detectors.exceptions import SilkwatchError

if TYPE_CHECKING:  # the readers load when a command reads, not for its --help
    from silkwatch.connectors.flowtext import ErrorPolicy
    from silkwatch.detectors.schema import FlowBatch

STDIN_NAMES = ("-", "stdin")


class InputError(SilkwatchError):
    """An input that names nothing readable (no match, no input at all)."""

    reason = "no_input"


@dataclass
class Faults:
    """Inputs that failed part-way in this process (each already reported on stderr)."""

    messages: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        print(f"silkwatch: error: {message}", file=sys.stderr, flush=True)
        self.messages.append(message)


#: read by ``silkwatch.cli`` after a command: any fault means exit status 1
FAULTS = Faults()


def _directory_files(folder: Path) -> list[str]:
    """A repository's hour files (oldest first) or, failing that, every file under it."""
    hours = list(iter_repository(folder))
    if hours:
        return [str(hour.path) for hour in hours]
    return sorted(
        str(path)
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.parts[-1:])
    )


def resolve_inputs(names: Sequence[str], *, stdin_ok: bool | None = None) -> list[str]:
    """The files to read, in order, for what the user named (``-`` is standard input).

    :param names: paths, ``-``/``stdin``, directories and globs as typed
    :param stdin_ok: whether reading standard input is allowed when nothing is named.
        Default - when standard input is not a terminal

    >>> resolve_inputs(["stdin", "-"])
    ['-', '-']
    """
    if not names:
        if stdin_ok is None:
            stdin_ok = not sys.stdin.isatty()
        if not stdin_ok:
            raise InputError("no input: name a flow file, folder or glob, or pipe flows in")
        return ["-"]
    files: list[str] = []
    for name in names:
        if name in STDIN_NAMES:
            files.append("-")
        elif os.path.isdir(name):
            files.extend(_directory_files(Path(name)))
        elif glob.has_magic(name) and not os.path.exists(name):
            matches = sorted(glob.glob(name, recursive=True))
            if not matches:
                raise InputError(f"{name}: no file matches")
            files.extend(resolve_inputs(matches))
        else:
            files.append(name)
    return files


def repository_files(
    root: str | os.PathLike,
    *,
    sensors: Sequence[int] | None = None,
    types: Sequence[str] | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> list[str]:
    """rwfilter's file selection: the hour files of a repository that pass the filters."""
    if not os.path.isdir(root):
        raise InputError(f"{root}: not a SiLK repository folder")
    return [
        str(hour.path)
        for hour in iter_repository(
            Path(root), sensors=sensors, types=types, start_ms=start_ms, end_ms=end_ms
        )
    ]


def is_repository_file(name: str) -> bool:
    """Whether a path is named like a repository hour file (``in-S0_20090212.00``)."""
    return parse_hour_file(Path(name)) is not None


@dataclass
class InputRun:
    """Counts of one read over many inputs: ``files`` opened, ``failed`` (unopened or part-way)."""

    files: int = 0
    failed: int = 0


def iter_inputs(
    files: Sequence[str],
    *,
    format: str = "auto",
    rows: int = 65_536,
    columns: frozenset[str] | None = None,
    on_error: ErrorPolicy | None = None,
    run: InputRun | None = None,
    keep_going: bool | None = None,
    in_place: bool = False,
) -> Iterator[FlowBatch]:
    """Every batch of every file in order (see :func:`resolve_inputs` for the names).

    Each file's good records come first, then its error: with one file the error
    is raised, with several it is reported, counted in :data:`FAULTS`, and the next
    file is read.

    :param files: resolved names (:func:`resolve_inputs`)
    :param format: the input format, or ``auto`` to sniff each file. Default - auto
    :param rows: most flows per batch. Default - 65,536
    :param columns: the batch columns the caller reads (SiLK files decode only those)
    :param in_place: SiLK records may come as views with just ``columns`` (``read_flows``)
    :param on_error: the policy for malformed text lines. Default - stop at the first
    :param run: filled with the number of files read and failed
    :param keep_going: report a damaged file and go on even when it is the only one
        (``filter`` and ``sort`` write what was read, as rwfilter does). Default - only
        when there are several files
    """
    from silkwatch.connectors.flows import InputOpenError, read_flows
    from silkwatch.connectors.flowtext import stop_on_malformed

    on_error = on_error or stop_on_malformed
    run = run if run is not None else InputRun()
    for name in files:
        run.files += 1  # files opened, as rwfilter's statistics count them
        try:
            yield from read_flows(
                name,
                format=format,
                rows=rows,
                columns=columns,
                on_error=on_error,
                in_place=in_place,
            )
        except SilkwatchError as exc:
            if not (keep_going or (keep_going is None and len(files) > 1)):
                raise
            run.files -= isinstance(exc, InputOpenError)
            run.failed += 1
            FAULTS.add(str(exc))
