"""NetFlow v9 / IPFIX collector: decode rate per core, and receive rate without drops.

Measured in one run, on this machine:

* **decode** — flows per CPU second of ``Decoder.decode`` (bursts of 1,024
  datagrams, as the receiver hands them over) on softflowd's export of a shared
  pcap, replayed until ``--flows`` flows. **Baseline: nfcapd** (nfdump 1.7)
  receiving the same datagrams over loopback: its CPU seconds (``/proc/PID/stat``)
  for the flows it stored (``nfdump`` counts them back; any it lost are reported).
  goflow2 too when it is built (``GOFLOW2``, default ``/tmp/gopath/bin/goflow2``:
  ``GOPATH=/tmp/gopath go install github.com/netsampler/goflow2/v2/cmd/goflow2@latest``),
  measured the same way, its own metrics counting the flows.
* **receive** — ``silkwatch collect`` in its own process, a sender here pacing
  the same datagrams at a target rate for ``--seconds``; the collector's own
  closing line says how many flows it decoded and how many datagrams the kernel
  or its queue dropped. With ``--broker`` (``kafka`` starts a local one) the
  flows are also published to Kafka (acks=all), as in production.

Goals (issue 15): decode >= 2,000,000 flows/s per core; >= 500,000 flows/s
received and published with zero drops::

    .venv/bin/python bench/bench_collect.py [--flows 2000000] [--rates 250000,500000]
        [--broker kafka]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repo's test helpers are imported below

from silkwatch.connectors.netflow.decoder import Decoder  # noqa: E402
from silkwatch.runtime import tune_process  # noqa: E402
from tests.connectors.netflow_exporters import (  # noqa: E402
    free_udp_port,
    softflowd_export,
)

PCAP = ROOT.parent / "shared" / "data" / "real" / "pcap" / "beacon" / "slips-test-cc-capture-2.pcap"
BURST = 1024


def export(version: str, flows: int) -> tuple[list[bytes], int]:
    """softflowd's datagrams for the pcap, repeated until about ``flows`` flows."""
    datagrams = softflowd_export(PCAP, version, "-a")
    per_round = Decoder().decode([(d, "x") for d in datagrams], 0.0).size
    rounds = max(1, flows // per_round)
    return datagrams * rounds, per_round * rounds


def flows_per_datagram(datagrams: list[bytes]) -> list[int]:
    """The flows each datagram carries (templates already known)."""
    decoder = Decoder()
    decoder.decode([(d, "x") for d in datagrams], 0.0)
    return [decoder.decode([(d, "x")], 0.0).size for d in datagrams]


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def decode_rate(datagrams: list[bytes], repeat: int) -> tuple[float, int]:
    """Median flows per CPU second of our decoder over the export."""
    rates = []
    flows = 0
    for _ in range(repeat):
        decoder = Decoder()
        started = time.process_time()
        flows = 0
        for start in range(0, len(datagrams), BURST):
            burst = [(d, "192.0.2.1") for d in datagrams[start : start + BURST]]
            flows += decoder.decode(burst, 0.0).size
        rates.append(flows / (time.process_time() - started))
    return statistics.median(rates), flows


def send_paced(datagrams: list[bytes], port: int, rate_dps: float) -> float:
    """Send datagrams to 127.0.0.1:port at about ``rate_dps`` a second; returns seconds."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        started = time.monotonic()
        for i, datagram in enumerate(datagrams):
            sock.sendto(datagram, ("127.0.0.1", port))
            if i % 64 == 63:
                ahead = (i + 1) / rate_dps - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        return time.monotonic() - started


def nfcapd_rate(datagrams: list[bytes], flows: int, rate_dps: float) -> tuple[float, int]:
    """nfcapd's flows per CPU second on the same datagrams, and the flows it stored."""
    with tempfile.TemporaryDirectory() as folder:
        port = free_udp_port()
        daemon = subprocess.Popen(
            ["nfcapd", "-w", folder, "-p", str(port), "-b", "127.0.0.1", "-B", str(64 << 20)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.5)
        before = cpu_s(daemon.pid)
        send_paced(datagrams, port, rate_dps)
        last = -1.0
        while (now := cpu_s(daemon.pid)) != last:  # until it stops working
            last = now
            time.sleep(0.5)
        used = last - before
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        stat = subprocess.run(
            ["nfdump", "-R", folder, "-q", "-o", "fmt:%pr"], capture_output=True, text=True
        ).stdout
        stored = sum(1 for line in stat.splitlines() if line.strip())
    return stored / used, stored


GOFLOW2 = Path(os.environ.get("GOFLOW2", "/tmp/gopath/bin/goflow2"))


def goflow2_rate(datagrams: list[bytes], rate_dps: float) -> tuple[float, int]:
    """goflow2's flows per CPU second on the same datagrams (protobuf to /dev/null).

    The first datagram (softflowd's templates) goes alone and goflow2 is given a
    moment: it decodes datagrams on parallel workers, and data racing ahead of its
    template is dropped ("template not found").
    """
    port, metrics_port = free_udp_port(), free_udp_port()
    daemon = subprocess.Popen(
        [str(GOFLOW2), "-listen", f"netflow://127.0.0.1:{port}", "-addr",
         f"127.0.0.1:{metrics_port}", "-format", "bin", "-transport.file", "/dev/null",
         "-loglevel", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(1.5)
        send_paced(datagrams[:1], port, rate_dps)
        time.sleep(0.5)
        before = cpu_s(daemon.pid)
        send_paced(datagrams[1:], port, rate_dps)
        last = -1.0
        while (now := cpu_s(daemon.pid)) != last:
            last = now
            time.sleep(0.5)
        used = last - before
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as response:
            text = response.read().decode()
        stored = sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in text.splitlines()
            if line.startswith("goflow2_flow_process_nf_flowset_records_total")
            and 'type="DataFlowSet"' in line
        )
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    return stored / used, stored


def receive(datagrams: list[bytes], rate_fps: int, seconds: float, broker: str | None) -> dict:
    """Run ``silkwatch collect`` and send at ``rate_fps`` flows/s; what it reports."""
    carried = flows_per_datagram(datagrams)
    per_datagram = sum(carried) / len(carried)
    count = int(rate_fps * seconds / per_datagram)
    rounds = count // len(datagrams) + 1
    stream = (datagrams * rounds)[:count]
    sent = sum((carried * rounds)[:count])
    port = free_udp_port()
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-c", "from silkwatch.cli import main; raise SystemExit(main())",
                   "collect", "--listen", f"udp://127.0.0.1:{port}", "--idle-exit", "3",
                   "--state", f"{folder}/state.json"]  # fmt: skip
        command += ["--broker", broker, "--topic", f"bench-{time.time_ns()}"] if broker else []
        command += [] if broker else ["--output", f"{folder}/out.rw"]
        collector = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        time.sleep(6.0 if broker else 3.0)
        elapsed = send_paced(stream, port, count / seconds)
        _, stderr = collector.communicate(timeout=600)
    line = stderr.strip().splitlines()[-1]
    flows = int(re.search(r"collected ([\d,]+) flows", line)[1].replace(",", ""))
    drops = int(re.search(r"receive drops (\d+)", line)[1])
    return {"sent": sent, "flows": flows, "drops": drops, "sent_fps": sent / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rates", default="250000,500000,750000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--broker", help="kafka://HOST:PORT, or 'kafka' to start one")
    args = parser.parse_args()
    tune_process()  # as the silkwatch command does: freed batch memory reused, no page faults
    print(f"load before: {os.getloadavg()}")
    for version, name in (("9", "NetFlow v9"), ("10", "IPFIX")):
        datagrams, flows = export(version, args.flows)
        ours, decoded = decode_rate(datagrams, args.repeat)
        theirs, stored = nfcapd_rate(datagrams, flows, rate_dps=20_000)
        print(
            f"decode {name}: {len(datagrams):,} datagrams, {flows:,} flows | silkwatch "
            f"{ours:,.0f} flows/CPU-s ({decoded:,} decoded) | nfcapd {theirs:,.0f} flows/CPU-s "
            f"({stored:,} stored) | ratio {ours / theirs:.2f}"
        )
        if GOFLOW2.exists():
            go_rate, go_flows = goflow2_rate(datagrams, rate_dps=20_000)
            print(
                f"decode {name}: goflow2 {go_rate:,.0f} flows/CPU-s ({go_flows:,} decoded, "
                f"all its cores) | ratio {ours / go_rate:.2f}"
            )
    broker = args.broker
    started = None
    if broker == "kafka":
        from tests.services.kafka import start_kafka

        started = start_kafka(Path(tempfile.mkdtemp(prefix="bench-kafka-")))
        broker = started.url
    try:
        datagrams, _ = export("10", 0)  # one round: templates first, as softflowd sends
        for rate in (int(r) for r in args.rates.split(",")):
            result = receive(datagrams, rate, args.seconds, broker)
            print(
                f"receive IPFIX at {rate:,} flows/s target ({result['sent_fps']:,.0f} sent/s) "
                f"{'-> kafka' if broker else '-> SiLK file'}: sent {result['sent']:,}, "
                f"collected {result['flows']:,}, drops {result['drops']}"
            )
    finally:
        if started is not None:
            started.process.stop()
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
