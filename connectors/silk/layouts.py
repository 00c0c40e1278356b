"""Record layouts of every flow format and version, decoded to ``FLOW_DTYPE``.

Each layout is a row of a table: the byte offset and type of each stored field
plus the few steps that unpack bit-packed words (``silk-format.md`` §7–8). A
layout becomes a numpy structured dtype over the record bytes, so decoding a
batch is one compiled pass of field moves (byte swapping and widening
included) and a handful of vectorised steps: no per-record Python.

Field names that are ``FLOW_DTYPE`` columns are copied as they are; ``ip4``
(u32 in file order) and ``ip16`` (16 bytes, network order) fill the address
columns; any other name (``w0``, ``rf``, ...) is raw input for a step.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from silkwatch.connectors.fieldmoves import FieldMoves, Move, byte_test, field, masked_byte
from silkwatch.connectors.silk.header import FileFormat as F
from silkwatch.connectors.silk.header import PackedFile
from silkwatch.detectors.schema import FLOW_DTYPE, FLOWTYPE_UNKNOWN, SENSOR_UNKNOWN, FlowBatch

#: (name, byte offset, one of "u1" "u2" "u4" "u8" "i8" "ip4" "ip16")
Field = tuple[str, int, str]
Step = Callable[[np.ndarray, FlowBatch, int], None]  # (raw records, output, hour start in ms)

_IP_COLUMNS = ("sip", "dip", "nhip")
_FLOW_NAMES = frozenset(FLOW_DTYPE.names)
_TCP, _ICMP, _ICMP6 = 6, 1, 58
_EXPANDED, _IPV6_BIT, _KNOWN_STATE_BITS = 0x01, 0x80, 0x79
#: the v4-mapped prefix ``::ffff:`` as the (u8, u4) pair of its first 12 bytes, little-endian
_MAPPED_HI, _MAPPED_MID = 0, 0xFFFF0000
#: web formats keep the server port as a 2-bit code
_BIG_U4 = np.dtype(">u4")  # IPv4 addresses inside 16-byte columns are big-endian
_SERVER_PORTS = np.array([80, 443, 8080, 0], dtype=np.uint16)
_ICMP_LIKE = np.isin(np.arange(256), [_ICMP, _ICMP6])  # protocol → may need the port fix
_STATE_AT, _IPV6_AT = FLOW_DTYPE.fields["tcp_state"][1], FLOW_DTYPE.fields["ipv6"][1]
#: columns not read as stored: addresses are widened to 16 bytes, the others are what
#: SiLK's fix-ups (``_finish``) may change
_FIXED_UP = frozenset(
    {*_IP_COLUMNS, "tcp_state", "ipv6", "init_flags", "rest_flags", "sport", "dport"}
)


def _ip_parts(base: np.dtype, offsets: dict[str, int]) -> np.dtype:
    """A view of a record type exposing each address as prefix words and its IPv4 part.

    Lets IPv4 addresses be written into (or read from) 16-byte columns with three
    plain 1-D field assignments instead of 2-D byte slicing.
    """
    names, formats, field_offsets = [], [], []
    for column, offset in offsets.items():
        names += [f"{column}_hi", f"{column}_mid", f"{column}_v4"]
        formats += ["<u8", "<u4", ">u4"]
        field_offsets += [offset, offset + 8, offset + 12]
    return np.dtype(
        {"names": names, "formats": formats, "offsets": field_offsets, "itemsize": base.itemsize}
    )


_FLOW_IPS = _ip_parts(FLOW_DTYPE, {c: FLOW_DTYPE.fields[c][1] for c in _IP_COLUMNS})


@dataclass(frozen=True)
class CopyPlan:
    """How ``decode`` moves plainly stored fields into a batch.

    ``moves`` copies, byte-swaps and widens every such field of a record while
    it is in cache (``silkwatch.connectors.fieldmoves``); in IPv6-capable layouts it also
    sets the ``ipv6`` column from the tcp_state byte and copies the full
    16-byte addresses of just those records (IPv4 records take the last 4
    bytes, as SiLK does). The tcp_state byte arrives with its unknown bits
    cleared; ``apply`` reports which bits occurred, so the fix-ups that cannot
    apply cost nothing.
    """

    moves: FieldMoves
    v6_absent: tuple[str, ...] = ()  # address columns the layout lacks: "::" for IPv6 rows
    ports: bool = True  # the ports are decoded, so SiLK's ICMP port fix-up applies


def _bytes_type(size: int) -> np.dtype:
    """A type that copies ``size`` bytes verbatim (integers are faster than voids in numpy)."""
    return np.dtype(f"<u{size}" if size in (1, 2, 4, 8) else f"V{size}")


def _adjacent(last: list, offset: int, flow_offset: int) -> bool:
    """Whether a field continues the previous verbatim run both on disk and in the batch."""
    if last[1] != last[3] or last[1].kind not in "uV":
        return False
    size = last[1].itemsize
    return last[0] + size == offset and last[2] + size == flow_offset


def _extend_runs(runs: list[list[int]], offset: int, flow_offset: int, size: int) -> None:
    last = runs[-1] if runs else None
    if last and last[0] + last[2] == offset and last[1] + last[2] == flow_offset:
        last[2] += size
    else:
        runs.append([offset, flow_offset, size])


@dataclass(frozen=True)
class Layout:
    """How one (format, record version) stores a flow.

    Parameters
    ----------
    name
        ``FT_RWGENERIC v5`` and so on, for messages.
    rec_size
        Record length in bytes; the header's ``rec_size`` must equal it.
    fields
        Stored fields, see the module docstring.
    steps
        Unpack bit fields into output columns after the plain copies.
    hour_packed
        Times are offsets from the packedfile hour, sensor/flowtype come from it.
    ipv6_capable
        The tcp_state byte's 0x80 bit marks an IPv6 record.
    expanded_fix
        Apply SiLK's fix for the pre-3.6 EXPANDED bug (§6.2, item 2).
    """

    name: str
    rec_size: int
    fields: tuple[Field, ...]
    steps: tuple[Step, ...] = ()
    hour_packed: bool = False
    ipv6_capable: bool = False
    expanded_fix: bool = False

    @functools.cache  # noqa: B019 - layouts are module-level constants, never freed
    def dtype(self, big_endian: bool) -> np.dtype:
        """The records as a structured dtype in the file's byte order."""
        order = ">" if big_endian else "<"
        codes = {"ip4": "u4", "ip16": "V16"}
        return np.dtype(
            {
                "names": [name for name, _, _ in self.fields],
                "formats": [
                    "V16" if code == "ip16" else order + codes.get(code, code)
                    for _, _, code in self.fields
                ],
                "offsets": [offset for _, offset, _ in self.fields],
                "itemsize": self.rec_size,
            }
        )

    @functools.cache  # noqa: B019 - as above
    def copy_plan(self, big_endian: bool, columns: frozenset[str] | None = None) -> CopyPlan:
        """The moves that copy every plainly stored field (of ``columns``, when given).

        Fields stored as ``FLOW_DTYPE`` holds them (same width and order) and
        adjacent both on disk and in the batch merge into one byte run.
        """
        raw = self.dtype(big_endian)
        wanted = _FLOW_NAMES if columns is None else _with_fixup_inputs(columns)
        pairs: list[list] = []  # [source offset, source type, target offset, target type]
        flags: list[Move] = []
        v6_runs: list[list[int]] = []
        state_at = 0  # tcp_state's offset: its 0x80 bit marks the IPv6 records
        for name, offset, code in sorted(self.fields, key=lambda f: f[1]):
            if name in _FLOW_NAMES and name not in wanted:
                continue
            if code in ("ip4", "ip16"):
                tail = offset + (12 if code == "ip16" else 0)
                source_type = _BIG_U4 if code == "ip16" else raw.fields[name][0]
                pairs.append([tail, source_type, FLOW_DTYPE.fields[name][1] + 12, _BIG_U4])
                if code == "ip16":
                    _extend_runs(v6_runs, offset, FLOW_DTYPE.fields[name][1], 16)
            elif name == "tcp_state":
                state_at = offset
                flags.append(masked_byte(offset, _STATE_AT, _KNOWN_STATE_BITS))
                if self.ipv6_capable:
                    flags.append(byte_test(offset, _IPV6_AT, _IPV6_BIT))
            elif name in _FLOW_NAMES:
                flow_type, flow_offset = FLOW_DTYPE.fields[name][:2]
                if (
                    raw.fields[name][0] == flow_type
                    and pairs
                    and _adjacent(pairs[-1], offset, flow_offset)
                ):
                    size = pairs[-1][1].itemsize + flow_type.itemsize
                    pairs[-1][1] = pairs[-1][3] = _bytes_type(size)
                elif raw.fields[name][0] == flow_type:
                    pairs.append([offset, _bytes_type(flow_type.itemsize), flow_offset, None])
                    pairs[-1][3] = pairs[-1][1]
                else:
                    pairs.append([offset, raw.fields[name][0], flow_offset, flow_type])
        moves = [field(*pair) for pair in pairs] + flags
        if self.ipv6_capable and v6_runs:  # after the IPv4 tails, which they overwrite
            when = (state_at, _IPV6_BIT)
            moves += [field(o, f"V{n}", t, f"V{n}", when=when) for o, t, n in v6_runs]
        v6_absent = tuple(c for c in _IP_COLUMNS if c not in self.stored)
        return CopyPlan(
            FieldMoves(self.rec_size, FLOW_DTYPE.itemsize, moves),
            v6_absent if self.ipv6_capable else (),
            ports="sport" in wanted,
        )

    @functools.cache  # noqa: B019 - as above
    def in_place(self, big_endian: bool, columns: frozenset[str]) -> np.dtype | None:
        """A dtype that reads just ``columns`` in place from records of this layout, or None.

        Possible when each column is stored under its own name, in native byte order,
        and nothing after the copy changes it (no unpacking step, no hour packing, not
        a field SiLK's fix-ups touch): then the column is the stored field itself, in
        the width the file has (counters are often 32-bit). ``decode`` copies every
        record into a 104-byte batch row; a caller that reads a few numeric columns
        (``silkwatch count``) can skip that pass and its memory.

        >>> generic = find_layout(F.FT_RWGENERIC, 5)
        >>> view = generic.in_place(False, frozenset({"stime_ms", "bytes"}))
        >>> [(name, str(view[name]), view.fields[name][1]) for name in view.names], view.itemsize
        ([('bytes', 'uint32', 36), ('stime_ms', 'int64', 0)], 52)
        >>> generic.in_place(False, frozenset({"sport"}))  # SiLK's ICMP fix-up may change it
        >>> generic.in_place(True, frozenset({"bytes"})) is None  # not this machine's order
        True
        """
        raw = self.dtype(big_endian)
        native = big_endian == (sys.byteorder == "big")
        plain = native and not self.steps and not self.hour_packed
        if not columns or not plain or not columns <= self.stored - _FIXED_UP:
            return None
        names = sorted(columns)
        return np.dtype(
            {
                "names": names,
                "formats": [raw.fields[name][0] for name in names],
                "offsets": [raw.fields[name][1] for name in names],
                "itemsize": self.rec_size,
            }
        )

    @functools.cached_property
    def stored(self) -> frozenset[str]:
        """Names of the stored fields."""
        return frozenset(name for name, _, _ in self.fields)

    @property
    def writable(self) -> bool:
        """True when every batch column is stored plainly: encoding is a lossless copy.

        FT_RWIPV6 v1, for one, has no next hop or interfaces, so writing it
        would drop data silently.
        """
        columns = _FLOW_NAMES - {"ipv6"}
        return not self.steps and not self.hour_packed and columns <= self.stored


