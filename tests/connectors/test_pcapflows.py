"""pcap → softflowd → IPFIX on 127.0.0.1 → nfcapd → nfdump → flows, with the real tools.

Expected bytes are the capture's IP lengths per direction, from
``tshark -T fields -e ip.src -e ip.len`` (3,859 B from the client, 4,059 B back).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from silkwatch.connectors.flowtext import ToolMissingError
from silkwatch.connectors.pcapflows import PcapFlowsError, pcap_to_flows
from silkwatch.detectors.schema import ip_strings

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
DNSEXFIL = SHARED / "data" / "real" / "pcap" / "dns-tunnel" / "dmachard-dnsextrator.pcap"

MISSING = [tool for tool in ("softflowd", "nfcapd", "nfdump") if shutil.which(tool) is None]


def pair_totals(batch: np.ndarray, sip: str, dip: str) -> tuple[int, int, int]:
    mask = (np.array(ip_strings(batch["sip"], batch["ipv6"])) == sip) & (
        np.array(ip_strings(batch["dip"], batch["ipv6"])) == dip
    )
    return int(mask.sum()), int(batch["packets"][mask].sum()), int(batch["bytes"][mask].sum())


@pytest.mark.slow
@pytest.mark.skipif(
    bool(MISSING), reason=f"{', '.join(MISSING)} not installed (apt-get install softflowd nfdump)"
)
def test_dns_exfiltration_capture_through_the_real_chain(tmp_path):
    batch = np.concatenate(list(pcap_to_flows(DNSEXFIL, tmp_path)))
    # 14 queries, each from its own source port, each answered: 28 unidirectional records
    assert len(batch) == 28
    assert pair_totals(batch, "192.168.1.102", "192.168.1.210") == (14, 14, 3_859)
    assert pair_totals(batch, "192.168.1.210", "192.168.1.102") == (14, 14, 4_059)
    # -A milli: the capture's own time (2023-07-03 13:27:37.626 UTC), not the exporter's clock
    assert batch[0][["stime_ms", "sport", "dport", "proto", "packets", "bytes"]].tolist() == (
        1688390857626,
        57810,
        53,
        17,
        1,
        94,
    )
    assert sorted(p.name.split(".")[0] for p in (tmp_path / "nf").iterdir()) == ["nfcapd"]


def test_missing_exporter_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ToolMissingError, match=r"nfcapd not found on PATH; install it"):
        list(pcap_to_flows(DNSEXFIL, tmp_path))


def test_missing_capture_is_a_clear_error(tmp_path):
    with pytest.raises(PcapFlowsError, match=r"nope.pcap: no such file"):
        list(pcap_to_flows(tmp_path / "nope.pcap", tmp_path))
