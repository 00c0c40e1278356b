"""The 92 vendor payloads of logstash-codec-netflow, against its spec and tshark.

Each spec case sends its files in order to one exporter; every event the spec
states is matched (on the columns a flow batch has) by one decoded record.
Where our values differ from the spec by design, tshark arbitrates:

* NetFlow v5/v9 times: Logstash subtracts whole seconds of sysUptime and lands
  1 s late on most v9 packets; softflowd's v5 ``first = 0xFFFFFFFF`` (1 ms before
  boot) becomes June 21 in Logstash. tshark gives export time, sysUptime and
  relative start/end; ``test_uptime_times_as_tshark`` checks ours against them.
* Juniper MX80 v5 says 1-in-1000 sampling in its header: we scale, Logstash does not.
* ICMP: type and code go to ``dport`` (type * 256 + code), source port 0, as SiLK.
* Options records (interface tables, sampler rates) are not flows: the spec
  counts them as events, we do not.
"""

from __future__ import annotations

import shutil
import struct
import subprocess

import numpy as np
import pytest

from silkwatch.connectors.netflow.decoder import Decoder
from silkwatch.detectors.schema import ip_strings
from tests.connectors.netflow_spec import LOGSTASH, Case, read_cases

CASES = read_cases()
#: flow records each case decodes to: the spec's decode.size minus its options
#: records (or, where the spec gives no size, tshark's count of flow records)
RECORDS = {
    "Netflow 5 valid 01": 2,
    "Netflow 5 invalid 01": 0,
    "Netflow 5 invalid 02": 0,
    "Netflow 9 valid 01": 7,
    "Netflow 9 macaddress": 29,
    "Netflow 9 Cisco ACI": 3,
    "Netflow 9 Cisco ASA": 14,
    "Netflow 9 multiple netflow exporters": 8,  # + 1 options record
    "Netflow 9 invalid 01": 2,
    "Netflow 9 options template with scope fields": 0,
    "IPFIX": 6,  # + 1 options record (systemInitTimeMilliseconds)
    "Netflow 9 Cisco ASA #2": 19,
    "IPFIX OpenBSD pflow": 26,
    "Netflow5 mikrotik": 30,
    "Netflow5 Juniper MX80": 29,
    "Netflow 9 ipt_netflow reduced size encoding": 12,
    "Netflow 9 H3C": 16,
    "Netflow 9 IE150 IE151": 2,
    "Netflow 9 Palo Alto 1 flowset in large zero filled packet": 1,
    "Netflow 9 H3C Netstream with varstring": 1,
    "Netflow 9 Fortigate FortiOS 54x appid": 17,
    "IPFIX from IXIA something something": 1,
    "IPFIX options template from Juniper MX240 JunOS 15.1 R6 S3": 0,  # options only
    "IPFIX Nokia BRAS": 1,
    "IPFIX Procera": 8,
    "IPFIX Barracuda extended uniflow template 256": 2,
    "Netflow 9 Ubiquiti Edgerouter with MPLS labels": 16,
    "Netflow 9 nprobe DPI L7": 1,
    "Netflow 9 Fortigate FortiOS 5.2.1": 1,  # + 1 options record
    "Netflow 9 Streamcore": 4,
    "IPFIX Mikrotik RouterOS 6.39.2": 46,
    "IPFIX Netscaler with variable length fields": 3,
    "IPFIX VMware virtual distributed switch": 5,
    "Juniper SRX options template with 0 scope field length": 0,  # options only
    "Netflow 9 template with 0 length fields": 10,
    "Netflow 9 Cisco ASR 9000 series options template 256": 0,  # 19 options records
    "Netflow 9 Huawei Netstream": 1,
    "Netflow 9 field layer2segmentid": 1,
    "Netflow 9 Cisco ASR 9000 series template 260": 21,
    "Netflow 9 Cisco NBAR options template 260": 0,  # 15 options records
    "Netflow 9 Cisco NBAR flowset 262": 5,
    "Netflow 9 Cisco WLC": 19,
    "Netflow 9 Cisco WLC 8500 release 8.2": 0,  # templates only
    "Netflow 9 Cisco 1941/K9 release 15.1": 29,
    "Netflow 9 Cisco ASR1001-X": 25,
    "Netflow 9 Palo Alto PAN-OS with app-id": 8,
    "IPFIX vIPtela with VPN id": 1,
    "IPFIX Barracuda firewall": 8,
    "IPFIX YAF basic with applabel": 2,  # + 1 options record
    "IPFIX Netscaler with variable length fields, missing templates": 0,
}
#: events that are options records, not flows
OPTIONS_EVENTS = {("Netflow 9 Cisco ASR 9000 series options template 256", 18)}
#: a case the spec runs twice under one name: data, template, template, data. The
#: spec drops the first data set (no template yet); we hold it and decode it when
#: the template arrives: both data sets, 3 flows each
HELD = "IPFIX Netscaler with variable length fields"