# --------------------------------------------------------------------------- decode


def decode(
    layout: Layout,
    records: bytes,
    big_endian: bool,
    packed: PackedFile | None,
    columns: frozenset[str] | None = None,
) -> FlowBatch:
    """Whole records of one layout → a flow batch (``len(records) % rec_size == 0``).

    ``packed`` is the file's packedfile entry: hour-packed layouts take their
    hour, sensor and flowtype from it (start 0 and unknowns when it is absent).
    ``columns``, when given, are the batch columns the caller reads: the
    plainly stored others are skipped and keep their defaults (zero, unknown
    sensor and flowtype, ``0.0.0.0``), which is cheaper when a command needs
    two of twenty columns.
    """
    raw = np.frombuffer(records, dtype=layout.dtype(big_endian))
    start_ms = packed.start_ms if layout.hour_packed and packed is not None else 0
    out = np.empty(len(raw), dtype=FLOW_DTYPE)
    plan = layout.copy_plan(big_endian, columns)
    sensor, flowtype = (packed.sensor, packed.flowtype) if packed else (None, None)
    template = _template(layout, sensor, flowtype)
    for start in range(0, len(raw), _CACHE_ROWS):  # every pass over a slice hits L2 cache
        raw_part, out_part = raw[start : start + _CACHE_ROWS], out[start : start + _CACHE_ROWS]
        state_bits = plan.moves.apply(raw_part, out_part, template)
        for step in layout.steps:
            step(raw_part, out_part, start_ms)
        _finish(layout, plan, out_part, state_bits)
    return out


