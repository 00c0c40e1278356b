"""The collector's receiver, outputs, metrics and wiring, on real payloads."""

from __future__ import annotations

import io
import socket
import threading
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from silkwatch.connectors.netflow.collector import Collector
from silkwatch.connectors.netflow.decoder import Decoder
from silkwatch.connectors.netflow.metrics import register_metrics
from silkwatch.connectors.netflow.outputs import RepositoryWriter, StreamWriter
from silkwatch.connectors.netflow.receiver import UdpReceiver
from silkwatch.connectors.netflow.templates import TemplateCache
from silkwatch.connectors.silk import read_batches
from tests.connectors.netflow_spec import LOGSTASH

V5 = (LOGSTASH / "netflow5_test_microtik.dat").read_bytes()


def test_receiver_hands_over_what_was_sent() -> None:
    with (
        UdpReceiver([("127.0.0.1", 0)]) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        for _ in range(3):
            sender.sendto(V5, ("127.0.0.1", receiver.ports[0]))
        burst = []
        while len(burst) < 3:
            burst += receiver.burst(timeout_s=5.0)
    assert [(len(p), exporter) for p, exporter in burst] == [(len(V5), "127.0.0.1")] * 3
    assert (receiver.received, receiver.queue_dropped) == (3, 0)


def test_repository_hour_files_read_back(tmp_path: Path) -> None:
    collector = Collector(Decoder(), [RepositoryWriter(tmp_path)], sensor=3)
    batch = collector.handle([(V5, "192.0.2.1")], now_s=0.0)
    collector.sinks[0].close()
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["in/2016/07/21/in-S3_20160721.13"]
    back = np.concatenate(list(read_batches(tmp_path / files[0])))
    assert back["bytes"].tolist() == batch["bytes"].tolist()
    assert back["sensor"].tolist() == [3] * 30
    # a second burst appends to the same hour file, as rwflowappend does
    collector.sinks = [RepositoryWriter(tmp_path)]
    collector.handle([(V5, "192.0.2.1")], now_s=1.0)
    collector.sinks[0].close()
    assert sum(b.size for b in read_batches(tmp_path / files[0])) == 60


def test_stream_output_is_a_silk_file() -> None:
    out = io.BytesIO()
    stream = StreamWriter(out)
    Collector(Decoder(), [stream]).handle([(V5, "192.0.2.1")], now_s=0.0)
    out.seek(0)
    assert sum(b.size for b in read_batches(out)) == 30


def test_state_saved_by_the_collector_loop(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    template = (LOGSTASH / "ipfix_test_openbsd_pflow_tpl.dat").read_bytes()
    with UdpReceiver([("127.0.0.1", 0)]) as receiver:
        collector = Collector(Decoder(), [], state_path=state)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(template, ("127.0.0.1", receiver.ports[0]))
        stop = threading.Event()
        collector.run(receiver, stop, idle_exit_s=0.5)
    assert TemplateCache().load(state) == 2  # pflow: one IPv4 and one IPv6 template


def test_metrics_per_exporter_and_domain() -> None:
    decoder = Decoder()
    decoder.decode([(V5, "192.0.2.1"), (b"\x00\x07junk", "192.0.2.2")], 0.0)
    registry = CollectorRegistry()
    register_metrics(registry, decoder, lambda: 4)
    text = generate_latest(registry).decode()
    lines = [line for line in text.splitlines() if line.startswith("silkwatch_netflow_")]
    assert 'silkwatch_netflow_records_total{domain="0",exporter="192.0.2.1"} 30.0' in lines
    assert 'silkwatch_netflow_malformed_total{domain="0",exporter="192.0.2.2"} 1.0' in lines
    assert "silkwatch_netflow_receive_dropped_total 4.0" in lines
    assert "silkwatch_netflow_templates 0.0" in lines


def test_ipfix_over_tcp_is_cut_into_messages() -> None:
    template = (LOGSTASH / "ipfix_test_openbsd_pflow_tpl.dat").read_bytes()
    data = (LOGSTASH / "ipfix_test_openbsd_pflow_data.dat").read_bytes()
    with UdpReceiver([], tcp_addresses=[("127.0.0.1", 0)]) as receiver:
        with socket.create_connection(("127.0.0.1", receiver.tcp_ports[0])) as stream:
            stream.sendall(template + data[:10])  # a message split across writes
            stream.sendall(data[10:] + b"\x00\x05junk")  # then something not IPFIX
        burst = []
        while len(burst) < 3:
            burst += receiver.burst(timeout_s=5.0)
    assert [payload for payload, _ in burst] == [template, data, b"\x00\x05junk"]
    decoder = Decoder()
    assert decoder.decode(burst, 0.0).size == 26
    assert decoder.counts[("127.0.0.1", 0)].malformed == 1