def decode_case(case: Case, decoder: Decoder | None = None) -> np.ndarray:
    """Send a case's files in order from one exporter; all flows decoded."""
    decoder = decoder or Decoder()
    parts = [decoder.decode([((LOGSTASH / f).read_bytes(), "192.0.2.1")], 0.0) for f in case.files]
    return np.concatenate(parts)


def as_rows(batch: np.ndarray) -> list[dict[str, object]]:
    """Records as dicts with the spec's columns (times in ms, addresses as text)."""
    sip, dip = (ip_strings(batch[c], batch["ipv6"]) for c in ("sip", "dip"))
    columns = ("sport", "dport", "bytes", "packets", "proto", "flags", "input", "output")
    rows = []
    for i in range(len(batch)):
        row: dict[str, object] = {c: int(batch[c][i]) for c in columns}
        row["stime_ms"] = int(batch["stime_ms"][i])
        row["etime_ms"] = row["stime_ms"] + int(batch["elapsed_ms"][i])
        row["sip"], row["dip"] = sip[i], dip[i]
        rows.append(row)
    return rows


def test_every_payload_is_in_a_case() -> None:
    named = {f for case in CASES for f in case.files}
    on_disk = {p.name for p in LOGSTASH.glob("*.dat")}
    assert len(on_disk) == 92
    # four templates the spec never sends: decoded alone (no data of theirs comes)
    assert sorted(on_disk - named) == [
        "ipfix_test_ixia_tpldata271.dat",
        "netflow9_test_cisco_asr9k_opttpl257.dat",
        "netflow9_test_cisco_asr9k_opttpl334.dat",
        "netflow9_test_cisco_asr9k_tpl266.dat",
    ]
    decoder = Decoder()
    for name in sorted(on_disk - named):
        decoder.decode([((LOGSTASH / name).read_bytes(), "192.0.2.1")], 0.0)
    assert sum(c.malformed for c in decoder.counts.values()) == 0
    assert len(decoder.cache) == 6  # ixia sends three templates in its datagram


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.name}" for i, c in enumerate(CASES)])
def test_spec_case(case: Case) -> None:
    decoder = Decoder()
    batch = decode_case(case, decoder)
    duplicate = case.name == HELD and len(case.files) == 4
    assert len(batch) == (6 if duplicate else RECORDS[case.name])
    rows = as_rows(batch)
    uptime_times = (LOGSTASH / case.files[0]).read_bytes()[1] in (5, 9)
    for index, event in case.events.items():
        if (case.name, index) in OPTIONS_EVENTS:
            continue
        wanted = dict(event)
        if uptime_times:  # tshark is the oracle for these (see the module docstring)
            wanted.pop("stime_ms", None), wanted.pop("etime_ms", None)
        if case.name == "Netflow5 Juniper MX80":  # sampled 1:1000
            for column in ("bytes", "packets"):
                if column in wanted:
                    wanted[column] = int(wanted[column]) * 1000
        if wanted.get("proto") in (1, 58):
            wanted.pop("sport", None), wanted.pop("dport", None)
        assert any(all(row[k] == v for k, v in wanted.items()) for row in rows), (index, wanted)