#: rows per slice in ``decode``: ~850 kB of batch plus ~720 kB of records fit L2 cache
_CACHE_ROWS = 8192


def _with_fixup_inputs(columns: frozenset[str]) -> frozenset[str]:
    """``columns`` plus what SiLK's fix-ups read to get them right (see ``_finish``).

    The tcp_state byte always comes: it says which records are IPv6. Its
    expanded-flag fix reads the protocol and both flag bytes; the ICMP port
    fix reads the protocol and both ports.
    """
    wanted = set(columns) | {"tcp_state", "proto", "init_flags", "rest_flags"}
    if wanted & {"sport", "dport"}:
        wanted |= {"sport", "dport"}
    return frozenset(wanted)


@functools.cache
def _template(layout: Layout, sensor: int | None, flowtype: int | None) -> bytes:
    """What every decoded record starts as: zeros, IPv4-mapped addresses, default ids.

    Hour-packed layouts take sensor and flowtype from the packedfile header entry.
    """
    record = np.zeros(1, FLOW_DTYPE)
    ips = record.view(_FLOW_IPS)
    for column in _IP_COLUMNS:
        ips[f"{column}_hi"], ips[f"{column}_mid"] = _MAPPED_HI, _MAPPED_MID
    if layout.hour_packed and sensor is not None:
        record["sensor"], record["flowtype"] = sensor, flowtype
    else:
        record["sensor"], record["flowtype"] = SENSOR_UNKNOWN, FLOWTYPE_UNKNOWN
    return record.tobytes()


def _finish(layout: Layout, plan: CopyPlan, out: FlowBatch, state_bits: int) -> None:
    """The fix-ups SiLK applies to every record after unpacking (§6.1–6.2).

    ``state_bits`` (every tcp_state bit that occurred) tells which fix-ups can
    apply at all, so a batch without IPv6 or expanded-flag records pays for
    none of them.
    """
    state, proto = out["tcp_state"], out["proto"]
    if layout.ipv6_capable and state_bits & _IPV6_BIT and plan.v6_absent:
        v6_rows = np.flatnonzero(out["ipv6"])
        for column in plan.v6_absent:
            out[column][v6_rows] = bytes(16)
    if layout.expanded_fix and state_bits & _EXPANDED:
        wrong = ((state & _EXPANDED) != 0) & (
            (proto != _TCP) | ((out["init_flags"] | out["rest_flags"]) == 0)
        )
        state[wrong] &= ~np.uint8(_EXPANDED)
        out["init_flags"][wrong] = 0
        out["rest_flags"][wrong] = 0
    if plan.ports and os.environ.get("SILK_ICMP_SPORT_HANDLER") != "none":
        rows = np.flatnonzero(_ICMP_LIKE[proto])  # one pass; ICMP is rare, so are the rows
        rows = rows[(proto[rows] == _ICMP) | out["ipv6"][rows]]  # 58 is ICMP only on IPv6
        sport, dport = out["sport"][rows], out["dport"][rows]
        moved = rows[(sport != 0) & (dport == 0)]
        out["dport"][moved] = out["sport"][moved]
        out["sport"][moved] = 0


# --------------------------------------------------------------------------- encode


def encode(layout: Layout, batch: FlowBatch, big_endian: bool) -> bytes:
    """A flow batch → record bytes of a plainly stored layout.

    Raises ``ValueError`` naming the first column that the layout cannot hold
    (IPv6 in an IPv4 format, counters or interfaces out of range).
    """
    batch = np.ascontiguousarray(batch, dtype=FLOW_DTYPE)
    dtype = layout.dtype(big_endian)
    raw = np.zeros(len(batch), dtype=dtype)
    ips = batch.view(_FLOW_IPS)
    ip16 = {name: offset for name, offset, code in layout.fields if code == "ip16"}
    if not layout.ipv6_capable and batch["ipv6"].any():
        raise ValueError(f"{layout.name} holds IPv4 only, batch has IPv6 flows")
    for name, _, code in layout.fields:
        if code == "ip4":
            raw[name] = ips[f"{name}_v4"]
        elif code == "ip16":
            raw[name] = batch[name]
        else:
            limit = np.iinfo(dtype[name]).max
            if len(batch) and np.iinfo(batch.dtype[name]).max > limit and batch[name].max() > limit:
                raise ValueError(f"{name} above {limit} does not fit {layout.name}")
            raw[name] = batch[name]
    if ip16:
        raw_ips = raw.view(_ip_parts(dtype, ip16))
        v4 = ~batch["ipv6"]
        for column in ip16:
            raw_ips[f"{column}_hi"][v4], raw_ips[f"{column}_mid"][v4] = _MAPPED_HI, _MAPPED_MID
        raw["tcp_state"][batch["ipv6"]] |= _IPV6_BIT
    return raw.tobytes()


