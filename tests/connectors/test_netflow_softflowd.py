"""softflowd exports of the shared pcaps, decoded by us and by nfcapd/nfdump.

softflowd runs with ``-a`` (flow times from the pcap, not the wall clock).
NetFlow v5 and v9 must match nfdump record for record. For IPFIX softflowd sends
``flowStartSysUpTime``/``flowEndSysUpTime`` with ``systemInitTimeMilliseconds`` in
options data; nfdump 1.7.1 decodes those to ends before starts, so there the
times are checked against the pcap itself (the first flow starts with the first
packet, to the millisecond) and the other columns against nfdump.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from silkwatch.connectors.netflow.decoder import Decoder
from tests.connectors.netflow_exporters import (
    batch_rows,
    nfdump_records,
    nfdump_rows,
    softflowd_export,
)

PCAPS = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "pcap"
TOOLS = all(shutil.which(tool) for tool in ("softflowd", "nfcapd", "nfdump"))


def first_packet_ms(pcap: Path) -> int:
    """Time of the first packet of a classic pcap file, in ms."""
    seconds, micros = struct.unpack_from("<II", pcap.read_bytes(), 24)
    return seconds * 1000 + micros // 1000


@pytest.mark.skipif(not TOOLS, reason="softflowd, nfcapd and nfdump are needed")
@pytest.mark.parametrize("version", ["5", "9", "10"])
@pytest.mark.parametrize(
    ("pcap", "flows"),
    [("c2/c2lab-reverse-shell-7777.pcap", 22), ("beacon/slips-test-cc-capture-2.pcap", 521)],
)
def test_same_records_as_nfdump(tmp_path: Path, pcap: str, flows: int, version: str) -> None:
    datagrams = softflowd_export(PCAPS / pcap, version, "-a")
    decoder = Decoder()
    batch = decoder.decode([(d, "127.0.0.1") for d in datagrams], 0.0)
    ours = batch_rows(batch)
    theirs = nfdump_rows(nfdump_records(datagrams, tmp_path))
    assert len(ours) == len(theirs) == flows
    if version == "10":
        assert sorted(r[2:] for r in ours) == sorted(r[2:] for r in theirs)
        assert int(batch["stime_ms"].min()) == first_packet_ms(PCAPS / pcap)
    else:
        assert ours == theirs
    counts = decoder.counts[("127.0.0.1", 0)]
    assert (counts.records, counts.malformed, counts.template_misses) == (flows, 0, 0)
    # softflowd's IPFIX sequence counts the message's own flows (see sequence.py): no loss
    assert (counts.lost_records, counts.lost_packets) == (0, 0)


@pytest.mark.skipif(not TOOLS, reason="softflowd, nfcapd and nfdump are needed")
def test_sampled_export_is_scaled_the_same_in_every_version(tmp_path: Path) -> None:
    """softflowd -s 10: the rate is in the v5 header, in options data for v9 and IPFIX.

    nfdump scales v5 by its header; for v9/IPFIX it stores the raw counters (it does
    not apply options-data rates), exactly a tenth. We scale all three alike.
    """
    pcap = PCAPS / "beacon/slips-test-cc-capture-2.pcap"
    totals = {}
    for version in ("5", "9", "10"):
        datagrams = softflowd_export(pcap, version, "-a", "-s", "10")
        batch = Decoder().decode([(d, "127.0.0.1") for d in datagrams], 0.0)
        totals[version] = (len(batch), int(batch["packets"].sum()), int(batch["bytes"].sum()))
        records = nfdump_records(datagrams, tmp_path / version)
        nfdump = (len(records), sum(r["in_packets"] for r in records))
        nfdump += (sum(r["in_bytes"] for r in records),)
        assert nfdump == ((91, 1_090, 256_940) if version == "5" else (91, 109, 25_694))
    assert totals == dict.fromkeys(("5", "9", "10"), (91, 1_090, 256_940))
