"""Argus ``.binetflow`` CSV (the CTU / Stratosphere export) → flows.

An Argus record is bidirectional: ``TotPkts``/``TotBytes`` count both ways,
``SrcBytes`` the source → destination side. With ``SrcBytes`` a record becomes
the flow SrcAddr → DstAddr carrying ``SrcBytes`` and, if the destination
answered, the reverse flow carrying ``TotBytes - SrcBytes``
(:func:`silkwatch.connectors.flowtext.table.with_reverse`), so a host that *downloads*
a 100 MB torrent piece is not mistaken for one that uploads it. Argus gives no
per-direction packet count: ``TotPkts`` is split in proportion to bytes (at
least one packet per side that sent bytes), an estimate, so bytes/packet is
the record's average in both directions. Files without ``SrcBytes`` (some CTU
captures stop at ``TotBytes``) give one flow per record with the totals.

ICMP: Argus prints ``Sport`` as ``0xCCTT`` (code, type); SiLK's dPort is
type * 256 + code. TCP flags come from ``State`` (``FSPA_FSPA``: source side,
destination side). ARP records are not IP flows: counted as ``non_ip``, not
yielded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import compress

import numpy as np

from silkwatch.connectors.flowtext import columns as col
from silkwatch.connectors.flowtext.policy import ErrorPolicy, ReadSummary
from silkwatch.connectors.flowtext.table import (
    ICMP_PROTOCOLS,
    Converted,
    Layout,
    csv_header,
    iter_batches,
    with_reverse,
)
from silkwatch.connectors.silk.text import FLAG_LETTERS
from silkwatch.detectors.schema import FlowBatch, empty_batch

COLUMNS = {
    "StartTime": "stime",
    "Dur": "duration",
    "Proto": "proto",
    "SrcAddr": "sip",
    "Sport": "sport",
    "DstAddr": "dip",
    "Dport": "dport",
    "State": "state",
    "TotPkts": "packets",
    "TotBytes": "bytes",
    "SrcBytes": "src_bytes",
}
OPTIONAL = {"src_bytes", "state"}

#: Argus protocol names of records that are not IP flows
NON_IP = {"arp", "rarp", "llc", "ipx", "stp", "lldp", "man"}


def sniff(lines: list[str]) -> bool:
    """A comma-separated header with three or more binetflow titles (``StartTime``, ``Dur``...).

    Not all of them: a header with one misspelt title is still a binetflow, and its
    reader names the title it lacks, instead of another format guessing at it.

    >>> sniff(["StartTime,Dur,Proto,SrcAdr,Sport,Dir,DstAddr,Dport"]), sniff(["sIP,dIP,sPort"])
    (True, False)
    """
    titles = {title.strip() for title in lines[0].split(",")} if lines else set()
    return len(titles & COLUMNS.keys()) >= 3


def _state_flags(state: str) -> int:
    """``FSPA_FSPA`` → source-side flags in the low byte, destination side in the high."""
    source, _, destination = state.partition("_")
    bits = [
        sum(1 << FLAG_LETTERS.index(ch) for ch in set(side) if ch in FLAG_LETTERS)
        for side in (source, destination)
    ]
    return bits[0] | bits[1] << 8


def convert(c: dict[str, list[str]]) -> Converted:
    """Named binetflow columns → flows (reverse flows when SrcBytes says who sent what)."""
    ip = [name.strip().lower() not in NON_IP for name in c["proto"]]
    non_ip = ip.count(False)
    if non_ip:
        c = {name: list(compress(values, ip)) for name, values in c.items()}
    batch = empty_batch(len(c["stime"]))
    batch["sip"], sip_v6 = col.addresses(c["sip"])
    batch["dip"], dip_v6 = col.addresses(c["dip"])
    batch["ipv6"] = sip_v6 | dip_v6
    batch["proto"] = col.protocols(c["proto"])
    sport = col.hex_or_decimal(c["sport"])
    dport = col.hex_or_decimal(c["dport"])
    icmp = np.isin(batch["proto"], ICMP_PROTOCOLS)
    batch["sport"] = np.where(icmp, 0, sport)
    batch["dport"] = np.where(icmp, (sport & 0xFF) << 8 | (sport >> 8 & 0xFF), dport)
    batch["stime_ms"] = col.datetimes_to_ms(c["stime"])
    batch["elapsed_ms"] = col.elapsed_ms(col.seconds_to_ms(c["duration"]))
    packets = col.uints(c["packets"]).astype(np.int64)
    total_bytes = col.uints(c["bytes"]).astype(np.int64)
    tcp = batch["proto"] == 6
    both_flags = col.map_distinct(c["state"], _state_flags, "<u2") if "state" in c else None
    if both_flags is not None:
        batch["flags"] = np.where(tcp, both_flags & 0xFF, 0)
    if "src_bytes" not in c:
        batch["packets"], batch["bytes"] = packets, total_bytes
        return batch, non_ip
    src_bytes = col.uints(c["src_bytes"]).astype(np.int64)
    if (src_bytes > total_bytes).any():
        raise ValueError("SrcBytes larger than TotBytes")
    dst_bytes = total_bytes - src_bytes
    share = np.divide(src_bytes, total_bytes, out=np.ones(len(packets)), where=total_bytes > 0)
    src_packets = np.minimum(np.rint(packets * share).astype(np.int64), packets)
    src_packets[(src_packets == 0) & (src_bytes > 0) & (packets > 0)] = 1
    src_packets -= (src_packets == packets) & (dst_bytes > 0) & (src_packets > 1)
    dst_packets = packets - src_packets
    # a side with bytes but no packet left to carry them keeps the bytes on the forward flow
    orphan = (dst_packets == 0) & (dst_bytes > 0)
    src_bytes[orphan] += dst_bytes[orphan]
    dst_bytes[orphan] = 0
    batch["packets"], batch["bytes"] = src_packets, src_bytes
    reverse_flags = None if both_flags is None else np.where(tcp, both_flags >> 8, 0).astype("u1")
    return with_reverse(batch, dst_packets, dst_bytes, reverse_flags), non_ip


def read_argus(
    stream: Iterable[str], path: str, *, rows: int, summary: ReadSummary, on_error: ErrorPolicy
) -> Iterator[FlowBatch]:
    """Batches of the flows in an Argus binetflow CSV file (header line required)."""
    numbered = enumerate(stream, 1)
    required = set(COLUMNS.values()) - OPTIONAL
    header = csv_header(numbered, path, COLUMNS, required, "binetflow")
    if header is None:
        return
    width, used = header
    data = ((n, line) for n, line in numbered if line.strip())
    layout = Layout(width=width, columns=used, separator=",", convert=convert)
    yield from iter_batches(data, layout, path=path, rows=rows, summary=summary, on_error=on_error)
