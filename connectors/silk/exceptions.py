"""Errors raised while reading or writing SiLK flow files.

Every class states where the fault is (file and byte offset) in its message and
carries a fixed ``reason`` label, so a stage wrapper can count decode errors by
kind without parsing messages.
"""

from __future__ import annotations

from silkwatch.detectors.exceptions import SilkwatchError


class SilkFormatError(SilkwatchError):
    """The bytes are not a SiLK flow file we can decode.

    Reads ``silk: day.rw offset 4096: truncated record (52 of 88 bytes)``.

    Parameters
    ----------
    path
        The file name as the user gave it (``-`` for standard input).
    offset
        Byte offset of the fault in the file (in the decompressed stream for a
        whole-file gzip).
    detail
        What is wrong there, in words.
    """

    reason = "bad_format"

    def __init__(self, path: str, offset: int, detail: str) -> None:
        self.path = str(path)
        self.offset = offset
        self.detail = detail
        super().__init__(f"silk: {self.path} offset {offset}: {detail}")


class SilkHeaderError(SilkFormatError):
    """The file header or one of its entries is malformed."""

    reason = "bad_header"


class SilkUnsupportedError(SilkFormatError):
    """A well-formed file in a format, version or codec we cannot decode."""

    reason = "unsupported"


class SilkTruncatedError(SilkFormatError):
    """The file ends inside a header, a record or a compressed block."""

    reason = "truncated_record"


class SilkBlockError(SilkFormatError):
    """A compressed block has absurd lengths or fails to decompress."""

    reason = "bad_block"


class _PathError(SilkwatchError):
    """An error about a whole file rather than a byte in it."""

    prefix = "silk"

    def __init__(self, path: str, detail: str) -> None:
        self.path = str(path)
        self.detail = detail
        super().__init__(f"{self.prefix}: {self.path}: {detail}")


class SilkWriteError(_PathError):
    """Flows that the chosen output format cannot hold (e.g. IPv6 in FT_RWGENERIC)."""

    reason = "unencodable"


class SilkCheckpointError(_PathError):
    """The follow-mode checkpoint file cannot be read or written."""

    reason = "bad_checkpoint"
    prefix = "silk checkpoint"