def test_invalid_payloads_are_counted_not_raised() -> None:
    decoder = Decoder()
    for name in ("netflow5_test_invalid01.dat", "netflow5_test_invalid02.dat"):
        assert decoder.decode([((LOGSTASH / name).read_bytes(), "192.0.2.9")], 0.0).size == 0
    assert decoder.counts[("192.0.2.9", 67)].malformed == 2


def _pcap(payloads: list[tuple[bytes, int]], path) -> None:
    """(payload, exporter number) as UDP datagrams from 192.0.2.N to port 2055, in a pcap."""
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
        for i, (payload, exporter) in enumerate(payloads):
            udp = struct.pack(">HHHH", 40000, 2055, 8 + len(payload), 0) + payload
            ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                             bytes([192, 0, 2, exporter]), bytes([127, 0, 0, 1])) + udp  # fmt: skip
            out.write(struct.pack("<IIII", i, 0, len(ip), len(ip)) + ip)


#: one exporter each (tshark, like us, keeps templates per exporter address)
UPTIME_EXPORTERS = [
    ["netflow5.dat"],
    ["netflow5_test_microtik.dat"],
    ["netflow9_test_valid01.dat"],
    ["netflow9_test_cisco_asr9k_tpl260.dat", "netflow9_test_cisco_asr9k_data260.dat"],
    ["netflow9_test_streamcore_tpl_data256.dat"],
    ["netflow9_test_ubnt_edgerouter_tpl.dat", "netflow9_test_ubnt_edgerouter_data1024.dat"],
    ["netflow9_test_cisco_nbar_tpl262.dat", "netflow9_test_cisco_nbar_data262.dat"],
]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_uptime_times_as_tshark(tmp_path) -> None:
    """Absolute start/end = export time - sysUptime + relative time (tshark's fields)."""
    payloads = [
        ((LOGSTASH / name).read_bytes(), number)
        for number, names in enumerate(UPTIME_EXPORTERS, start=1)
        for name in names
    ]
    _pcap(payloads, tmp_path / "uptime.pcap")
    fields = ["cflow.unix_secs", "cflow.unix_nsecs", "cflow.sysuptime", "cflow.timestart"]
    fields.append("cflow.timeend")
    output = subprocess.run(
        ["tshark", "-r", str(tmp_path / "uptime.pcap"), "-d", "udp.port==2055,cflow",
         "-T", "fields", *(a for f in fields for a in ("-e", f))],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    expected = []
    for line in output.splitlines():
        secs, nsecs, uptime, starts, ends = line.split("\t")
        if not starts:
            continue  # templates only
        export_ms = int(secs) * 1000 + (int(nsecs) // 1_000_000 if nsecs else 0)
        uptime_ms = round(float(uptime) * 1000)
        for start, end in zip(starts.split(","), ends.split(","), strict=True):
            since = round(float(start) * 1000) - uptime_ms
            since -= (1 << 32) if since > 1 << 31 else 0  # sysUptime wrapped (softflowd's -1)
            until = round(float(end) * 1000) - uptime_ms
            expected.append((export_ms + since, export_ms + until))
    decoder = Decoder()
    batch = np.concatenate([decoder.decode([(p, f"192.0.2.{n}")], 0.0) for p, n in payloads])
    ends = (batch["stime_ms"] + batch["elapsed_ms"]).tolist()
    ours = list(zip(batch["stime_ms"].tolist(), ends, strict=True))
    assert len(expected) == 2 + 30 + 7 + 21 + 2 + 8 + 5
    assert sorted(ours) == sorted(expected)
