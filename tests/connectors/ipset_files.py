"""IPset files laid out as SiLK 3.19's ``skipset.c`` writes them (no SiLK here to run
``rwsetbuild``, and no real ``.set`` file in reach): one writer per record version.

Each takes CIDR blocks (``ipaddress`` networks of one family, disjoint) and writes
the header SiLK writes (FT_IPSET, record size 1, the IPset entry id 7 where the
version has one) and the data section in the requested byte order and compression:

* 2 (classc): every /24 that holds addresses, as its base and 8 words of bitmap;
* 3 (radix): a node section (zeros: readers skip it) and the leaves, the first empty;
* 4 (cidrbmap): blocks of /24 (/120) or larger as CIDR, the rest as /24 bitmaps;
* 5 (slash64): blocks of /64 or larger on their high half, the rest under a 0x82
  high half, as CIDR (/120 or larger) or /120 bitmaps.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import defaultdict
from pathlib import Path

from silkwatch.connectors.silk.codecs import compress_block
from silkwatch.connectors.silk.header import Compression, HeaderEntry, SilkHeader, encode_header

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def write_ipset(
    path: Path,
    blocks: list[Network],
    version: int,
    *,
    big_endian: bool = False,
    compression: int = Compression.NONE,
) -> Path:
    """Write ``blocks`` as an IPset of record ``version`` (2-5)."""
    order = ">" if big_endian else "<"
    ipv6 = blocks[0].version == 6 if blocks else version == 5
    blocks = sorted(blocks, key=lambda n: (int(n.network_address), n.prefixlen))
    data, entry = _WRITERS[version](blocks, order, ipv6)
    entries = () if entry is None else (HeaderEntry(7, struct.pack(">6I", *entry)),)
    header = SilkHeader(
        file_format=0x1D,
        rec_version=version,
        rec_size=1,
        compression=compression,
        big_endian=big_endian,
        silk_version=3_019_001,
        entries=entries,
    )
    body = data
    if compression != Compression.NONE:
        body = b"".join(  # SiLK's blocks hold at most 64 KiB of data
            struct.pack(">II", len(packed := compress_block(compression, piece)), len(piece))
            + packed
            for piece in (data[i : i + 65536] for i in range(0, len(data), 65536))
        )
    path.write_bytes(encode_header(header) + body)
    return path


def _bitmaps(blocks: list[Network]) -> dict[int, int]:
    """Addresses of blocks, per /24 (/120) base: base → 256-bit int."""
    maps: dict[int, int] = defaultdict(int)
    for block in blocks:
        first, size = int(block.network_address), block.num_addresses
        if size >= 256:  # whole /24s (/120s)
            for base in range(first, first + size, 256):
                maps[base] = (1 << 256) - 1
            continue
        for address in range(first, first + size):
            maps[address & ~0xFF] |= 1 << (address & 0xFF)
    return maps


def _bitmap_words(bits: int, order: str) -> bytes:
    return struct.pack(f"{order}8I", *((bits >> (32 * i)) & 0xFFFFFFFF for i in range(8)))


def _classc(blocks, order, ipv6):
    maps = _bitmaps(blocks)
    data = b"".join(
        struct.pack(f"{order}I", base) + _bitmap_words(bits, order)
        for base, bits in sorted(maps.items())
    )
    return data, None


def _radix(blocks, order, ipv6):
    node_size, leaf_size = (96, 24) if ipv6 else (80, 8)
    nodes = max(1, len(blocks) // 4)  # how many interior nodes does not matter to a reader
    leaves = [bytes(leaf_size)]  # the first leaf holds no data
    for block in blocks:
        address = int(block.network_address)
        if ipv6:
            words = struct.pack(f"{order}QQ", address >> 64, address & (2**64 - 1))
            leaves.append(struct.pack("B7x", block.prefixlen) + words)
        else:
            leaves.append(struct.pack("B3x", block.prefixlen) + struct.pack(f"{order}I", address))
    data = bytes(nodes * node_size) + b"".join(leaves)
    return data, (16, len(leaves), leaf_size, nodes, node_size, 0)


def _cidrbmap(blocks, order, ipv6):
    big_enough = 120 if ipv6 else 24
    parts = []
    small = [b for b in blocks if b.prefixlen > big_enough]
    maps = _bitmaps(small)
    items = [(int(b.network_address), b.prefixlen) for b in blocks if b.prefixlen <= big_enough]
    items += [(base, -1) for base in maps]
    for address, prefix in sorted(items):
        raw = address.to_bytes(16, "big") if ipv6 else struct.pack(f"{order}I", address)
        if prefix < 0:
            parts.append(raw + bytes([0x81]) + _bitmap_words(maps[address], order))
        else:
            parts.append(raw + bytes([prefix]))
    return b"".join(parts), (0, 0, 16 if ipv6 else 4, 0, 0, 0)


def _slash64(blocks, order, ipv6):
    parts = []
    by_high: dict[int, list[Network]] = defaultdict(list)
    for block in blocks:
        address = int(block.network_address)
        if block.prefixlen <= 64:
            parts.append((address >> 64, struct.pack(f"{order}QB", address >> 64, block.prefixlen)))
        else:
            by_high[address >> 64].append(block)
    for high, members in by_high.items():
        lows = []
        maps = _bitmaps([b for b in members if b.prefixlen > 120])
        items = [(int(b.network_address), b.prefixlen) for b in members if b.prefixlen <= 120]
        items += [(base, -1) for base in maps]
        for address, prefix in sorted(items):
            low = address & (2**64 - 1)
            if prefix < 0:
                lows.append(
                    struct.pack(f"{order}QB", low, 0x81) + _bitmap_words(maps[address], order)
                )
            else:
                lows.append(struct.pack(f"{order}QB", low, prefix))
        parts.append((high, struct.pack(f"{order}QB", high, 0x82) + b"".join(lows)))
    return b"".join(part for _, part in sorted(parts)), (0, 0, 16, 0, 0, 0)


_WRITERS = {2: _classc, 3: _radix, 4: _cidrbmap, 5: _slash64}
