"""``silkwatch collect`` as a new user runs it: softflowd → collect → repository → count."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from silkwatch.cli import main
from silkwatch.connectors.silk import read_batches
from tests.connectors.netflow_exporters import free_udp_port, nfdump_records

PCAP = (
    Path(__file__).resolve().parents[3]
    / "shared/data/real/pcap/beacon/slips-test-cc-capture-2.pcap"
)
TOOLS = all(shutil.which(tool) for tool in ("softflowd", "nfcapd", "nfdump"))
COLLECT = "from silkwatch.cli import main; raise SystemExit(main())"


def softflowd(port: int, version: str, *extra: str) -> None:
    subprocess.run(
        ["softflowd", "-r", str(PCAP), "-n", f"127.0.0.1:{port}", "-v", version, "-d", "-a",
         *extra],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


@pytest.mark.skipif(not TOOLS, reason="softflowd, nfcapd and nfdump are needed")
@pytest.mark.parametrize(
    ("version", "transport"), [("5", "udp"), ("9", "udp"), ("10", "udp"), ("10", "tcp")]
)
def test_softflowd_into_repository_counts_as_nfdump(
    tmp_path: Path, capsys, version: str, transport: str
) -> None:
    port = free_udp_port()  # free for TCP as well on this idle loopback
    repository = tmp_path / "repo"
    collector = subprocess.Popen(
        [sys.executable, "-c", COLLECT, "collect", "--listen", f"{transport}://127.0.0.1:{port}",
         "--repository", str(repository), "--state", str(tmp_path / "state.json"),
         "--idle-exit", "1.5"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(3.0)  # the collector binds its socket
    softflowd(port, version, "-P", transport)
    _, stderr = collector.communicate(timeout=120)
    assert collector.returncode == 0, stderr
    assert "malformed 0, template misses 0" in stderr

    hour_files = sorted(p.relative_to(repository).parts[0] for p in repository.rglob("in-S0_*"))
    assert hour_files == ["in"]  # one hour of flows, type "in", sensor S0
    assert main(["count", "--bin-size", "86400", "--format", "json", str(repository)]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    ours = [sum(row[c] for row in rows) for c in ("records", "bytes", "packets")]

    capture = tmp_path / "nfcapd-export"  # the same export, into nfcapd
    capture.mkdir()
    records = nfdump_records(_captured(version), capture)
    theirs = [len(records), sum(r["in_bytes"] for r in records)]
    theirs.append(sum(r["in_packets"] for r in records))
    assert ours == theirs == [521, 231_575, 1_084]


def _captured(version: str) -> list[bytes]:
    from tests.connectors.netflow_exporters import softflowd_export

    return softflowd_export(PCAP, version, "-a")


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.skipif(not TOOLS, reason="softflowd is needed")
def test_collect_publishes_the_frames_of_publish(kafka_broker, tmp_path: Path) -> None:
    """Flows reach Kafka as ``silkwatch publish`` frames, each on its source's partition."""
    from kafka import KafkaConsumer, TopicPartition

    from silkwatch.connectors.kafka.frame import decode_frame, is_received_copy
    from silkwatch.connectors.kafka.publisher import partition_of

    topic = kafka_broker.create_topic("collect-frames", partitions=4)
    port = free_udp_port()
    collector = subprocess.Popen(
        [sys.executable, "-c", COLLECT, "collect", "--listen", f"udp://127.0.0.1:{port}",
         "--broker", kafka_broker.url, "--topic", topic, "--state", str(tmp_path / "s.json"),
         "--idle-exit", "1.5"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(6.0)  # the collector connects to the broker and binds its socket
    softflowd(port, "10")
    _, stderr = collector.communicate(timeout=120)
    assert collector.returncode == 0, stderr

    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in range(4)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    flows = octets = copies = 0
    foreign = 0  # own flows whose destination hashes to another partition: each has a copy
    while any(consumer.position(tp) < ends[tp] for tp in partitions):
        for tp, records in consumer.poll(timeout_ms=1000).items():
            for record in records:
                batch = decode_frame(record.value)
                if is_received_copy(record.value):  # here for its destinations
                    assert set(partition_of(batch, 4, address="dip").tolist()) == {tp.partition}
                    assert tp.partition not in set(partition_of(batch, 4).tolist())
                    copies += len(batch)
                    continue
                assert set(partition_of(batch, 4).tolist()) == {tp.partition}
                foreign += int((partition_of(batch, 4, address="dip") != tp.partition).sum())
                flows += len(batch)
                octets += int(batch["bytes"].sum())
    consumer.close()
    assert (flows, octets) == (521, 231_575)
    assert copies == foreign > 0


def test_mistakes_are_one_line_and_nothing_on_stdout(tmp_path: Path, capfd) -> None:
    import socket

    state = str(tmp_path / "state.json")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        busy = f"udp://127.0.0.1:{taken.getsockname()[1]}"
        (tmp_path / "bad.json").write_text("[1, 2]")
        cases = [
            (["--listen", busy, "--output", "-", "--state", state],
             f"silkwatch: error: --listen {busy}: Address already in use\n"),
            (["--listen", "http://x:1", "--output", "-"],
             "silkwatch: error: --listen http://x:1: expected udp://HOST:PORT or tcp://HOST:PORT\n"),
            (["--listen", busy, "--state", state],
             "silkwatch: error: collect needs an output: --broker, --repository or --output\n"),
            (["--listen", busy, "--output", "-", "--state", str(tmp_path / "bad.json")],
             f"silkwatch: error: collector state {tmp_path / 'bad.json'}: not a collector state "
             "file\n"),
        ]  # fmt: skip
        for argv, message in cases:
            assert main(["collect", *argv]) == 1
            assert capfd.readouterr() == ("", message)


@pytest.mark.skipif(not TOOLS, reason="softflowd is needed")
def test_restart_decodes_data_at_once_from_the_state_file(tmp_path: Path) -> None:
    """First run: the templates arrive. Second run: only data, and none of it is lost."""
    import socket

    from tests.connectors.netflow_exporters import softflowd_export

    datagrams = softflowd_export(PCAP, "10", "-a")  # the first and last carry templates
    state, repository = tmp_path / "state.json", tmp_path / "repo"
    lines = []
    for part in (datagrams[:1], datagrams[1:-1]):
        port = free_udp_port()
        collector = subprocess.Popen(
            [sys.executable, "-c", COLLECT, "collect", "--listen", f"udp://127.0.0.1:{port}",
             "--repository", str(repository), "--state", str(state), "--idle-exit", "1"],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(3.0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for datagram in part:
                sender.sendto(datagram, ("127.0.0.1", port))
        _, stderr = collector.communicate(timeout=60)
        lines.append(stderr.splitlines())
    assert lines[1][0].endswith(f"(5 templates from {state})")
    assert "collected 481 flows" in lines[1][-1]  # 521 - 24 (first) - 16 (last datagram)
    assert "template misses 0" in lines[1][-1]
    assert sum(b.size for p in repository.rglob("in-S0_*") for b in read_batches(p)) == 24 + 481
