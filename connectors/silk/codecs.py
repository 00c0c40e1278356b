"""Block codecs: zlib (stdlib), LZO1X (lzokay) and Snappy (cramjam).

LZO and Snappy are optional packages: a reader without them still handles
uncompressed and zlib files and names the missing package when it meets a
block it cannot open. They are imported when a block first needs them, so
a command reading uncompressed files does not load them. Every decompressor
is bounded by the block's declared uncompressed length, so a hostile block
cannot make us allocate more.
"""

from __future__ import annotations

import functools
import importlib
import zlib
from types import ModuleType

from silkwatch.connectors.silk.header import Compression

#: SiLK rejects blocks larger than this (compressed or not)
MAX_BLOCK_BYTES = 1 << 20

_PACKAGE = {Compression.LZO1X: "lzokay", Compression.SNAPPY: "cramjam"}


class UnsupportedCodec(Exception):
    """The codec's package is not installed (the reader adds path and offset)."""


class CorruptBlock(Exception):
    """The payload does not decompress to the declared length."""


@functools.cache
def package(name: str) -> ModuleType | None:
    """The codec package ``name`` (lzokay: a manylinux wheel, no compiler or liblzo2 as
    python-lzo needed; cramjam), imported on first use; None when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - depends on the installation
        return None


def check_codec(method: int) -> None:
    """Raise ``UnsupportedCodec`` unless blocks of ``method`` can be (de)compressed."""
    if method in _PACKAGE and package(_PACKAGE[Compression(method)]) is None:
        raise UnsupportedCodec(
            f"unsupported compression method {method} (install {_PACKAGE[Compression(method)]})"
        )


def _snappy_length(payload: bytes) -> int:
    """The uncompressed length a raw Snappy block declares (its varint preamble)."""
    length = shift = 0
    for byte in payload[:5]:
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length
        shift += 7
    raise CorruptBlock("bad snappy length preamble")


def _inflate(payload: bytes, uncompressed_len: int) -> bytes | bytearray:
    """zlib into a buffer of the declared size (+1 to notice longer streams).

    cramjam inflates straight into the buffer, a quarter faster than the
    standard library; both refuse to write past its end.
    """
    cramjam = package("cramjam")
    if cramjam is not None:
        data = bytearray(uncompressed_len + 1)
        written = cramjam.zlib.decompress_into(payload, data)
        return memoryview(data)[:written]
    inflater = zlib.decompressobj()
    data = inflater.decompress(payload, uncompressed_len + 1)
    return data


def decompress_block(method: int, payload: bytes, uncompressed_len: int) -> bytes | memoryview:
    """One block's records; raises ``CorruptBlock`` unless exactly ``uncompressed_len`` bytes."""
    check_codec(method)
    try:
        if method == Compression.ZLIB:
            data = _inflate(payload, uncompressed_len)
        elif method == Compression.LZO1X:
            data = package("lzokay").decompress(payload, uncompressed_len)
        else:
            declared = _snappy_length(payload)
            if declared != uncompressed_len:
                raise CorruptBlock(
                    f"snappy block declares {declared} bytes, header {uncompressed_len}"
                )
            data = bytes(package("cramjam").snappy.decompress_raw(payload))
    except CorruptBlock:
        raise
    except Exception as exc:  # each codec has its own error type; all mean a bad block
        raise CorruptBlock(f"{Compression(method).name.lower()} error: {exc}") from exc
    if len(data) != uncompressed_len:
        raise CorruptBlock(f"decompressed to {len(data)} bytes, header says {uncompressed_len}")
    return data


def compress_block(method: int, data: bytes) -> bytes:
    """One block's payload; zlib at the default level reproduces SiLK's bytes."""
    check_codec(method)
    if method == Compression.ZLIB:
        return zlib.compress(data)
    if method == Compression.LZO1X:
        return package("lzokay").compress(data)
    return bytes(package("cramjam").snappy.compress_raw(data))
