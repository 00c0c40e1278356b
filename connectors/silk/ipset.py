"""SiLK IPset files (FT_IPSET, what ``rwset`` and ``rwsetbuild`` write), for rwfilter's
``--sipset/--dipset/--anyset/--nhipset`` and their ``--not-`` forms.

An IPset file is a SiLK file (header, then a data section, block-compressed or
not) with a record size of 1, whose record version names one of the layouts of
SiLK's ``skipset.c``. Multi-byte values are in the byte order the header
declares, unless said otherwise:

* versions 0, 1, 2 (*classc*, IPv4; what ``rwset`` writes for IPv4): 36-byte
  blocks, a /24 (a ``u32``, its last octet ignored) and a 256-bit bitmap as
  eight ``u32``; bit ``j`` of word ``i`` is address ``32 i + j`` of the /24.
* version 3 (*radix*, SiLK's default for IPv6): the in-memory radix tree. Its
  header entry (id 7: children per node, leaf count, leaf size, node count,
  node size, root index; big-endian) sizes it: the nodes come first and are
  skipped, then the leaves, the first one empty. An IPv4 leaf is 8 bytes (prefix,
  3 unused, the ``u32`` address), an IPv6 leaf 24 (prefix, 7 unused, the high and
  the low ``u64`` of the address).
* version 4 (*cidrbmap*): an address (a ``u32``; for IPv6 16 bytes in network
  order) and a byte: a CIDR prefix, or 0x81 and the 256-bit bitmap of the /24
  (/120) at that address. The entry's leaf size says the family (4 or 16).
* version 5 (*slash64*, IPv6): a ``u64`` and a byte: a prefix up to 64 on a high
  half; 0x82, a high half whose low halves follow; a prefix 65-128 on a low half;
  or 0x81, a low half and the bitmap of its /120.

The blocks become sorted, disjoint address ranges in the 16-byte space of the
flow batches (an IPv4 set in ``::ffff:0:0/96``): a record's address is in the
set when SiLK's ``skIPSetCheckRecord`` says so, an IPv4 record against an IPv6
set included.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from silkwatch.connectors.silk.exceptions import SilkFormatError, SilkUnsupportedError
from silkwatch.connectors.silk.reader import SilkStream, Source, open_silk
from silkwatch.detectors.schema import ip_words

FT_IPSET = 0x1D
IPSET_ENTRY_ID = 7
#: the byte after an address that says a 256-bit bitmap follows, and slash64's "low halves follow"
_BITMAP, _HIGH_HALF = 0x81, 0x82
_IPV4_LOW = 0xFFFF_0000_0000  # the low word of ::ffff:0.0.0.0
_ALL64 = (1 << 64) - 1
#: mask tables: the high and low word of a /p netmask in the 128-bit space, p = 0..128
_MASK_HIGH = np.array([(((1 << p) - 1) << (128 - p)) >> 64 for p in range(129)], np.uint64)
_MASK_LOW = np.array([(((1 << p) - 1) << (128 - p)) & _ALL64 for p in range(129)], np.uint64)
#: what a range is stored as: its two words, big-endian, i.e. the 16 bytes of the address
_WORDS = np.dtype([("high", ">u8"), ("low", ">u8")])


class IPSetError(SilkFormatError):
    """An IPset file whose data is not what its header announces."""

    reason = "bad_ipset"


@dataclass(frozen=True)
class IPSet:
    """An IPset as sorted, disjoint ranges of 16-byte addresses (``S16``, network order).

    Examples
    --------
    >>> from silkwatch.detectors.schema import make_batch
    >>> s = IPSet.from_blocks(  # 10.0.0.0/8 and 192.168.0.1
    ...     np.array([0, 0], np.uint64),
    ...     np.array([_IPV4_LOW | 0x0A000000, _IPV4_LOW | 0xC0A80001], np.uint64),
    ...     np.array([104, 128]))
    >>> len(s), s.contains(make_batch(sip=["10.9.8.7", "11.0.0.1", "192.168.0.1"])["sip"]).tolist()
    (2, [True, False, True])
    """

    first: np.ndarray
    last: np.ndarray

    def __len__(self) -> int:
        return len(self.first)

    @classmethod
    def from_blocks(
        cls,
        high: np.ndarray,
        low: np.ndarray,
        prefix: np.ndarray,
        bitmaps: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> IPSet:
        """The set of CIDR blocks (address words, prefix 0-128) and of bitmaps (the high and
        low word of each /120, and its 256 bits as 32 bytes, least significant bit first)."""
        prefix = np.asarray(prefix, np.int64)
        first_high, first_low = high & _MASK_HIGH[prefix], low & _MASK_LOW[prefix]
        ranges = [
            (
                first_high,
                first_low,
                first_high | ~_MASK_HIGH[prefix],
                first_low | ~_MASK_LOW[prefix],
            )
        ]
        if bitmaps is not None:
            ranges.append(_bitmap_ranges(*bitmaps))
        first, last = (
            np.concatenate([_pack(part[k], part[k + 1]) for part in ranges]) for k in (0, 2)
        )
        order = np.argsort(first, kind="stable")
        first, last = first[order], last[order]
        if len(first) > 1 and (first[1:] <= last[:-1]).any():
            raise ValueError("blocks overlap")
        return cls(first, last)

    def contains(self, addresses: np.ndarray) -> np.ndarray:
        """Whether each 16-byte address (IPv4 ones IPv4-mapped) is in the set."""
        keys = np.ascontiguousarray(addresses).view("S16").reshape(-1)
        if _within_ipv4(self.first) and _within_ipv4(self.last):  # 4-byte keys: ten times faster
            high, low = ip_words(addresses)
            mapped = (high == 0) & ((low >> np.uint64(32)) == np.uint64(0xFFFF))
            keys, bounds = low.astype(np.uint32), (_ipv4_of(self.first), _ipv4_of(self.last))
        else:
            mapped, bounds = np.ones(len(keys), bool), (self.first, self.last)
        slot = np.searchsorted(bounds[0], keys, side="right") - 1
        inside = mapped & (slot >= 0)
        inside[inside] = keys[inside] <= bounds[1][slot[inside]]
        return inside


def read_ipset(source: Source) -> IPSet:
    """An IPset file (path, ``-`` or binary stream) of any record version SiLK writes."""
    with open_silk(source, SilkStream) as stream:
        header = stream.header
        if header.file_format != FT_IPSET:
            raise SilkUnsupportedError(
                stream.path, 5, f"not an IPset file (format {header.format_name})"
            )
        if header.rec_size != 1:
            raise SilkUnsupportedError(
                stream.path, 12, f"IPset with record size {header.rec_size} (SiLK writes 1)"
            )
        if header.rec_version > 5:
            raise SilkUnsupportedError(
                stream.path, 14, f"IPset record version {header.rec_version} unknown (0-5)"
            )
        data = b"".join(bytes(chunk.data) for chunk in stream.iter_data(1, 1 << 20))
        layout = _Layout(stream.path, header.length, ">" if header.big_endian else "<", data)
        entry = _entry(header)
        try:
            if header.rec_version <= 2:
                return layout.classc()
            if entry is None:
                raise layout.error(0, f"record version {header.rec_version} needs the IPset entry")
            if header.rec_version == 3:
                return layout.radix(*entry)
            if header.rec_version == 4:
                return layout.cidrbmap(entry[2])
            return layout.slash64()
        except ValueError as exc:  # a mask, shift or overlap test on values the file made up
            raise layout.error(0, str(exc)) from exc


def _entry(header) -> tuple[int, ...] | None:
    """The IPset header entry: children per node, leaves, leaf size, nodes, node size, root."""
    for entry in header.entries:
        if entry.entry_id == IPSET_ENTRY_ID and len(entry.payload) >= 24:
            return struct.unpack(">6I", entry.payload[:24])
    return None


@dataclass(frozen=True)
class _Layout:
    """The data section of one file, and how to read each record version from it."""

    path: str
    start: int  # the data's offset in the file (where an uncompressed file has it)
    order: str  # "<" or ">"
    data: bytes

    def error(self, at: int, detail: str) -> IPSetError:
        return IPSetError(self.path, self.start + at, detail)

    def classc(self) -> IPSet:
        if len(self.data) % 36:
            raise self.error(len(self.data) - len(self.data) % 36, "truncated /24 block")
        words = np.frombuffer(self.data, f"{self.order}u4").reshape(-1, 9)
        base = (words[:, 0] & 0xFFFFFF00).astype(np.uint64)
        return IPSet.from_blocks(
            np.zeros(0, np.uint64),
            np.zeros(0, np.uint64),
            np.zeros(0, np.int64),
            (
                np.zeros(len(base), np.uint64),
                base | np.uint64(_IPV4_LOW),
                _bitmap_bytes(words[:, 1:]),
            ),
        )

    def radix(
        self, children: int, leaves: int, leaf_size: int, nodes: int, node_size: int, _root: int
    ) -> IPSet:
        if leaf_size not in (8, 24):
            raise self.error(0, f"radix IPset with {leaf_size}-byte leaves (not 8 or 24)")
        skip = nodes * node_size + leaf_size  # the nodes, and the first leaf, which is empty
        if leaves == 0:
            return IPSet.from_blocks(*(np.zeros(0, t) for t in (np.uint64, np.uint64, np.int64)))
        if len(self.data) != skip + (leaves - 1) * leaf_size:
            raise self.error(
                len(self.data),
                f"radix IPset of {len(self.data)} bytes, not {nodes} "
                f"nodes of {node_size} and {leaves} leaves of {leaf_size}",
            )
        if leaf_size == 8:
            leaf = np.frombuffer(
                self.data[skip:], [("prefix", "u1"), ("pad", "V3"), ("ip", f"{self.order}u4")]
            )
            return _ipv4_blocks(leaf["ip"], leaf["prefix"])
        leaf = np.frombuffer(
            self.data[skip:],
            [
                ("prefix", "u1"),
                ("pad", "V7"),
                ("high", f"{self.order}u8"),
                ("low", f"{self.order}u8"),
            ],
        )
        return _ipv6_blocks(leaf["high"], leaf["low"], leaf["prefix"])

    def cidrbmap(self, leaf_size: int) -> IPSet:
        if leaf_size not in (4, 16):
            raise self.error(0, f"cidrbmap IPset with {leaf_size}-byte addresses (not 4 or 16)")
        blocks, maps, at = [], [], 0
        while at < len(self.data):
            if at + leaf_size + 1 > len(self.data):
                raise self.error(at, "truncated address")
            raw, kind = self.data[at : at + leaf_size], self.data[at + leaf_size]
            value = int.from_bytes(raw, "big" if leaf_size == 16 or self.order == ">" else "little")
            if leaf_size == 4:
                value |= _IPV4_LOW
            at += leaf_size + 1
            if kind == _BITMAP:
                maps.append((value, self._bitmap(at)))
                at += 32
            elif kind <= (32 if leaf_size == 4 else 128) and (kind or leaf_size == 4):
                blocks.append((value, kind + (96 if leaf_size == 4 else 0)))
            else:
                raise self.error(at - 1, f"unexpected prefix value {kind}")
        return _from_lists(blocks, maps)

    def slash64(self) -> IPSet:
        # SiLK's states: after a block on a high half anything but a low half may follow;
        # after 0x82 only a low half; after a low half anything
        blocks, maps, at, high, need_low = [], [], 0, None, False
        while at < len(self.data):
            if at + 9 > len(self.data):
                raise self.error(at, "truncated address")
            value = int.from_bytes(self.data[at : at + 8], "big" if self.order == ">" else "little")
            kind = self.data[at + 8]
            low_half = 64 < kind <= 128 or kind == _BITMAP
            if (
                kind == 0
                or kind > _HIGH_HALF
                or (need_low and not low_half)
                or (high is None and low_half)
            ):
                raise self.error(at + 8, f"unexpected prefix value {kind}")
            at += 9
            need_low = kind == _HIGH_HALF
            if kind == _HIGH_HALF:
                high = value
            elif kind <= 64:
                blocks.append((value << 64, kind))
                high = None
            elif kind == _BITMAP:
                maps.append(((high << 64) | value, self._bitmap(at)))
                at += 32
            else:
                blocks.append(((high << 64) | value, kind))
        if need_low:
            raise self.error(at, "a high half without low halves at the end")
        return _from_lists(blocks, maps)

    def _bitmap(self, at: int) -> bytes:
        """The 32-byte bitmap at ``at``, its words little-endian (lowest address first)."""
        if at + 32 > len(self.data):
            raise self.error(at, "truncated bitmap")
        words = np.frombuffer(self.data, f"{self.order}u4", 8, at)
        return words.astype("<u4").tobytes()


def _from_lists(blocks: list[tuple[int, int]], maps: list[tuple[int, bytes]]) -> IPSet:
    """``IPSet.from_blocks`` of (128-bit address, prefix) and (128-bit base, bitmap) pairs."""
    high, low = _split([value for value, _ in blocks])
    map_high, map_low = _split([value for value, _ in maps])
    bits = np.frombuffer(b"".join(bitmap for _, bitmap in maps), np.uint8).reshape(-1, 32)
    prefix = np.array([prefix for _, prefix in blocks], np.int64)
    return IPSet.from_blocks(high, low, prefix, (map_high, map_low, bits))


def _split(values: list[int]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.array([v >> 64 for v in values], np.uint64),
        np.array([v & _ALL64 for v in values], np.uint64),
    )


def _ipv4_blocks(address: np.ndarray, prefix: np.ndarray) -> IPSet:
    low = address.astype(np.uint64) | np.uint64(_IPV4_LOW)
    return IPSet.from_blocks(np.zeros(len(low), np.uint64), low, prefix.astype(np.int64) + 96)


def _ipv6_blocks(high: np.ndarray, low: np.ndarray, prefix: np.ndarray) -> IPSet:
    return IPSet.from_blocks(high.astype(np.uint64), low.astype(np.uint64), prefix.astype(np.int64))


def _bitmap_bytes(words: np.ndarray) -> np.ndarray:
    """Bitmaps as eight words each → 32 bytes each, lowest address's bit first."""
    return np.ascontiguousarray(words.astype("<u4")).view(np.uint8).reshape(-1, 32)