# --------------------------------------------------------------------------- steps


def _volume(out: FlowBatch, bpp: np.ndarray, pkts: np.ndarray, pflag: np.ndarray) -> None:
    """Packets and bytes from a 20-bit packet count and bytes-per-packet (§8.1)."""
    packets = pkts.astype(np.uint64) << (pflag.astype(np.uint64) * np.uint64(6))
    bpp = bpp.astype(np.uint64)
    fraction, remainder = np.divmod((bpp & np.uint64(63)) * packets, np.uint64(64))
    out["packets"] = packets
    out["bytes"] = (bpp >> np.uint64(6)) * packets + fraction + (remainder >= 32)


def _proto_flags(
    out: FlowBatch, is_tcp: np.ndarray, prot_flags: np.ndarray, rest: np.ndarray | int
) -> None:
    """Protocol and TCP flags from an is_tcp bit and a shared byte (§8.2).

    ``rest`` is the stored rest-flags byte (0 where a layout has none): for
    non-TCP flows it holds their flags, for expanded TCP flows the rest flags.
    """
    tcp = is_tcp.astype(bool)
    expanded = tcp & ((out["tcp_state"] & _EXPANDED) != 0)
    out["proto"] = np.where(tcp, _TCP, prot_flags)
    out["flags"] = np.where(tcp, prot_flags | rest, rest)
    out["init_flags"] = np.where(expanded, prot_flags, 0)
    out["rest_flags"] = np.where(expanded, rest, 0)


def _web_ports(out: FlowBatch, client: np.ndarray, server_code: np.ndarray, src_is_srv) -> None:
    """Ports of web formats: a server-port code plus the stored client port (§8.3)."""
    server = _SERVER_PORTS[server_code]
    source_is_server = src_is_srv.astype(bool)
    out["sport"] = np.where(source_is_server, server, client)
    out["dport"] = np.where(source_is_server, client, server)


def _times(out: FlowBatch, base_ms: int, stime_s, stime_msec, elapsed_s, elapsed_msec) -> None:
    """Start and duration from whole seconds plus milliseconds."""
    out["stime_ms"] = base_ms + stime_s.astype(np.int64) * 1000 + stime_msec
    out["elapsed_ms"] = elapsed_s.astype(np.uint32) * 1000 + elapsed_msec


def _tfv(raw: np.ndarray, out: FlowBatch, start_ms: int, *, web: bool, rest: bool) -> None:
    """Block TFV (12 or 16 bytes): ms offsets, 22-bit elapsed, bpp volume."""
    w0, w1, w2 = raw["w0"], raw["w1"], raw["w2"]
    out["stime_ms"] = start_ms + (w0 >> 10).astype(np.int64)
    out["elapsed_ms"] = w1 & 0x3FFFFF
    _volume(out, ((w0 & 0x3FF) << 10) | (w1 >> 22), w2 & 0xFFFFF, (w2 >> 23) & 1)
    if web:
        _web_ports(out, raw["client_port"], (w2 >> 20) & 3, (w2 >> 22) & 1)
    is_tcp = np.ones(len(raw), np.uint8) if web else (w2 >> 22) & 1
    _proto_flags(out, is_tcp, (w2 >> 24).astype(np.uint8), raw["rf"] if rest else 0)


def _tfp(raw: np.ndarray, out: FlowBatch, start_ms: int, *, web: bool) -> None:
    """Block TFP (6 bytes): ms offset and flags; non-TCP flows keep no flags."""
    w0 = raw["w0"]
    out["stime_ms"] = start_ms + (w0 & 0x3FFFFF).astype(np.int64)
    rest = (w0 >> 24).astype(np.uint8)
    tcp = np.ones(len(raw), bool) if web else ((w0 >> 23) & 1).astype(bool)
    _proto_flags(out, tcp, raw["pif"], np.where(tcp, rest, 0).astype(np.uint8))


def _augweb5(raw: np.ndarray, out: FlowBatch, start_ms: int) -> None:
    """FT_RWAUGWEB v5: 30-bit elapsed and the server-port code share one word."""
    se = raw["se"]
    out["elapsed_ms"] = se & 0x3FFFFFFF
    _web_ports(out, raw["client_port"], se >> 30, (raw["w0"] >> 22) & 1)


def _tbp(raw: np.ndarray, out: FlowBatch, start_ms: int, *, web: bool, rest: bool) -> None:
    """Block TBP (three words): second offsets plus a millisecond word."""
    ps, bbe, mf = raw["pkts_stime"], raw["bbe"], raw["msec_flags"]
    _times(out, start_ms, ps & 0xFFF, mf >> 22, bbe & 0xFFF, (mf >> 12) & 0x3FF)
    _volume(out, bbe >> 12, ps >> 12, (mf >> 11) & 1)
    if web:
        _web_ports(out, raw["client_port"], (mf >> 8) & 3, (mf >> 10) & 1)
    is_tcp = np.ones(len(raw), np.uint8) if web else (mf >> 10) & 1
    _proto_flags(out, is_tcp, (mf & 0xFF).astype(np.uint8), raw["rf"] if rest else 0)


def _pef_sbb(raw: np.ndarray, out: FlowBatch, start_ms: int) -> None:
    """Blocks PEF/SBB (oldest, whole seconds): proto and flags are stored plainly."""
    pef, sbb = raw["pef"], raw["sbb"]
    zero = np.zeros(len(raw), np.uint32)
    _times(out, start_ms, sbb >> 20, zero, (pef >> 1) & 0x7FF, zero)
    _volume(out, sbb & 0xFFFFF, pef >> 12, pef & 1)


def _www12(raw: np.ndarray, out: FlowBatch, start_ms: int) -> None:
    """FT_RWWWW v1–v2: 6 flag bits and the web port bits in two trailing bytes."""
    out["proto"] = _TCP
    out["flags"] = raw["b18"] & 0x3F
    _web_ports(out, raw["client_port"], raw["b19"] >> 6, raw["b18"] >> 7)


