"""One entry point for every flow input: SiLK binary, nfcapd binary, rwcut, nfdump CSV, Zeek, Argus.

Commands call :func:`read_flows` so that each of them accepts each input. The
format is sniffed from the first bytes (SiLK ``DE AD BE EF``, gzip, the nfcapd
magic) and then from the first text line, or forced with ``format=``.
"""

from __future__ import annotations

import gzip
import io
import itertools
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

from silkwatch.connectors.flowtext import (
    READERS,
    ErrorPolicy,
    FlowTextError,
    ReadSummary,
    UnknownFormatError,
    sniff_format,
    stop_on_malformed,
)
from silkwatch.connectors.flowtext.nfdump import NFCAPD_MAGIC, read_nfcapd
from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.schema import FlowBatch

SILK_MAGIC = b"\xde\xad\xbe\xef"
GZIP_MAGIC = b"\x1f\x8b"
#: pcap (both byte orders, micro- and nanosecond) and pcapng section headers
PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"

#: every value ``format=`` takes; ``auto`` sniffs; ``pcap`` runs the exporter chain
FORMATS = ("auto", "silk", "nfcapd", *READERS, "pcap")

#: lines handed to the text sniffer
SNIFF_LINES = 5


class InputOpenError(SilkwatchError):
    """An input that cannot be opened (missing, a folder, no permission)."""

    reason = "io_error"


def _open(path_or_dash: str | Path, stack: ExitStack) -> BinaryIO:
    """The file, or stdin for ``-``, as a buffered binary stream we can peek into."""
    if str(path_or_dash) == "-":
        stdin = sys.stdin.buffer
        # a replaced stdin (BytesIO in tests, some wrappers) cannot peek: buffer it
        return stdin if hasattr(stdin, "peek") else io.BufferedReader(_Damage(stdin, "-"))
    try:
        return stack.enter_context(open(path_or_dash, "rb", buffering=1 << 16))
    except OSError as exc:
        raise InputOpenError(f"{path_or_dash}: cannot open: {exc.strerror or exc}") from exc


def sniff_binary(head: bytes, path_or_dash: str | Path) -> str | None:
    """``silk``, ``nfcapd``, ``pcap`` or None (text) from a file's first bytes.

    A gzip stream is SiLK when it is stdin or its first four inflated bytes are
    the SiLK magic, and gzipped text (``conn.log.gz``) otherwise.
    """
    if head.startswith(SILK_MAGIC):
        return "silk"
    if head.startswith(NFCAPD_MAGIC):
        return "nfcapd"
    if head[:4] in PCAP_MAGICS or head.startswith(PCAPNG_MAGIC):
        return "pcap"
    if head.startswith(GZIP_MAGIC):
        if str(path_or_dash) == "-":
            return "silk"
        with gzip.open(path_or_dash, "rb") as inflated:
            return "silk" if inflated.read(4) == SILK_MAGIC else None
    return None


def read_flows(
    path_or_dash: str | Path,
    *,
    format: str = "auto",
    rows: int = 65_536,
    on_error: ErrorPolicy = stop_on_malformed,
    summary: ReadSummary | None = None,
    columns: frozenset[str] | None = None,
    in_place: bool = False,
) -> Iterator[FlowBatch]:
    """Batches of ``FLOW_DTYPE`` flows from any supported file, or stdin for ``-``.

    :param path_or_dash: a file path, or ``-`` for standard input
    :param format: one of :data:`FORMATS`. Default - ``auto`` (sniffed)
    :param rows: most flows per batch. Default - 65,536
    :param on_error: what to do with a malformed text line (``(error) -> skip?``).
        Default - stop: the first bad line is an error naming file and line
        (``silkwatch.connectors.flowtext.policy.allow_bad_lines`` skips up to N, counted)
    :param summary: filled with the text reader's counts (lines, flows, skipped)
    :param columns: the batch columns the caller reads; a SiLK file decodes only
        those (the others keep their defaults), text formats fill every column.
        Default - all
    :param in_place: a SiLK file whose records store every one of ``columns`` plainly
        gives views of its records with just those columns, in the file's widths
        (``SilkFile.iter_positioned``). Default - False

    Example::

        flows = sum(len(batch) for batch in read_flows("conn.log"))  # Zeek, sniffed
        for batch in read_flows("-", format="rwcut"):                # rwcut text on stdin
            ...
    """
    if format not in FORMATS:
        raise FlowTextError(str(path_or_dash), 0, f"unknown format {format!r}; one of {FORMATS}")
    name = str(path_or_dash)
    with ExitStack() as stack:
        raw = _open(path_or_dash, stack)
        binary = sniff_binary(raw.peek(4)[:4], path_or_dash) if format == "auto" else format
        if binary == "pcap":
            yield from _read_pcap(name, explicit=format == "pcap", rows=rows)
            return
        if binary == "silk":
            # the SiLK reader is optional at import
            from silkwatch.connectors.silk import read_batches

            source = raw if name == "-" else Path(name)
            yield from read_batches(source, rows=rows, columns=columns, in_place=in_place)
            return
        summary = summary or ReadSummary(name, format)
        if binary == "nfcapd":
            if name == "-":
                raise FlowTextError(name, 0, "nfcapd files must be named, not piped")
            summary.format = "nfcapd"
            yield from read_nfcapd(Path(name), rows=rows, summary=summary, on_error=on_error)
            summary.log()
            return
        if raw.peek(2)[:2] == GZIP_MAGIC:
            raw = stack.enter_context(gzip.GzipFile(fileobj=raw))
        text = io.TextIOWrapper(_Damage(raw, name), encoding="utf-8", errors="replace")
        head = list(itertools.islice(text, SNIFF_LINES))
        if not head:  # an empty file or pipe holds no flows; that is not an error
            summary.log()
            return
        text_format = sniff_format(head) if binary in ("auto", None) else binary
        if text_format is None:
            first = head[0][:60].rstrip()
            raise UnknownFormatError(name, 1, f"not a flow format we know: {first!r}")
        summary.format = text_format
        lines: Iterable[str] = itertools.chain(head, text)
        yield from READERS[text_format](lines, name, rows=rows, summary=summary, on_error=on_error)
        summary.log()


class _Damage(io.RawIOBase):
    """A (gzip) byte stream whose read errors become one ``FlowTextError`` line.

    A damaged ``conn.log.gz`` raises ``zlib.error``/``EOFError``/``BadGzipFile``
    mid-read; the batches before the damage have been delivered by then.
    """

    def __init__(self, raw: BinaryIO, name: str) -> None:
        self._raw, self._name, self._offset = raw, name, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._raw.read(len(buffer))
        except (OSError, EOFError, zlib.error) as exc:
            detail = f"damaged after {self._offset:,} bytes ({exc or type(exc).__name__})"
            raise FlowTextError(self._name, 0, detail) from exc
        buffer[: len(data)] = data
        self._offset += len(data)
        return len(data)


def _read_pcap(name: str, *, explicit: bool, rows: int) -> Iterator[FlowBatch]:
    """A capture through softflowd → nfcapd → nfdump, when asked for by ``--input-format``."""
    if not explicit:
        raise UnknownFormatError(name, 0, "this is a pcap; use --input-format pcap")
    if name == "-":
        raise FlowTextError(name, 0, "a pcap must be named, not piped")
    from silkwatch.connectors.pcapflows import pcap_to_flows

    with tempfile.TemporaryDirectory(prefix="silkwatch-pcap-") as workdir:
        yield from pcap_to_flows(Path(name), Path(workdir), rows=rows)
