"""SiLK flow files: read (every flow format), write, walk and follow a repository."""

from connectors.silk.exceptions import SilkFormatError, SilkWriteError
from connectors.silk.follow import iter_follow
from connectors.silk.header import Compression, FileFormat, HeaderEntry, PackedFile, SilkHeader
from connectors.silk.reader import Position, SilkFile, open_silk, read_batches, read_header
from connectors.silk.repository import iter_repository
from connectors.silk.writer import SilkWriter

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