def _generic_seconds(raw: np.ndarray, out: FlowBatch, start_ms: int, *, msec: bool) -> None:
    """FT_RWGENERIC v0–v4: absolute seconds (plus milliseconds from v3 on)."""
    zero = np.zeros(len(raw), np.uint16)
    _times(
        out,
        0,
        raw["stime_s"],
        raw["stime_msec"] if msec else zero,
        raw["elapsed_s"],
        raw["elapsed_msec"] if msec else zero,
    )


def _filter45(raw: np.ndarray, out: FlowBatch, start_ms: int) -> None:
    """FT_RWFILTER v4–v5: absolute seconds, ms and volume in two packed words."""
    w1, w2 = raw["w1"], raw["w2"]
    _times(out, 0, raw["stime_s"], w1 & 0x3FF, raw["elapsed_s"], w2 & 0x3FF)
    _volume(out, w2 >> 12, w1 >> 12, (w1 >> 11) & 1)
    _proto_flags(out, (w1 >> 10) & 1, raw["pf"], raw["rf"])


def _filter3(raw: np.ndarray, out: FlowBatch, start_ms: int) -> None:
    """FT_RWFILTER v3: flowtype and volume in two packed words, whole seconds."""
    w, b = raw["w"], raw["b"]
    zero = np.zeros(len(raw), np.uint32)
    _times(out, 0, raw["stime_s"], zero, raw["elapsed_s"], zero)
    out["flowtype"] = w & 0xFF
    _volume(out, b >> 12, w >> 12, (w >> 11) & 1)


def _filter12(raw: np.ndarray, out: FlowBatch, start_ms: int, *, sensor_bits: tuple) -> None:
    """FT_RWFILTER v1–v2: PEF word and a word sharing bpp with the sensor."""
    pef, b = raw["pef"], raw["b"]
    zero = np.zeros(len(raw), np.uint32)
    _times(out, 0, raw["stime_s"], zero, (pef >> 1) & 0x7FF, zero)
    _volume(out, b >> 12, pef >> 12, pef & 1)
    low, width = sensor_bits
    out["sensor"] = (b >> low) & ((1 << width) - 1)


def _flowcap(raw: np.ndarray, out: FlowBatch, start_ms: int, *, frac: bool, app: bool) -> None:
    """FT_FLOWCAP (``flowcapio.c``): 24-bit packets, flags by the EXPANDED bit, and
    milliseconds of start and duration in three big-endian bytes (10 bits each).

    The packets share a 32-bit read with the protocol byte after them: the low three
    bytes in a little-endian file, the high three in a big-endian one.
    """
    word = raw["pkts_proto"]
    big_endian = raw.dtype.fields["pkts_proto"][0].byteorder == ">"
    out["packets"] = (word >> 8) if big_endian else (word & 0xFFFFFF)
    zero = np.zeros(len(raw), np.uint32)
    if frac:
        t0, t1, t2 = (raw[f"frac{i}"].astype(np.uint32) for i in range(3))
        stime_msec, elapsed_msec = (t0 << 2) | (t1 >> 6), ((t1 & 0x3F) << 4) | (t2 >> 4)
    else:
        stime_msec = elapsed_msec = zero
    _times(out, 0, raw["stime_s"], stime_msec, raw["elapsed_s"], elapsed_msec)
    if "first_flags" in raw.dtype.names:
        expanded = (out["tcp_state"] & _EXPANDED) != 0
        session, first = out["flags"].copy(), raw["first_flags"]
        out["flags"] = np.where(expanded, session | first, session)
        out["rest_flags"] = np.where(expanded, session, 0)
        out["init_flags"] = np.where(expanded, first, 0)
    if not app:
        out["application"] = 0


def _zero_application(raw: np.ndarray, out: FlowBatch, start_ms: int) -> None:
    """FT_RWIPV6ROUTING v2 differs from v1 only in never reporting an application."""
    out["application"] = 0


# --------------------------------------------------------------------------- the table

_P = functools.partial
_HEAD = (  # FT_RWGENERIC v5 offsets 0–27, shared by the IPv6 complete records
    ("stime_ms", 0, "i8"),
    ("elapsed_ms", 8, "u4"),
    ("sport", 12, "u2"),
    ("dport", 14, "u2"),
    ("proto", 16, "u1"),
    ("flowtype", 17, "u1"),
    ("sensor", 18, "u2"),
    ("flags", 20, "u1"),
    ("init_flags", 21, "u1"),
    ("rest_flags", 22, "u1"),
    ("tcp_state", 23, "u1"),
    ("application", 24, "u2"),
    ("memo", 26, "u2"),
)
_PORTS_AT_8 = (("sip", 0, "ip4"), ("dip", 4, "ip4"), ("sport", 8, "u2"), ("dport", 10, "u2"))
_TFV12 = (("w0", 0, "u4"), ("w1", 4, "u4"), ("w2", 8, "u4"))
_TFV16 = (*_TFV12, ("tcp_state", 12, "u1"), ("rf", 13, "u1"), ("application", 14, "u2"))
_TFP = (("w0", 0, "u4"), ("pif", 4, "u1"), ("tcp_state", 5, "u1"), ("application", 6, "u2"))


def _tbp_at(offset: int) -> tuple[Field, ...]:
    return (
        ("pkts_stime", offset, "u4"),
        ("bbe", offset + 4, "u4"),
        ("msec_flags", offset + 8, "u4"),
    )


