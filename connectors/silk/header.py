"""The SiLK file header: the 16-byte start and the list of header entries.

Header fields are always big-endian; only record bodies follow the byte order
the header declares (``silk-format.md`` §2–3). Entries we do not interpret are
kept as raw bytes, so a copied header can be written back unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from silkwatch.connectors.silk.exceptions import (
    SilkHeaderError,
    SilkTruncatedError,
    SilkUnsupportedError,
)

MAGIC = b"\xde\xad\xbe\xef"
#: every header written by SiLK >= 1.0; lower values are legacy headers
FILE_VERSION = 16
#: no header entry we accept is larger; caps what an untrusted length can allocate
MAX_ENTRY_BYTES = 1 << 20

_START = struct.Struct(">4sBBBBIHH")
_ENTRY = struct.Struct(">II")
_PACKEDFILE = struct.Struct(">qII")


class FileFormat(IntEnum):
    """Format ids of the files that hold flow records (``silk_files.h``)."""

    FT_RWIPV6 = 0x0B
    FT_RWIPV6ROUTING = 0x0C
    FT_RWAUGSNMPOUT = 0x0D
    FT_RWAUGROUTING = 0x0E
    FT_RWROUTED = 0x10
    FT_RWNOTROUTED = 0x11
    FT_RWSPLIT = 0x12
    FT_RWFILTER = 0x13
    FT_RWAUGMENTED = 0x14
    FT_RWAUGWEB = 0x15
    FT_RWGENERIC = 0x16
    FT_FLOWCAP = 0x1C
    FT_RWWWW = 0x1F


class Compression(IntEnum):
    """Block compression methods (header byte 7)."""

    NONE = 0
    ZLIB = 1
    LZO1X = 2
    SNAPPY = 3


class EntryId(IntEnum):
    """Header entry ids we interpret; others are kept raw."""

    END = 0
    PACKEDFILE = 1
    INVOCATION = 2
    ANNOTATION = 3
    PROBENAME = 4


@dataclass(frozen=True)
class HeaderEntry:
    """One header entry: its id and payload (without the 8-byte id/length prefix)."""

    entry_id: int
    payload: bytes

    @classmethod
    def packedfile(cls, start_ms: int, flowtype: int, sensor: int) -> HeaderEntry:
        """The entry hour files carry: start hour (truncated like SiLK), flowtype, sensor."""
        return cls(
            EntryId.PACKEDFILE, _PACKEDFILE.pack(start_ms - start_ms % 3_600_000, flowtype, sensor)
        )

    @classmethod
    def text(cls, entry_id: int, text: str) -> HeaderEntry:
        """An invocation, annotation or probename entry (NUL-terminated text)."""
        return cls(entry_id, text.encode() + b"\0")

    def as_text(self) -> str:
        """The payload up to its first NUL, decoded leniently (it is free text)."""
        return self.payload.split(b"\0", 1)[0].decode("utf-8", "replace")


@dataclass(frozen=True)
class PackedFile:
    """Start hour and the sensor/flowtype every record of an hour file shares."""

    start_ms: int
    flowtype: int
    sensor: int


@dataclass(frozen=True)
class SilkHeader:
    """Everything a SiLK file says about itself before its records.

    ``length`` is the total header length in bytes (where records start); it is
    0 for a header built in memory that has not been encoded yet.
    """

    file_format: int
    rec_version: int
    rec_size: int
    compression: int = Compression.NONE
    big_endian: bool = False
    silk_version: int = 0
    file_version: int = FILE_VERSION
    entries: tuple[HeaderEntry, ...] = field(default_factory=tuple)
    length: int = 0

    @property
    def byte_order(self) -> str:
        """``"big"`` or ``"little"``: the order of multi-byte record fields."""
        return "big" if self.big_endian else "little"

    @property
    def format_name(self) -> str:
        """``FT_RWIPV6ROUTING`` etc., or ``0x..`` for a format we do not know."""
        try:
            return FileFormat(self.file_format).name
        except ValueError:
            return f"0x{self.file_format:02X}"

    @property
    def packedfile(self) -> PackedFile | None:
        """The packedfile entry (hour-packed files), or None."""
        for entry in self.entries:
            if entry.entry_id == EntryId.PACKEDFILE:
                return PackedFile(*_PACKEDFILE.unpack(entry.payload))
        return None

    def texts(self, entry_id: int) -> list[str]:
        """The text of every entry with this id, in file order."""
        return [entry.as_text() for entry in self.entries if entry.entry_id == entry_id]

    @property
    def invocations(self) -> list[str]:
        """Command lines of the tools that wrote this file, oldest first."""
        return self.texts(EntryId.INVOCATION)

    @property
    def annotations(self) -> list[str]:
        """Free-text notes (``--note-add``)."""
        return self.texts(EntryId.ANNOTATION)

    @property
    def probename(self) -> str | None:
        """The flowcap probe name, if any."""
        names = self.texts(EntryId.PROBENAME)
        return names[0] if names else None


def _check_packedfile(payload: bytes, path: str, offset: int) -> None:
    """SiLK's own checks on a packedfile entry (length 24, ids that fit a record)."""
    if len(payload) != _PACKEDFILE.size:
        raise SilkHeaderError(
            path, offset, f"packedfile entry of length {len(payload) + 8}, not 24"
        )
    _, flowtype, sensor = _PACKEDFILE.unpack(payload)
    if flowtype > 0xFF or sensor > 0xFFFF:
        raise SilkHeaderError(
            path, offset, f"packedfile flowtype {flowtype} or sensor {sensor} out of range"
        )


