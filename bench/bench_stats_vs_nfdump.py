"""Top talkers: ``silkwatch stats`` against ``nfdump -s srcip/bytes`` on the same flows.

Both tools answer "top 10 source addresses by bytes" over the same synthetic
flows (default 10 M flows from 50,000 Zipf-distributed IPv4 hosts spread over
the whole address space). The flows are written once as a SiLK file (our
SilkWriter) and once exported as NetFlow v9 over UDP to a loopback ``nfcapd``,
so nfdump reads its own file format. Before timing, both answers and both
flow counts must agree. Then each tool runs ``--repeat`` times and the
medians and their ratio are printed, measured in this same run.

Run as root for the socket buffer (``sysctl -w net.core.rmem_max=134217728``);
nfcapd drops packets otherwise, which the count check reports.

    .venv/bin/python bench/bench_stats_vs_nfdump.py [--flows 10000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from silkwatch.cli import build_parser
from silkwatch.commands.count import READ_ROWS
from silkwatch.connectors.silk import SilkWriter, read_batches
from silkwatch.connectors.silk.header import FileFormat
from silkwatch.detectors.schema import empty_batch, ipv4_to_v16

START_MS = 1_434_553_200_000  # 2015-06-17 15:00 UTC, one hour of flows
CHUNK = 1_000_000
RMEM_BYTES = 134_217_728

# NetFlow v9 (RFC 3954): one template, fixed-size big-endian records
V9_FIELDS = [  # (field type, length, numpy type)
    (8, 4, ">u4"),  # IPV4_SRC_ADDR
    (12, 4, ">u4"),  # IPV4_DST_ADDR
    (7, 2, ">u2"),  # L4_SRC_PORT
    (11, 2, ">u2"),  # L4_DST_PORT
    (4, 1, "u1"),  # PROTOCOL
    (6, 1, "u1"),  # TCP_FLAGS
    (2, 4, ">u4"),  # IN_PKTS
    (1, 4, ">u4"),  # IN_BYTES
    (22, 4, ">u4"),  # FIRST_SWITCHED (ms of system uptime)
    (21, 4, ">u4"),  # LAST_SWITCHED
]
V9_RECORD = np.dtype([(f"f{i}", kind) for i, (_, _, kind) in enumerate(V9_FIELDS)])
TEMPLATE_ID = 256
RECORDS_PER_PACKET = 1_000  # 30 kB datagrams: loopback has a 64 kB MTU
UPTIME_BASE_MS = 10_000


def synth_chunk(index: int, rows: int, hosts: np.ndarray, zipf_s: float) -> np.ndarray:
    """``rows`` flows whose sources follow a Zipf law over ``hosts`` (seeded by ``index``)."""
    rng = np.random.default_rng(1_000 + index)
    ranks = np.arange(1, len(hosts) + 1, dtype=np.float64)
    weights = ranks**-zipf_s
    cumulative = np.cumsum(weights / weights.sum())
    batch = empty_batch(rows)
    batch["sip"] = ipv4_to_v16(
        hosts[np.searchsorted(cumulative, rng.random(rows)).clip(max=len(hosts) - 1)]
    )
    batch["dip"] = ipv4_to_v16(rng.integers(0x0A000000, 0x0AFFFFFF, rows, dtype=np.uint32))
    batch["sport"] = rng.integers(1024, 65536, rows)
    batch["dport"] = rng.choice(np.array([53, 80, 123, 443, 8080, 22]), rows)
    batch["proto"] = np.where(batch["dport"] % 2 == 1, 17, 6)
    batch["packets"] = rng.integers(1, 200, rows)
    batch["bytes"] = batch["packets"] * rng.integers(40, 1500, rows)
    batch["stime_ms"] = START_MS + np.sort(rng.integers(0, 3_600_000, rows))
    batch["elapsed_ms"] = rng.integers(0, 60_000, rows)
    batch["sensor"] = 0
    batch["flowtype"] = 1
    return batch


def iter_flows(flows: int, hosts: np.ndarray, zipf_s: float) -> Iterator[np.ndarray]:
    for index, start in enumerate(range(0, flows, CHUNK)):
        yield synth_chunk(index, min(CHUNK, flows - start), hosts, zipf_s)


def v9_packets(batch: np.ndarray, sequence: int) -> Iterator[bytes]:
    """NetFlow v9 datagrams for a batch: records packed by numpy, one bytes object per packet."""
    records = np.zeros(len(batch), V9_RECORD)
    v4 = np.ascontiguousarray(batch["sip"]).view(">u4").reshape(-1, 4)[:, 3]
    records["f0"] = v4
    records["f1"] = np.ascontiguousarray(batch["dip"]).view(">u4").reshape(-1, 4)[:, 3]
    records["f2"], records["f3"] = batch["sport"], batch["dport"]
    records["f4"], records["f5"] = batch["proto"], batch["flags"]
    records["f6"], records["f7"] = batch["packets"], batch["bytes"]
    first = batch["stime_ms"] - START_MS + UPTIME_BASE_MS
    records["f8"], records["f9"] = first, first + batch["elapsed_ms"]
    # the exporter's clock: uptime 0 at START_MS - UPTIME_BASE_MS; "now" is the hour's end
    uptime_ms = 3_600_000 + 120_000 + UPTIME_BASE_MS
    unix_s = (START_MS + 3_600_000 + 120_000) // 1000
    template = np.array(
        [0, 4 + 4 + 4 * len(V9_FIELDS), TEMPLATE_ID, len(V9_FIELDS)]
        + [value for field_type, length, _ in V9_FIELDS for value in (field_type, length)],
        dtype=">u2",
    ).tobytes()
    raw = records.tobytes()
    for offset in range(0, len(records), RECORDS_PER_PACKET):
        count = min(RECORDS_PER_PACKET, len(records) - offset)
        body = raw[offset * V9_RECORD.itemsize : (offset + count) * V9_RECORD.itemsize]
        padding = (-len(body)) % 4
        header = (
            np.array([9, count + 1], ">u2").tobytes()
            + np.array([uptime_ms, unix_s, sequence, 1], ">u4").tobytes()
        )
        flowset = np.array([TEMPLATE_ID, 4 + len(body) + padding], ">u2").tobytes()
        sequence += 1
        yield header + template + flowset + body + bytes(padding)


def raise_socket_buffer() -> None:
    try:
        subprocess.run(["sysctl", "-qw", f"net.core.rmem_max={RMEM_BYTES}"], check=True)
    except (OSError, subprocess.CalledProcessError):
        print(
            "warning: could not raise net.core.rmem_max; nfcapd may drop packets", file=sys.stderr
        )


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def nfdump_missing() -> bool:
    """True (said on stderr) when nfdump's tools are not installed."""
    if shutil.which("nfcapd") and shutil.which("nfdump"):
        return False
    print("nfdump/nfcapd not installed (apt-get install nfdump)", file=sys.stderr)
    return True


