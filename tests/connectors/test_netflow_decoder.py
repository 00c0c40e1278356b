"""IPFIX features on hand-built messages: biflows, times, withdrawal, redefinition, fields."""

from __future__ import annotations

import struct

import pytest

from silkwatch.connectors.netflow.decoder import Decoder
from silkwatch.detectors.schema import ip_strings

EXPORT_S = 1_700_000_000
EXPORTER = "192.0.2.1"
V4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])


def ipfix(*sets: bytes, sequence: int = 0, domain: int = 1) -> bytes:
    body = b"".join(sets)
    return struct.pack(">HHIII", 10, 16 + len(body), EXPORT_S, sequence, domain) + body


def template_set(template_id: int, fields: list[tuple], set_id: int = 2) -> bytes:
    """fields: (element, length) or (element, length, enterprise)."""
    body = struct.pack(">HH", template_id, len(fields))
    for element, length, *enterprise in fields:
        if enterprise:
            body += struct.pack(">HHI", element | 0x8000, length, enterprise[0])
        else:
            body += struct.pack(">HH", element, length)
    return struct.pack(">HH", set_id, 4 + len(body)) + body


def data_set(template_id: int, *records: bytes) -> bytes:
    body = b"".join(records)
    return struct.pack(">HH", template_id, 4 + len(body)) + body


BASE = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (1, 8), (2, 8)]


def base(octets: int, packets: int, proto: int = 6) -> bytes:
    return V4[0] + V4[1] + struct.pack(">HHBQQ", 1234, 80, proto, octets, packets)


def decode(*messages: bytes):
    decoder = Decoder()
    return decoder.decode([(m, EXPORTER) for m in messages], 0.0), decoder


def test_biflow_splits_into_two_one_way_records() -> None:
    fields = [*BASE, (1, 8, 29305), (2, 8, 29305), (6, 1), (6, 1, 29305)]
    fields += [(152, 8), (153, 8), (21, 4, 29305)]  # times; reverseFlowDeltaMilliseconds
    times = struct.pack(">QQI", 1_000_000, 1_000_900, 250)
    record = base(1000, 10) + struct.pack(">QQBB", 500, 5, 0x1A, 0x12) + times
    silent = base(70, 1) + struct.pack(">QQBB", 0, 0, 0x02, 0) + times  # no reverse traffic
    batch, _ = decode(ipfix(template_set(300, fields), data_set(300, record, silent)))
    assert batch["stime_ms"].tolist() == [1_000_000, 1_000_000, 1_000_250]
    assert batch["elapsed_ms"].tolist() == [900, 900, 650]
    assert ip_strings(batch["sip"], batch["ipv6"]) == ["10.0.0.1", "10.0.0.1", "10.0.0.2"]
    assert batch["sport"].tolist() == [1234, 1234, 80]
    assert batch["dport"].tolist() == [80, 80, 1234]
    assert batch["bytes"].tolist() == [1000, 70, 500]
    assert batch["packets"].tolist() == [10, 1, 5]
    assert batch["flags"].tolist() == [0x1A, 0x02, 0x12]


NTP_S = EXPORT_S + 2_208_988_800


@pytest.mark.parametrize(
    ("fields", "values", "start_ms", "elapsed_ms"),
    [
        ([(150, 4), (151, 4)], struct.pack(">II", EXPORT_S - 60, EXPORT_S - 1), -60_000, 59_000),
        ([(152, 8), (153, 8)], struct.pack(">QQ", EXPORT_S * 1000 - 1500, EXPORT_S * 1000), -1500,
         1500),
        ([(154, 8), (155, 8)], struct.pack(">IIII", NTP_S - 2, 1 << 31, NTP_S, 0), -1500, 1500),
        ([(156, 8), (161, 4)], struct.pack(">III", NTP_S - 3, 1 << 30, 2250), -2750, 2250),
        ([(158, 4), (159, 4)], struct.pack(">II", 9_000_000, 4_000_000), -9000, 5000),
        ([(152, 8), (162, 4)], struct.pack(">QI", EXPORT_S * 1000 - 10, 7_999), -10, 7),
        ([(22, 4), (21, 4), (160, 8)], struct.pack(">IIQ", 1000, 4000, EXPORT_S * 1000 - 5000),
         -4000, 3000),
        ([], b"", 0, 0),  # no times at all: the export time
    ],
)  # fmt: skip
def test_ipfix_times(fields, values, start_ms, elapsed_ms) -> None:
    batch, _ = decode(ipfix(template_set(301, BASE + fields), data_set(301, base(1, 1) + values)))
    assert batch["stime_ms"].tolist() == [EXPORT_S * 1000 + start_ms]
    assert batch["elapsed_ms"].tolist() == [elapsed_ms]


