"""Write flow batches as SiLK files that SiLK's own tools read.

Used for fixtures, benchmarks and the demo, and to append to repository hour
files the way rwflowappend does. Only the layouts that store every column of
a flow batch plainly are written (FT_RWIPV6ROUTING v1/v3, FT_RWGENERIC v5 for
IPv4), so a round trip is lossless; what does not fit is refused, not dropped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import BinaryIO

from silkwatch.connectors.silk.codecs import UnsupportedCodec, check_codec, compress_block
from silkwatch.connectors.silk.exceptions import SilkWriteError
from silkwatch.connectors.silk.header import (
    Compression,
    EntryId,
    FileFormat,
    HeaderEntry,
    PackedFile,
    SilkHeader,
    encode_header,
)
from silkwatch.connectors.silk.layouts import Layout, encode, find_layout
from silkwatch.connectors.silk.reader import read_header
from silkwatch.detectors.schema import FlowBatch

logger = logging.getLogger(__name__)

#: SiLK's default block size; blocks hold ``BLOCK_BYTES - BLOCK_BYTES % rec_size`` bytes
BLOCK_BYTES = 65_536
#: the SiLK release whose reader accepted our headers (the header field is informational)
SILK_VERSION = 3_019_001
_DEFAULT_VERSION = {FileFormat.FT_RWIPV6ROUTING: 1, FileFormat.FT_RWGENERIC: 5}


def _writable_layout(file_format: int, rec_version: int, path: str) -> Layout:
    layout = find_layout(file_format, rec_version)
    if layout is None or not layout.writable:
        raise SilkWriteError(path, f"cannot write format 0x{file_format:02X} version {rec_version}")
    return layout


class SilkWriter:
    """Stream flow batches into a SiLK file (a context manager).

    Parameters
    ----------
    target
        Path or binary file object to write to.
    file_format
        ``FileFormat.FT_RWIPV6ROUTING`` (IPv4 and IPv6) or ``FileFormat.FT_RWGENERIC``
        (IPv4 only). Default - FT_RWIPV6ROUTING, SiLK 3's default output.
    rec_version
        Record version. Default - SiLK's writer default (1 or 5).
    compression
        ``Compression.NONE`` or ``ZLIB`` (LZO/Snappy if installed).
        Default - NONE, SiLK 3.19's default.
    big_endian
        Record byte order. Default - False (little-endian, as SiLK on x86).
    entries
        Header entries (probename, packedfile, invocation, annotation, ...), in order.
    silk_version
        The SiLK release the header claims wrote the file (informational).
        Default - 3.19.1.
    append
        Append records to an existing file at ``target`` in that file's own
        format, byte order and compression, as rwflowappend does; the other
        format arguments are ignored. Default - False.

    Examples
    --------
    >>> import io
    >>> from silkwatch.detectors.schema import make_batch
    >>> out = io.BytesIO()
    >>> with SilkWriter(out, compression=Compression.ZLIB) as writer:
    ...     writer.write(make_batch(sip=["10.0.0.1"], dip=["2001:db8::1"], bytes=[100]))
    >>> len(out.getvalue()) > 88
    True
    """

    def __init__(
        self,
        target: str | os.PathLike | BinaryIO,
        *,
        file_format: int = FileFormat.FT_RWIPV6ROUTING,
        rec_version: int | None = None,
        compression: int = Compression.NONE,
        big_endian: bool = False,
        entries: Iterable[HeaderEntry] = (),
        silk_version: int = SILK_VERSION,
        append: bool = False,
    ) -> None:
        self.path = os.fspath(target) if isinstance(target, str | os.PathLike) else "<stream>"
        if append:
            self.header = read_header(target)
        else:
            version = (
                rec_version if rec_version is not None else _DEFAULT_VERSION.get(file_format, 0)
            )
            layout = _writable_layout(file_format, version, self.path)
            self.header = SilkHeader(
                file_format=file_format,
                rec_version=version,
                rec_size=layout.rec_size,
                compression=compression,
                big_endian=big_endian,
                silk_version=silk_version,
                entries=tuple(entries),
            )
        self.layout = _writable_layout(self.header.file_format, self.header.rec_version, self.path)
        try:
            check_codec(self.header.compression)
        except UnsupportedCodec as exc:
            raise SilkWriteError(self.path, str(exc)) from exc
        self.block_bytes = BLOCK_BYTES - BLOCK_BYTES % self.layout.rec_size
        self.records_written = 0
        self._pending = bytearray()
        if isinstance(target, str | os.PathLike):
            self._stream: BinaryIO = open(target, "ab" if append else "wb")  # noqa: SIM115
            self._owns = True
        else:
            self._stream, self._owns = target, False
            if append:
                self._stream.seek(0, os.SEEK_END)
        if not append:
            self._stream.write(encode_header(self.header))

    def __enter__(self) -> SilkWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def write(self, batch: FlowBatch) -> None:
        """Append the flows of ``batch`` (full blocks go out as soon as they fill)."""
        try:
            records = encode(self.layout, batch, self.header.big_endian)
        except ValueError as exc:
            raise SilkWriteError(self.path, str(exc)) from exc
        self.records_written += len(batch)
        if self.header.compression == Compression.NONE:
            self._stream.write(records)
            return
        self._pending += records
        full = len(self._pending) - len(self._pending) % self.block_bytes
        for start in range(0, full, self.block_bytes):
            self._write_block(memoryview(self._pending)[start : start + self.block_bytes])
        del self._pending[:full]

    def flush(self) -> None:
        """Write buffered records now, as a short block if compressed (a follower sees them)."""
        if self._pending:
            self._write_block(memoryview(self._pending))
            self._pending.clear()
        self._stream.flush()

    def close(self) -> None:
        """Flush and, if this writer opened the file, close it."""
        self.flush()
        if self._owns:
            self._stream.close()
        logger.debug("path=%s records=%d", self.path, self.records_written)

    def _write_block(self, data: memoryview) -> None:
        payload = compress_block(self.header.compression, bytes(data))
        self._stream.write(len(payload).to_bytes(4, "big") + len(data).to_bytes(4, "big"))
        self._stream.write(payload)


def hour_file_entries(packed: PackedFile, invocation: str | None = None) -> list[HeaderEntry]:
    """The header entries rwflowpack gives a repository hour file."""
    entries = [HeaderEntry.packedfile(packed.start_ms, packed.flowtype, packed.sensor)]
    if invocation:
        entries.append(HeaderEntry.text(EntryId.INVOCATION, invocation))
    return entries