def _bitmap_ranges(
    high: np.ndarray, base: np.ndarray, bits: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Runs of set bits in 256-bit bitmaps → (first high, first low, last high, last low)."""
    present = np.unpackbits(bits, axis=1, bitorder="little").astype(np.int8)
    edges = np.diff(np.pad(present, ((0, 0), (1, 1))), axis=1)
    row, start = np.nonzero(edges == 1)
    _, stop = np.nonzero(edges == -1)  # both in row order, a run's end after its start
    low = base[row]
    return high[row], low + start.astype(np.uint64), high[row], low + (stop - 1).astype(np.uint64)


def _pack(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Two word columns as 16-byte big-endian addresses (``S16``, ordered like the addresses)."""
    words = np.empty(len(high), _WORDS)
    words["high"], words["low"] = high, low
    return words.view("S16")


def _within_ipv4(addresses: np.ndarray) -> bool:
    """Whether every address is in ``::ffff:0:0/96``."""
    words = addresses.view(_WORDS)
    return bool(((words["high"] == 0) & ((words["low"] >> np.uint64(32)) == 0xFFFF)).all())


def _ipv4_of(addresses: np.ndarray) -> np.ndarray:
    return (addresses.view(_WORDS)["low"] & np.uint64(0xFFFFFFFF)).astype(np.uint32)
