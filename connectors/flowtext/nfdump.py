"""nfdump text → flows: ``nfdump -o csv`` output, and nfcapd binary files through nfdump.

``-o csv`` prints times to the whole second, which blurs beacon periods of a
few seconds; so when *we* run nfdump (on nfcapd files, or for
:mod:`silkwatch.connectors.pcapflows`) we ask for :data:`NFDUMP_FMT`, the same columns
with millisecond times and plain numbers, and parse it with the same reader.
nfdump prints local time; we run it with ``TZ=UTC`` and read the text as UTC.

Bidirectional records (IPFIX biflows, ``opkt``/``obyt`` > 0) become two flows,
see :func:`silkwatch.connectors.flowtext.table.with_reverse`.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

from silkwatch.connectors.flowtext import columns as col
from silkwatch.connectors.flowtext.exceptions import FlowTextError, ToolMissingError
from silkwatch.connectors.flowtext.policy import ErrorPolicy, ReadSummary
from silkwatch.connectors.flowtext.table import (
    Converted,
    Layout,
    csv_header,
    iter_batches,
    with_reverse,
)
from silkwatch.detectors.schema import FlowBatch, empty_batch

#: the nfdump columns we use; ``ts``, ``sa``, ``da``, ``pr``, ``ipkt``, ``ibyt`` are required
COLUMNS = ("ts", "te", "td", "sa", "da", "sp", "dp", "pr", "flg", "ipkt", "ibyt", "opkt", "obyt")
REQUIRED = {"ts", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt"}

#: ``nfdump -o`` format with millisecond times, parsed as CSV under :data:`FMT_HEADER`
NFDUMP_FMT = "fmt:%ts,%te,%sa,%da,%sp,%dp,%pr,%flg,%ipkt,%ibyt,%opkt,%obyt"
FMT_HEADER = "ts,te,sa,da,sp,dp,pr,flg,ipkt,ibyt,opkt,obyt"

#: first bytes of an nfcapd file (LAYOUT magic 0xA50C, little-endian)
NFCAPD_MAGIC = b"\x0c\xa5"


def sniff(lines: list[str]) -> bool:
    """``nfdump -o csv`` starts with the header ``ts,te,td,sa,da,...``."""
    return bool(lines) and lines[0].replace(" ", "").startswith("ts,te,")


def _icmp_aware_port(text: str) -> int:
    """nfdump prints an ICMP dPort as ``type.code``; SiLK keeps type * 256 + code."""
    text = text.strip()
    if "." in text:
        icmp_type, code = text.split(".")
        return int(icmp_type) * 256 + int(code)
    return int(text)


def convert(c: dict[str, list[str]]) -> Converted:
    """Named nfdump columns → flows (reverse flows for biflow records)."""
    n = len(c["ts"])
    batch = empty_batch(n)
    batch["sip"], sip_v6 = col.addresses(c["sa"])
    batch["dip"], dip_v6 = col.addresses(c["da"])
    batch["ipv6"] = sip_v6 | dip_v6
    batch["sport"] = col.uints(c["sp"], "<u2")
    batch["dport"] = col.map_distinct(c["dp"], _icmp_aware_port, "<u2")
    batch["proto"] = col.protocols(c["pr"])
    batch["packets"] = col.uints(c["ipkt"])
    batch["bytes"] = col.uints(c["ibyt"])
    if "flg" in c:
        batch["flags"] = col.nfdump_flags(c["flg"])
    batch["stime_ms"] = col.datetimes_to_ms(c["ts"])
    if "td" in c:
        batch["elapsed_ms"] = col.elapsed_ms(col.seconds_to_ms(c["td"]))
    elif "te" in c:
        batch["elapsed_ms"] = col.elapsed_ms(col.datetimes_to_ms(c["te"]) - batch["stime_ms"])
    if "opkt" not in c:
        return batch, 0
    out_packets = col.uints(c["opkt"])
    if not out_packets.any():
        return batch, 0
    return with_reverse(batch, out_packets, col.uints(c["obyt"])), 0


def _data_lines(numbered: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """Data lines up to the blank line before nfdump's ``Summary`` footer."""
    for number, line in numbered:
        if not line.strip() or line.startswith("Summary"):
            return
        yield number, line


def read_nfdump_csv(
    stream: Iterable[str], path: str, *, rows: int, summary: ReadSummary, on_error: ErrorPolicy
) -> Iterator[FlowBatch]:
    """Batches of the flows in ``nfdump -o csv`` (or :data:`NFDUMP_FMT`) output."""
    numbered = enumerate(stream, 1)
    header = csv_header(numbered, path, {c: c for c in COLUMNS}, REQUIRED, "nfdump")
    if header is None:
        return
    width, used = header
    layout = Layout(width=width, columns=used, separator=",", convert=convert)
    yield from iter_batches(
        _data_lines(numbered), layout, path=path, rows=rows, summary=summary, on_error=on_error
    )


def run_nfdump(source: Path) -> str:
    """An nfcapd file, or a folder of them, → :data:`NFDUMP_FMT` text with its header (UTC)."""
    nfdump = shutil.which("nfdump")
    if nfdump is None:
        raise ToolMissingError("nfdump", "nfdump")
    args = [nfdump, "-R" if source.is_dir() else "-r", str(source), "-q", "-N", "-o", NFDUMP_FMT]
    env = {**os.environ, "TZ": "UTC"}
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise FlowTextError(str(source), 0, f"nfdump failed: {detail[0]}")
    return FMT_HEADER + "\n" + done.stdout


def read_nfcapd(
    path: Path, *, rows: int, summary: ReadSummary, on_error: ErrorPolicy
) -> Iterator[FlowBatch]:
    """Batches of the flows in an nfcapd binary file, decoded by nfdump itself."""
    text = run_nfdump(path)
    yield from read_nfdump_csv(
        io.StringIO(text), str(path), rows=rows, summary=summary, on_error=on_error
    )