_AUG5 = (
    *_TFP,
    ("sport", 8, "u2"),
    ("dport", 10, "u2"),
    ("elapsed_ms", 12, "u4"),
    ("packets", 16, "u4"),
    ("bytes", 20, "u4"),
    ("sip", 24, "ip4"),
    ("dip", 28, "ip4"),
)
_AUG4 = (*_TFV16, ("sport", 16, "u2"), ("dport", 18, "u2"), ("sip", 20, "ip4"), ("dip", 24, "ip4"))
_AUG123 = (
    *_PORTS_AT_8,
    *_tbp_at(12),
    ("application", 24, "u2"),
    ("tcp_state", 26, "u1"),
    ("rf", 27, "u1"),
)
_SPLIT5 = (
    *_TFV12,
    ("sport", 12, "u2"),
    ("dport", 14, "u2"),
    ("sip", 16, "ip4"),
    ("dip", 20, "ip4"),
)
_SPLIT34 = (*_PORTS_AT_8, *_tbp_at(12))
_SPLIT12 = (
    *_PORTS_AT_8,
    ("pef", 12, "u4"),
    ("sbb", 16, "u4"),
    ("proto", 20, "u1"),
    ("flags", 21, "u1"),
)
_GENERIC34_HEAD = (
    *_PORTS_AT_8,
    ("nhip", 12, "ip4"),
    ("input", 16, "u2"),
    ("output", 18, "u2"),
    ("stime_s", 20, "u4"),
    ("elapsed_s", 24, "u4"),
    ("packets", 28, "u4"),
    ("bytes", 32, "u4"),
    ("proto", 36, "u1"),
    ("flowtype", 37, "u1"),
    ("sensor", 38, "u2"),
    ("flags", 40, "u1"),
    ("init_flags", 41, "u1"),
    ("rest_flags", 42, "u1"),
    ("tcp_state", 43, "u1"),
)
_OLDEST_HEAD = (  # FT_RWGENERIC v0-v1 and FT_RWFILTER v1-v2 (one-byte interfaces)
    *_PORTS_AT_8,
    ("proto", 12, "u1"),
    ("flags", 13, "u1"),
    ("input", 14, "u1"),
    ("output", 15, "u1"),
    ("nhip", 16, "ip4"),
    ("stime_s", 20, "u4"),
)
_GENERIC01 = (
    *_OLDEST_HEAD,
    ("packets", 24, "u4"),
    ("bytes", 28, "u4"),
    ("elapsed_s", 32, "u4"),
    ("sensor", 36, "u1"),
)
_FILTER_HEAD = (
    *_PORTS_AT_8,
    ("nhip", 12, "ip4"),
    ("input", 16, "u2"),
    ("output", 18, "u2"),
    ("stime_s", 20, "u4"),
    ("elapsed_s", 24, "u4"),
)
_FILTER12 = (*_OLDEST_HEAD, ("pef", 24, "u4"), ("b", 28, "u4"))

_tfv_plain = _P(_tfv, web=False, rest=False)
_tfv_rest = _P(_tfv, web=False, rest=True)
_tbp_plain = _P(_tbp, web=False, rest=False)
_tbp_rest = _P(_tbp, web=False, rest=True)
_tfp_plain = _P(_tfp, web=False)


def _packed(name: str, size: int, fields: tuple[Field, ...], *steps: Step, **kw) -> Layout:
    return Layout(name, size, fields, steps, hour_packed=True, **kw)