def flows_on_disk(options: argparse.Namespace, workdir: Path, zipf_s: float) -> tuple[Path, Path]:
    """The bench's flows as a SiLK file and an nfcapd folder: written now, or with
    ``--reuse`` those an earlier run left in ``--workdir``."""
    if options.reuse and options.workdir:
        return workdir / "flows.rw", workdir / "nfcapd"
    return prepare(workdir, options.flows, options.hosts, zipf_s)


def prepare(workdir: Path, flows: int, hosts_count: int, zipf_s: float) -> tuple[Path, Path]:
    """Write the SiLK file and fill an nfcapd directory with the same flows."""
    silk_path, nf_dir = workdir / "flows.rw", workdir / "nfcapd"
    nf_dir.mkdir()
    rng = np.random.default_rng(0)
    drawn = np.unique(rng.integers(0x01000000, 0xDF000000, 2 * hosts_count, dtype=np.uint32))
    hosts = rng.permutation(drawn)[:hosts_count]  # distinct unicast addresses, random order
    raise_socket_buffer()
    port = free_udp_port()
    collector = subprocess.Popen(
        [
            "nfcapd",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            str(nf_dir),
            "-B",
            str(RMEM_BYTES),
            "-t",
            "3600",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # let it bind
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sequence = 0
    try:
        with SilkWriter(silk_path, file_format=FileFormat.FT_RWGENERIC) as writer:
            for batch in iter_flows(flows, hosts, zipf_s):
                writer.write(batch)
                for number, packet in enumerate(v9_packets(batch, sequence)):
                    sender.sendto(packet, ("127.0.0.1", port))
                    if number % 64 == 63:
                        time.sleep(0.002)  # stay below what nfcapd drains
                sequence += -(-len(batch) // RECORDS_PER_PACKET)
        time.sleep(2.0)
    finally:
        sender.close()
        collector.send_signal(signal.SIGTERM)
        collector.wait(timeout=60)
    return silk_path, nf_dir


def nfdump_top(nf_dir: Path) -> tuple[list[tuple[str, int]], int]:
    """nfdump's top 10 (address, bytes) and its total flow count, from one run."""
    out = subprocess.run(
        ["nfdump", "-R", str(nf_dir), "-s", "srcip/bytes", "-n", "10", "-N"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    top = []
    for line in out.splitlines():
        # date time duration proto address flows(%) packets(%) bytes(%) pps bps bpp
        if re.match(r"\d{4}-\d\d-\d\d ", line):
            flows_packets_bytes = re.findall(r"(\d+)\(", line)
            top.append((line.split()[4], int(flows_packets_bytes[2])))
    return top, int(re.search(r"total flows: (\d+)", out).group(1))


def silkwatch_top(silk_path: Path) -> tuple[list[tuple[str, int]], int]:
    document = json.loads(run_in_process(silk_path, "json"))
    return [(row["sIP"], row["Bytes"]) for row in document["rows"]], document["input_records"]


NFDUMP = "nfdump -s srcip/bytes -n 10"
STATS_ARGV = ["stats", "--fields", "sIP", "--values", "bytes", "--count", "10"]


def run_in_process(silk_path: Path, fmt: str = "text") -> str:
    args = build_parser("stats").parse_args([*STATS_ARGV, "--format", fmt, str(silk_path)])
    raw = _Captured()  # a real stdout's shape: text on top, bytes (``.buffer``) below
    with contextlib.redirect_stdout(io.TextIOWrapper(raw, write_through=True)):
        args.run(args)
    return raw.getvalue().decode()


class _Captured(io.BytesIO):
    """Bytes a command writes to stdout; still readable after the command closes it."""

    def close(self) -> None:
        pass


def timed_rounds(actions: dict[str, Callable[[], object]], repeat: int) -> dict[str, list[float]]:
    """Wall seconds of each action, run in interleaved rounds.

    On a shared machine the load drifts within a minute; running the tools
    one after the other in every round exposes them to the same drift, so
    their medians stay comparable.
    """
    seconds: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(repeat):
        for name, action in actions.items():
            started = time.perf_counter()
            action()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--flows", type=int, default=10_000_000)
    parser.add_argument("--hosts", type=int, default=50_000)
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent (default 1.0)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path, help="keep the data here (default: a temp dir)")
    parser.add_argument(
        "--reuse", action="store_true", help="use the flows already in --workdir (no export)"
    )
    options = parser.parse_args()
    if nfdump_missing():
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-stats-") as scratch:
        workdir = options.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        silk_path, nf_dir = flows_on_disk(options, workdir, options.zipf)
        print(
            f"prepared {options.flows:,} flows in {time.perf_counter() - started:.1f} s: "
            f"{silk_path.stat().st_size / 1e6:.0f} MB SiLK, "
            f"{sum(f.stat().st_size for f in nf_dir.iterdir()) / 1e6:.0f} MB nfcapd"
        )

        theirs, their_flows = nfdump_top(nf_dir)
        ours, our_flows = silkwatch_top(silk_path)
        print(f"flows: silkwatch {our_flows:,}  nfdump {their_flows:,}")
        if their_flows != our_flows or theirs != ours:
            print(f"MISMATCH\n  nfdump    {theirs}\n  silkwatch {ours}", file=sys.stderr)
            return 1
        print(f"top 10 agree; #1 {ours[0][0]} with {ours[0][1]:,} bytes")

        nfdump_argv = ["nfdump", "-R", str(nf_dir), "-s", "srcip/bytes", "-n", "10"]
        cli_argv = [sys.executable, "-m", "silkwatch", *STATS_ARGV, str(silk_path)]
        help_argv = [sys.executable, "-m", "silkwatch", "stats", "--help"]
        results = timed_rounds(
            {
                NFDUMP: lambda: subprocess.run(nfdump_argv, capture_output=True, check=True),
                "silkwatch stats (command)": lambda: subprocess.run(
                    cli_argv, capture_output=True, check=True
                ),
                "silkwatch stats (in process)": lambda: run_in_process(silk_path),
                # the SiLK reader's share: decoding the file into full flow batches
                "  of which read_batches": lambda: sum(
                    len(b) for b in read_batches(silk_path, rows=READ_ROWS)
                ),
                # what the command pays before it reads a byte (interpreter, imports)
                "  start-up (stats --help)": lambda: subprocess.run(
                    help_argv, capture_output=True, check=True
                ),
            },
            options.repeat,
        )
        baseline = statistics.median(results[NFDUMP])
        print(
            f"\nmedian of {options.repeat} interleaved rounds, {options.flows:,} flows, "
            f"{options.hosts:,} hosts"
        )
        for name, seconds in results.items():
            median = statistics.median(seconds)
            print(
                f"  {name:32s} {median:7.3f} s  x{median / baseline:.2f} of nfdump  "
                f"(runs {' '.join(f'{s:.2f}' for s in seconds)})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
