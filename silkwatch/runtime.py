"""Process-wide settings for a command that moves millions of flows a second.

``silkwatch.cli.main`` applies them first thing, before numpy is imported.
Both are measured on the 2-core CI machine (``perf``, ``bench/``):

* numpy's OpenBLAS starts one thread per core that spins after import:
  silkwatch does no linear algebra worth threading, and those threads took
  5 % of a decode run's CPU, CPU the broker and the worker need;
* flow batches are several MB each and come and go many times a second:
  glibc's default is to hand blocks that size back to the kernel and fault
  them in again, zeroed, on the next batch (0.1–0.2 s of system time per 10 M
  flows). Keeping them in the heap makes ``silkwatch stats`` ~7 % faster.

An explicit environment setting (``OPENBLAS_NUM_THREADS``, glibc's
``MALLOC_*_`` variables) still wins: these are only defaults.
"""

from __future__ import annotations

import ctypes
import gc
import os

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: the most glibc accepts for its mmap threshold (half its 64 MiB heap size)
_HEAP_BLOCKS_UP_TO = 32 << 20
_KEEP_FREE_UP_TO = 256 << 20


def tune_process() -> None:
    """One BLAS thread, and freed batch memory kept for the next batch."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if any(name.startswith("MALLOC_") for name in os.environ):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return
    mallopt(_M_MMAP_THRESHOLD, _HEAP_BLOCKS_UP_TO)
    mallopt(_M_TRIM_THRESHOLD, _KEEP_FREE_UP_TO)


def freeze_imports() -> None:
    """Leave the objects made so far out of the interpreter's later garbage collections.

    A command that reads millions of flows in a few tenths of a second (``count``,
    ``uniq``, ``stats``: rwcount takes 0.3 s on 8 M records) paid ~25-30 ms for full
    collections, at exit and during the run, that went through every object numpy
    and the standard library made at import. Called when the command starts: those
    objects were made before it, so they are not its garbage.
    """
    gc.freeze()