_RAW_LAYOUTS: dict[tuple[int, tuple[int, ...]], Layout] = {
    # complete records, absolute times (§7)
    (F.FT_RWGENERIC, (5,)): Layout(
        "FT_RWGENERIC v5",
        52,
        (
            *_HEAD,
            ("input", 28, "u2"),
            ("output", 30, "u2"),
            ("packets", 32, "u4"),
            ("bytes", 36, "u4"),
            ("sip", 40, "ip4"),
            ("dip", 44, "ip4"),
            ("nhip", 48, "ip4"),
        ),
        expanded_fix=True,
    ),
    (F.FT_RWGENERIC, (3, 4)): Layout(
        "FT_RWGENERIC v3-v4",
        56,
        (
            *_GENERIC34_HEAD,
            ("stime_msec", 48, "u2"),
            ("elapsed_msec", 50, "u2"),
            ("application", 52, "u2"),
        ),
        (_P(_generic_seconds, msec=True),),
        expanded_fix=True,
    ),
    (F.FT_RWGENERIC, (2,)): Layout(
        "FT_RWGENERIC v2",
        48,
        _GENERIC34_HEAD,
        (_P(_generic_seconds, msec=False),),
        expanded_fix=True,
    ),
    (F.FT_RWGENERIC, (1,)): Layout(
        "FT_RWGENERIC v1", 37, _GENERIC01, (_P(_generic_seconds, msec=False),)
    ),
    (F.FT_RWGENERIC, (0,)): Layout(
        "FT_RWGENERIC v0", 40, _GENERIC01, (_P(_generic_seconds, msec=False),)
    ),
    (F.FT_RWIPV6ROUTING, (1,)): Layout(
        "FT_RWIPV6ROUTING v1",
        88,
        (
            *_HEAD,
            ("input", 28, "u2"),
            ("output", 30, "u2"),
            ("packets", 32, "u4"),
            ("bytes", 36, "u4"),
            ("sip", 40, "ip16"),
            ("dip", 56, "ip16"),
            ("nhip", 72, "ip16"),
        ),
        ipv6_capable=True,
        expanded_fix=True,
    ),
    (F.FT_RWIPV6ROUTING, (3,)): Layout(
        "FT_RWIPV6ROUTING v3",
        100,
        (
            *_HEAD,
            ("input", 28, "u4"),
            ("packets", 32, "u8"),
            ("bytes", 40, "u8"),
            ("sip", 48, "ip16"),
            ("dip", 64, "ip16"),
            ("nhip", 80, "ip16"),
            ("output", 96, "u4"),
        ),
        ipv6_capable=True,
    ),
    (F.FT_RWIPV6, (1,)): Layout(
        "FT_RWIPV6 v1",
        68,
        (
            *_HEAD,
            ("packets", 28, "u4"),
            ("bytes", 32, "u4"),
            ("sip", 36, "ip16"),
            ("dip", 52, "ip16"),
        ),
        ipv6_capable=True,
        expanded_fix=True,
    ),
    (F.FT_RWFILTER, (4, 5)): Layout(
        "FT_RWFILTER v4-v5",
        44,
        (
            *_FILTER_HEAD,
            ("w1", 28, "u4"),
            ("w2", 32, "u4"),
            ("sensor", 36, "u2"),
            ("flowtype", 38, "u1"),
            ("pf", 39, "u1"),
            ("application", 40, "u2"),
            ("tcp_state", 42, "u1"),
            ("rf", 43, "u1"),
        ),
        (_filter45,),
    ),
    (F.FT_RWFILTER, (3,)): Layout(
        "FT_RWFILTER v3",
        40,
        (
            *_FILTER_HEAD,
            ("w", 28, "u4"),
            ("b", 32, "u4"),
            ("sensor", 36, "u2"),
            ("proto", 38, "u1"),
            ("flags", 39, "u1"),
        ),
        (_filter3,),
    ),
    (F.FT_RWFILTER, (1,)): Layout(
        "FT_RWFILTER v1", 32, _FILTER12, (_P(_filter12, sensor_bits=(6, 6)),)
    ),
    (F.FT_RWFILTER, (2,)): Layout(
        "FT_RWFILTER v2", 32, _FILTER12, (_P(_filter12, sensor_bits=(0, 8)),)
    ),
    # hour-packed (§8)
    (F.FT_RWIPV6, (2,)): _packed(
        "FT_RWIPV6 v2",
        56,
        (
            *_TFP,
            ("sport", 8, "u2"),
            ("dport", 10, "u2"),
            ("elapsed_ms", 12, "u4"),
            ("packets", 16, "u4"),
            ("bytes", 20, "u4"),
            ("sip", 24, "ip16"),
            ("dip", 40, "ip16"),
        ),
        _tfp_plain,
        ipv6_capable=True,
    ),
    (F.FT_RWAUGMENTED, (5,)): _packed("FT_RWAUGMENTED v5", 32, _AUG5, _tfp_plain),
    (F.FT_RWAUGMENTED, (4,)): _packed("FT_RWAUGMENTED v4", 28, _AUG4, _tfv_rest),
    (F.FT_RWAUGMENTED, (1, 2, 3)): _packed("FT_RWAUGMENTED v1-v3", 28, _AUG123, _tbp_rest),
    (F.FT_RWAUGROUTING, (5,)): _packed(
        "FT_RWAUGROUTING v5",
        40,
        (*_AUG5, ("nhip", 32, "ip4"), ("input", 36, "u2"), ("output", 38, "u2")),
        _tfp_plain,
    ),
    (F.FT_RWAUGROUTING, (4,)): _packed(
        "FT_RWAUGROUTING v4",
        36,
        (
            *_TFV16,
            ("sport", 16, "u2"),
            ("dport", 18, "u2"),
            ("input", 20, "u2"),
            ("output", 22, "u2"),
            ("sip", 24, "ip4"),
            ("dip", 28, "ip4"),
            ("nhip", 32, "ip4"),
        ),
        _tfv_rest,
    ),
    (F.FT_RWAUGROUTING, (1, 2, 3)): _packed(
        "FT_RWAUGROUTING v1-v3",
        36,
        (*_AUG123, ("nhip", 28, "ip4"), ("input", 32, "u2"), ("output", 34, "u2")),
        _tbp_rest,
    ),
    (F.FT_RWAUGSNMPOUT, (5,)): _packed(
        "FT_RWAUGSNMPOUT v5", 34, (*_AUG5, ("output", 32, "u2")), _tfp_plain
    ),
    (F.FT_RWAUGSNMPOUT, (4,)): _packed(
        "FT_RWAUGSNMPOUT v4", 30, (*_AUG4, ("output", 28, "u2")), _tfv_rest
    ),
    (F.FT_RWAUGSNMPOUT, (1, 2, 3)): _packed(
        "FT_RWAUGSNMPOUT v1-v3", 30, (*_AUG123, ("output", 28, "u2")), _tbp_rest
    ),
    (F.FT_RWAUGWEB, (5,)): _packed(
        "FT_RWAUGWEB v5",
        30,
        (
            *_TFP,
            ("se", 8, "u4"),
            ("packets", 12, "u4"),
            ("bytes", 16, "u4"),
            ("sip", 20, "ip4"),
            ("dip", 24, "ip4"),
            ("client_port", 28, "u2"),
        ),
        _P(_tfp, web=True),
        _augweb5,
    ),
    (F.FT_RWAUGWEB, (4,)): _packed(
        "FT_RWAUGWEB v4",
        26,
        (*_TFV16, ("sip", 16, "ip4"), ("dip", 20, "ip4"), ("client_port", 24, "u2")),
        _P(_tfv, web=True, rest=True),
    ),
    (F.FT_RWAUGWEB, (1, 2, 3)): _packed(
        "FT_RWAUGWEB v1-v3",
        26,
        (
            ("sip", 0, "ip4"),
            ("dip", 4, "ip4"),
            *_tbp_at(8),
            ("client_port", 20, "u2"),
            ("application", 22, "u2"),
            ("tcp_state", 24, "u1"),
            ("rf", 25, "u1"),
        ),
        _P(_tbp, web=True, rest=True),
    ),
    (F.FT_RWSPLIT, (5,)): _packed("FT_RWSPLIT v5", 24, _SPLIT5, _tfv_plain),
    (F.FT_RWSPLIT, (3, 4)): _packed("FT_RWSPLIT v3-v4", 24, _SPLIT34, _tbp_plain),
    (F.FT_RWSPLIT, (1, 2)): _packed("FT_RWSPLIT v1-v2", 22, _SPLIT12, _pef_sbb),
    (F.FT_RWNOTROUTED, (5,)): _packed(
        "FT_RWNOTROUTED v5", 26, (*_SPLIT5, ("input", 24, "u2")), _tfv_plain
    ),
    (F.FT_RWNOTROUTED, (3, 4)): _packed(
        "FT_RWNOTROUTED v3-v4", 26, (*_SPLIT34, ("input", 24, "u2")), _tbp_plain
    ),
    (F.FT_RWNOTROUTED, (1, 2)): _packed(
        "FT_RWNOTROUTED v1-v2", 23, (*_SPLIT12, ("input", 22, "u1")), _pef_sbb
    ),
    (F.FT_RWROUTED, (5,)): _packed(
        "FT_RWROUTED v5",
        32,
        (
            *_TFV12,
            ("sport", 12, "u2"),
            ("dport", 14, "u2"),
            ("input", 16, "u2"),
            ("output", 18, "u2"),
            ("sip", 20, "ip4"),
            ("dip", 24, "ip4"),
            ("nhip", 28, "ip4"),
        ),
        _tfv_plain,
    ),
    (F.FT_RWROUTED, (3, 4)): _packed(
        "FT_RWROUTED v3-v4",
        32,
        (*_SPLIT34, ("nhip", 24, "ip4"), ("input", 28, "u2"), ("output", 30, "u2")),
        _tbp_plain,
    ),
    (F.FT_RWROUTED, (1, 2)): _packed(
        "FT_RWROUTED v1-v2",
        28,
        (
            ("sip", 0, "ip4"),
            ("dip", 4, "ip4"),
            ("nhip", 8, "ip4"),
            ("sport", 12, "u2"),
            ("dport", 14, "u2"),
            ("pef", 16, "u4"),
            ("sbb", 20, "u4"),
            ("proto", 24, "u1"),
            ("flags", 25, "u1"),
            ("input", 26, "u1"),
            ("output", 27, "u1"),
        ),
        _pef_sbb,
    ),
    (F.FT_RWWWW, (5,)): _packed(
        "FT_RWWWW v5",
        22,
        (*_TFV12, ("sip", 12, "ip4"), ("dip", 16, "ip4"), ("client_port", 20, "u2")),
        _P(_tfv, web=True, rest=False),
    ),
    (F.FT_RWWWW, (3, 4)): _packed(
        "FT_RWWWW v3-v4",
        22,
        (("sip", 0, "ip4"), ("dip", 4, "ip4"), *_tbp_at(8), ("client_port", 20, "u2")),
        _P(_tbp, web=True, rest=False),
    ),
    (F.FT_RWWWW, (1, 2)): _packed(
        "FT_RWWWW v1-v2",
        20,
        (
            ("sip", 0, "ip4"),
            ("dip", 4, "ip4"),
            ("pef", 8, "u4"),
            ("sbb", 12, "u4"),
            ("client_port", 16, "u2"),
            ("b18", 18, "u1"),
            ("b19", 19, "u1"),
        ),
        _pef_sbb,
        _www12,
    ),
}

