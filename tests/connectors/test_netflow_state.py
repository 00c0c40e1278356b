"""Restart with persisted templates, sampling, sequence accounting, and a fuzzer."""

from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from silkwatch.connectors.netflow.decoder import Decoder
from silkwatch.connectors.netflow.templates import TemplateCache
from tests.connectors.netflow_spec import LOGSTASH

EXPORTER = "192.0.2.1"


def payload(name: str) -> bytes:
    return (LOGSTASH / name).read_bytes()


def v9(sequence: int, *flowsets: bytes, source_id: int = 7) -> bytes:
    """A NetFlow v9 packet (uptime 10 s, export time 1,700,000,000 s)."""
    return struct.pack(">HHIIII", 9, len(flowsets), 10_000, 1_700_000_000, sequence, source_id) + (
        b"".join(flowsets)
    )


def flowset(set_id: int, body: bytes) -> bytes:
    return struct.pack(">HH", set_id, 4 + len(body)) + body


#: template 256: src, dst (IPv4), octets, packets (4 bytes), FLOW_SAMPLER_ID (1 byte)
TEMPLATE = flowset(
    0, struct.pack(">HH", 256, 5) + struct.pack(">10H", 8, 4, 12, 4, 1, 4, 2, 4, 48, 1)
)
#: options template 257: scope system (4 bytes); FLOW_SAMPLER_ID (1), SAMPLING_INTERVAL (4)
OPTIONS = flowset(1, struct.pack(">HHH", 257, 4, 8) + struct.pack(">6H", 1, 4, 48, 1, 34, 4))


def record(octets: int, packets: int, sampler: int) -> bytes:
    return bytes([10, 0, 0, 1, 10, 0, 0, 2]) + struct.pack(">IIB", octets, packets, sampler)


def test_restart_with_persisted_templates_loses_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    before = Decoder()
    before.decode([(payload("ipfix_test_mikrotik_tpl.dat"), EXPORTER)], 0.0)
    before.cache.save(state)
    data = [(payload(f"ipfix_test_mikrotik_data{n}.dat"), EXPORTER) for n in (258, 259)]

    cache = TemplateCache()
    assert cache.load(state) == 2
    after = Decoder(cache)
    assert after.decode(data, 0.0).size == 46
    assert after.counts[(EXPORTER, 0)].template_misses == 0

    cold = Decoder()  # without the state file: both sets miss their template
    assert cold.decode(data, 0.0).size == 0
    assert cold.counts[(EXPORTER, 0)].template_misses == 2


def test_held_data_decodes_when_template_comes_or_is_dropped_in_time() -> None:
    decoder = Decoder(pending_s=10.0)
    data = payload("ipfix_test_openbsd_pflow_data.dat")
    assert decoder.decode([(data, EXPORTER)], now_s=0.0).size == 0
    assert decoder.pending_sets == 1
    assert decoder.decode([(payload("ipfix_test_openbsd_pflow_tpl.dat"), EXPORTER)], 5.0).size == 26
    assert decoder.pending_sets == 0
    decoder.decode([(data, "192.0.2.2")], now_s=20.0)  # another exporter: no template
    decoder.decode([], now_s=31.0)
    counts = decoder.counts[("192.0.2.2", 42)]
    assert (counts.template_misses, counts.pending_dropped, decoder.pending_sets) == (1, 1, 0)


def test_sampling_rate_from_options_scales_counters() -> None:
    decoder = Decoder()
    options_data = flowset(257, struct.pack(">IBI", 0, 2, 100) + struct.pack(">IBI", 0, 3, 10))
    packet = v9(1, TEMPLATE, OPTIONS, options_data)
    data = flowset(256, record(1000, 10, 2) + record(50, 1, 3) + record(7, 1, 9))
    batch = decoder.decode([(packet, EXPORTER), (v9(2, data), EXPORTER)], 0.0)
    assert batch["bytes"].tolist() == [100_000, 500, 7]  # sampler 9 unknown: unscaled
    assert batch["packets"].tolist() == [1000, 10, 1]
    assert decoder.cache.sampling.rate((EXPORTER, 7, 2)) == 100


def test_sampling_rate_of_v5_header() -> None:
    batch = Decoder().decode([(payload("netflow5_test_juniper_mx80.dat"), EXPORTER)], 0.0)
    # header sampling_interval 1000; the first record says 1 packet, 1500 bytes
    assert (int(batch["packets"][0]), int(batch["bytes"][0])) == (1 * 1000, 1500 * 1000)


def _with_sequence(data: bytes, offset: int, sequence: int) -> bytes:
    return data[:offset] + struct.pack(">I", sequence) + data[offset + 4 :]


def test_sequence_gaps_per_protocol() -> None:
    decoder = Decoder()
    # v5: flow_sequence counts flows; 30 flows in the MikroTik packet
    v5 = payload("netflow5_test_microtik.dat")
    decoder.decode([(_with_sequence(v5, 16, s), EXPORTER) for s in (0, 30, 90, 60)], 0.0)
    # v9: package_sequence counts packets
    v9_data = payload("netflow9_test_valid01.dat")
    decoder.decode([(_with_sequence(v9_data, 12, s), "192.0.2.9") for s in (5, 6, 9)], 0.0)
    # IPFIX: sequence counts data records per domain (26 in the pflow data set)
    tpl, data = (
        payload("ipfix_test_openbsd_pflow_tpl.dat"),
        payload("ipfix_test_openbsd_pflow_data.dat"),
    )
    decoder.decode(
        [(_with_sequence(tpl, 8, 0), "192.0.2.7")]
        + [(_with_sequence(data, 8, s), "192.0.2.7") for s in (0, 26, 100)],
        0.0,
    )
    engine = payload("netflow5_test_microtik.dat")[20] << 8 | v5[21]
    assert decoder.counts[(EXPORTER, engine)].lost_records == 30  # 60..89; 60 came late
    assert decoder.counts[("192.0.2.9", 0)].lost_packets == 2
    assert decoder.counts[("192.0.2.7", 42)].lost_records == 100 - 52


PAYLOADS = sorted(LOGSTASH.glob("*.dat"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(PAYLOADS),
            st.lists(st.tuples(st.integers(0, 1499), st.integers(0, 255)), max_size=8),
            st.integers(0, 1500),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_fuzzed_payloads_never_crash_and_memory_stays_bounded(mutations) -> None:
    cache = TemplateCache(max_exporters=2, max_templates=4)
    decoder = Decoder(cache, pending_bytes=1 << 16, max_sources=3)
    burst = []
    for index, (path, flips, cut) in enumerate(mutations):
        data = bytearray(path.read_bytes())
        for at, value in flips:
            if at < len(data):
                data[at] = value
        burst.append((bytes(data[: cut or None]), f"192.0.2.{index % 3}"))
        batch = decoder.decode(burst[-1:], index)
        assert batch.dtype.names[0] == "stime_ms"
    decoder.decode(burst, len(burst))  # and all at once: one vectorised pass per template
    assert len(decoder.cache) <= 2 * 4
    assert len(decoder.counts) <= 3
    assert decoder._pending_size <= 1 << 16
