"""Zeek ``conn.log`` (TSV with ``#fields``) → flows; extra columns such as labels ignored.

A conn record is one bidirectional connection. It becomes the flow
originator → responder (``orig_pkts``, ``orig_ip_bytes``) followed by the flow
responder → originator (``resp_pkts``, ``resp_ip_bytes``) when the responder
sent anything: IP-level bytes, as NetFlow and SiLK count them, not the payload
``orig_bytes``. Both flows carry the record's start and duration
(:func:`silkwatch.connectors.flowtext.table.with_reverse`).

TCP flags are rebuilt from ``history`` (upper case: originator, lower case:
responder): ``S`` SYN, ``H`` SYN+ACK, ``A`` ACK, ``F`` FIN, ``R`` RST; the
history has no PSH/URG, so those stay unset. ICMP: Zeek keeps the type in
``id.orig_p`` and the code in ``id.resp_p``; the flow's dPort gets
type * 256 + code as in SiLK. Zeek calls ICMPv6 ``icmp`` too; on IPv6 it is 58.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from silkwatch.connectors.flowtext import columns as col
from silkwatch.connectors.flowtext.exceptions import FlowTextError
from silkwatch.connectors.flowtext.policy import ErrorPolicy, ReadSummary
from silkwatch.connectors.flowtext.table import (
    ICMP_PROTOCOLS,
    Converted,
    Layout,
    iter_batches,
    with_reverse,
)
from silkwatch.detectors.schema import FlowBatch, empty_batch

COLUMNS = {
    "ts": "ts",
    "id.orig_h": "sip",
    "id.orig_p": "sport",
    "id.resp_h": "dip",
    "id.resp_p": "dport",
    "proto": "proto",
    "duration": "duration",
    "orig_pkts": "packets",
    "orig_ip_bytes": "bytes",
    "resp_pkts": "rev_packets",
    "resp_ip_bytes": "rev_bytes",
    "history": "history",
}
OPTIONAL = {"history"}

#: history letter → TCP flag bits (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10)
HISTORY_FLAGS = {"s": 0x02, "h": 0x12, "a": 0x10, "f": 0x01, "r": 0x04}

#: Zeek's unset and empty field markers (``#unset_field``, ``#empty_field``)
UNSET = "-"


def sniff(lines: list[str]) -> bool:
    """Zeek logs open with ``#separator`` and name their columns in ``#fields``."""
    return bool(lines) and (lines[0].startswith("#separator") or lines[0].startswith("#fields"))


def _history_flags(history: str) -> int:
    """``ShADadFf`` → originator flags in the low byte, responder flags in the high byte."""
    forward = reverse = 0
    for letter in history:
        bits = HISTORY_FLAGS.get(letter.lower(), 0)
        if letter.isupper():
            forward |= bits
        else:
            reverse |= bits
    return forward | reverse << 8


def convert(c: dict[str, list[str]]) -> Converted:
    """Named conn.log columns → originator flows plus responder flows."""
    batch = empty_batch(len(c["ts"]))
    batch["sip"], sip_v6 = col.addresses(c["sip"])
    batch["dip"], dip_v6 = col.addresses(c["dip"])
    batch["ipv6"] = sip_v6 | dip_v6
    batch["proto"] = col.protocols(c["proto"])
    batch["proto"][(batch["proto"] == 1) & batch["ipv6"]] = 58
    sport = col.uints(c["sport"], "<u2")
    dport = col.uints(c["dport"], "<u2")
    icmp = np.isin(batch["proto"], ICMP_PROTOCOLS)
    batch["sport"] = np.where(icmp, 0, sport)
    batch["dport"] = np.where(icmp, (sport.astype(np.uint32) << 8 | dport) & 0xFFFF, dport)
    batch["stime_ms"] = col.epoch_to_ms(c["ts"])
    batch["elapsed_ms"] = col.elapsed_ms(col.seconds_to_ms(c["duration"], unset=UNSET))
    batch["packets"] = col.uints(c["packets"], unset=UNSET)
    batch["bytes"] = col.uints(c["bytes"], unset=UNSET)
    reverse_flags = None
    if "history" in c:
        both = col.map_distinct(c["history"], _history_flags, "<u2")
        tcp = batch["proto"] == 6
        batch["flags"] = np.where(tcp, both & 0xFF, 0)
        reverse_flags = np.where(tcp, both >> 8, 0).astype("u1")
    rev_packets = col.uints(c["rev_packets"], unset=UNSET)
    rev_bytes = col.uints(c["rev_bytes"], unset=UNSET)
    return with_reverse(batch, rev_packets, rev_bytes, reverse_flags), 0


def read_zeek(
    stream: Iterable[str], path: str, *, rows: int, summary: ReadSummary, on_error: ErrorPolicy
) -> Iterator[FlowBatch]:
    """Batches of the flows in a Zeek conn.log (the ``#`` header lines are required)."""
    separator = "\t"
    titles: list[str] | None = None
    numbered = enumerate(stream, 1)
    number = 0
    for number, line in numbered:
        if not line.startswith("#"):
            raise FlowTextError(path, number, "Zeek data line before the #fields header")
        key, _, value = line.rstrip("\r\n").partition(" " if line.startswith("#sep") else "\t")
        if key == "#separator":
            separator = value.encode().decode("unicode_escape")
        elif key == "#fields":
            titles = value.split(separator)
            break
    if titles is None:
        if number:
            raise FlowTextError(path, 0, "no #fields line: not a Zeek log")
        return
    used = {COLUMNS[t]: i for i, t in enumerate(titles) if t in COLUMNS}
    missing = set(COLUMNS.values()) - OPTIONAL - used.keys()
    if missing:
        raise FlowTextError(path, number, f"conn.log lacks {', '.join(sorted(missing))}")

    data = ((n, line) for n, line in numbered if not line.startswith("#"))
    layout = Layout(width=len(titles), columns=used, separator=separator, convert=convert)
    yield from iter_batches(data, layout, path=path, rows=rows, summary=summary, on_error=on_error)