_FLOWCAP_HEAD = (
    ("sip", 0, "ip4"),
    ("dip", 4, "ip4"),
    ("bytes", 8, "u4"),
    ("stime_s", 12, "u4"),
    ("elapsed_s", 16, "u2"),
    ("sport", 18, "u2"),
    ("dport", 20, "u2"),
)


def _flowcap_tail(at: int) -> tuple[Field, ...]:
    """Packets (24 bits) and protocol, flags, first flags, tcp_state, time fractions."""
    return (
        ("pkts_proto", at, "u4"),
        ("proto", at + 3, "u1"),
        ("flags", at + 4, "u1"),
        ("first_flags", at + 5, "u1"),
        ("tcp_state", at + 6, "u1"),
        ("frac0", at + 7, "u1"),
        ("frac1", at + 8, "u1"),
        ("frac2", at + 9, "u1"),
    )


_FLOWCAP3 = (
    *_FLOWCAP_HEAD,
    ("application", 22, "u2"),
    ("input", 24, "u1"),
    ("output", 25, "u1"),
    *_flowcap_tail(26),
)
_RAW_LAYOUTS.update(
    {
        # flowcap spool files (flowcapio.c); the sensor comes from the header, if at all
        (F.FT_FLOWCAP, (5,)): Layout(
            "FT_FLOWCAP v5",
            38,
            (
                *_FLOWCAP_HEAD,
                ("application", 22, "u2"),
                ("input", 24, "u2"),
                ("output", 26, "u2"),
                *_flowcap_tail(28),
            ),
            (_P(_flowcap, frac=True, app=True),),
        ),
        (F.FT_FLOWCAP, (6,)): Layout(
            "FT_FLOWCAP v6",
            38,
            (
                *_FLOWCAP_HEAD,
                ("input", 24, "u2"),
                ("output", 26, "u2"),
                *_flowcap_tail(28),
            ),
            (_P(_flowcap, frac=True, app=False),),
        ),
        (F.FT_FLOWCAP, (4,)): Layout(
            "FT_FLOWCAP v4",
            40,
            (*_FLOWCAP3, ("nhip", 36, "ip4")),  # the payload hash, as SiLK keeps it
            (_P(_flowcap, frac=True, app=True),),
        ),
        (F.FT_FLOWCAP, (3,)): Layout(
            "FT_FLOWCAP v3", 36, _FLOWCAP3, (_P(_flowcap, frac=True, app=True),)
        ),
        (F.FT_FLOWCAP, (2,)): Layout(
            "FT_FLOWCAP v2",
            30,
            (
                *_FLOWCAP_HEAD,
                ("input", 22, "u1"),
                ("output", 23, "u1"),
                ("pkts_proto", 24, "u4"),
                ("proto", 27, "u1"),
                ("flags", 28, "u1"),
            ),
            (_P(_flowcap, frac=False, app=False),),
        ),
    }
)

#: (format id, record version) → layout
LAYOUTS: dict[tuple[int, int], Layout] = {
    (fmt, version): layout
    for (fmt, versions), layout in _RAW_LAYOUTS.items()
    for version in versions
}
LAYOUTS[F.FT_RWIPV6ROUTING, 2] = Layout(
    "FT_RWIPV6ROUTING v2",
    88,
    LAYOUTS[F.FT_RWIPV6ROUTING, 1].fields,
    (_zero_application,),
    ipv6_capable=True,
    expanded_fix=True,
)


def find_layout(file_format: int, rec_version: int) -> Layout | None:
    """The layout of a (format, record version) pair, or None if it holds no flows we know."""
    return LAYOUTS.get((file_format, rec_version))
