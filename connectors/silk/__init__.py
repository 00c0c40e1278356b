"""SiLK flow files: read (every flow format), write, walk and follow a repository."""

from silkwatch.connectors.silk.exceptions import SilkFormatError, SilkWriteError
from silkwatch.connectors.silk.follow import iter_follow
from silkwatch.connectors.silk.header import (
    Compression,
    FileFormat,
    HeaderEntry,
    PackedFile,
    SilkHeader,
)
from silkwatch.connectors.silk.reader import (
    Position,
    SilkFile,
    open_silk,
    read_batches,
    read_header,
)
from silkwatch.connectors.silk.repository import iter_repository
from silkwatch.connectors.silk.writer import SilkWriter

__all__ = [
    "Compression",
    "FileFormat",
    "HeaderEntry",
    "PackedFile",
    "Position",
    "SilkFile",
    "SilkFormatError",
    "SilkHeader",
    "SilkWriteError",
    "SilkWriter",
    "iter_follow",
    "iter_repository",
    "open_silk",
    "read_batches",
    "read_header",
]