def test_withdrawal_and_redefinition() -> None:
    first = ipfix(template_set(302, BASE), data_set(302, base(100, 1)))
    withdraw = ipfix(template_set(302, []))  # field count 0: withdrawn
    after = ipfix(data_set(302, base(200, 2)))
    redefined = ipfix(template_set(302, [(8, 4), (12, 4), (1, 4)]), data_set(302, V4[0] + V4[1]
                      + struct.pack(">I", 300)))  # fmt: skip
    batch, decoder = decode(first, withdraw, after, redefined)
    assert batch["bytes"].tolist() == [100, 300]  # data for a withdrawn template is dropped
    counts = decoder.counts[(EXPORTER, 1)]
    assert (counts.template_misses, counts.pending_dropped) == (1, 1)
    everything = ipfix(struct.pack(">HHHH", 2, 8, 2, 0))  # template id 2, count 0: all withdrawn
    decoder.decode([(everything, EXPORTER)], 0.0)
    assert len(decoder.cache) == 0


def test_ipv6_icmp_enterprise_varlen_and_reduced_size() -> None:
    fields = [(27, 16), (28, 16), (4, 1), (139, 2), (99, 4, 9), (82, 65535), (1, 3), (2, 5)]
    source, destination = bytes.fromhex("20010db8" + "00" * 11 + "01"), bytes(16)
    record = source + destination + bytes([58]) + struct.pack(">H", 0x8100)
    record += b"\xde\xad\xbe\xef" + bytes([4]) + b"eth0" + (70_000).to_bytes(3, "big")
    record += (3).to_bytes(5, "big")
    long_name = bytes([255]) + struct.pack(">H", 300) + b"x" * 300
    record2 = record.replace(bytes([4]) + b"eth0", long_name)
    batch, decoder = decode(ipfix(template_set(303, fields), data_set(303, record, record2)))
    assert ip_strings(batch["sip"], batch["ipv6"]) == ["2001:db8::1", "2001:db8::1"]
    assert batch["ipv6"].tolist() == [True, True]
    assert batch["dport"].tolist() == [0x8100, 0x8100]  # ICMPv6 echo request: type 129
    assert batch["bytes"].tolist() == [70_000, 70_000]
    assert batch["packets"].tolist() == [3, 3]
    assert decoder.counts[(EXPORTER, 1)].malformed == 0


def test_malformed_sets_are_counted_and_earlier_sets_kept() -> None:
    good = template_set(304, BASE) + data_set(304, base(5, 1))
    broken = ipfix(good, struct.pack(">HH", 304, 400) + b"\x00" * 8)  # set overruns the message
    batch, decoder = decode(broken)
    assert batch["bytes"].tolist() == [5]
    assert decoder.counts[(EXPORTER, 1)].malformed == 1


def test_damage_the_fuzzer_found_is_malformed_not_a_crash() -> None:
    huge = template_set(305, [(1, 40_000), (2, 40_000)])  # records longer than any message
    truncated = template_set(306, [(82, 65535), (82, 65535)]) + data_set(306, b"\x01a")
    # options template 307, scope meteringProcessId; systemInitTimeMilliseconds all ones
    options = struct.pack(">HH", 3, 4 + 6 + 8) + struct.pack(">HHH", 307, 2, 1)
    options += struct.pack(">HHHH", 143, 4, 160, 8)
    damaged_init = data_set(307, struct.pack(">IQ", 1, (1 << 64) - 1))
    uptime = template_set(308, [*BASE, (22, 4), (21, 4)]) + data_set(308, base(1, 1) + bytes(8))
    batch, decoder = decode(
        ipfix(huge), ipfix(truncated), ipfix(options, damaged_init), ipfix(uptime)
    )
    assert batch["bytes"].tolist() == [1]
    assert decoder.counts[(EXPORTER, 1)].malformed == 2
    assert decoder.system_init_ms == {}  # not a time: ignored
    decoder.cache.sampling.set((EXPORTER, 1, 0), (1 << 64) - 1)
    assert decoder.cache.sampling.rate((EXPORTER, 1, 0)) == 0xFFFF_FFFF