def parse_header(read: Callable[[int], bytes], path: str) -> SilkHeader:
    """Read a header from a stream positioned at offset 0.

    ``read(n)`` must return ``n`` bytes, fewer only at end of input. Nothing is
    read past the end marker, so the stream is left at the first record.
    """
    start = read(_START.size)
    if not start or start[:4] != MAGIC[: len(start)]:
        raise SilkHeaderError(path, 0, f"not a SiLK file (magic {start[:4].hex() or 'missing'})")
    if len(start) >= 7 and start[6] < FILE_VERSION:
        raise SilkUnsupportedError(
            path, 6, f"legacy SiLK header (file version {start[6]}, written before SiLK 1.0)"
        )
    if len(start) < _START.size:
        raise SilkTruncatedError(path, len(start), f"truncated header ({len(start)} of 16 bytes)")
    _, flags, file_format, file_version, compression, silk_version, rec_size, rec_version = (
        _START.unpack(start)
    )
    if compression not in iter(Compression):
        raise SilkUnsupportedError(path, 7, f"unknown compression method {compression}")
    entries, offset = [], _START.size
    while True:
        prefix = read(_ENTRY.size)
        if len(prefix) < _ENTRY.size:
            raise SilkTruncatedError(
                path, offset + len(prefix), f"truncated header entry ({len(prefix)} of 8 bytes)"
            )
        entry_id, entry_len = _ENTRY.unpack(prefix)
        if not _ENTRY.size <= entry_len <= MAX_ENTRY_BYTES:
            raise SilkHeaderError(
                path, offset, f"header entry {entry_id} has absurd length {entry_len}"
            )
        payload = read(entry_len - _ENTRY.size)
        if len(payload) < entry_len - _ENTRY.size:
            raise SilkTruncatedError(
                path,
                offset + _ENTRY.size + len(payload),
                f"truncated header entry {entry_id} ({len(payload) + 8} of {entry_len} bytes)",
            )
        if entry_id == EntryId.PACKEDFILE:
            _check_packedfile(payload, path, offset)
        offset += entry_len
        if entry_id == EntryId.END:
            break
        entries.append(HeaderEntry(entry_id, payload))
    return SilkHeader(
        file_format=file_format,
        rec_version=rec_version,
        rec_size=rec_size,
        compression=compression,
        big_endian=bool(flags & 1),
        silk_version=silk_version,
        file_version=file_version,
        entries=tuple(entries),
        length=offset,
    )


def encode_header(header: SilkHeader) -> bytes:
    """The header bytes, padded like SiLK so its length is a multiple of ``rec_size``."""
    parts = [
        _START.pack(
            MAGIC,
            int(header.big_endian),
            header.file_format,
            header.file_version,
            header.compression,
            header.silk_version,
            header.rec_size,
            header.rec_version,
        )
    ]
    for entry in header.entries:
        parts.append(_ENTRY.pack(entry.entry_id, _ENTRY.size + len(entry.payload)) + entry.payload)
    length = sum(map(len, parts)) + _ENTRY.size
    modulus = max(header.rec_size, 1)
    pad = (modulus - length % modulus) % modulus
    parts.append(_ENTRY.pack(EntryId.END, _ENTRY.size + pad) + bytes(pad))
    return b"".join(parts)
