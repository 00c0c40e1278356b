"""SiLK decode throughput: ``read_batches`` against the memory-bandwidth floor, same run.

Writes ``--records`` synthetic flows (default 10 M; 5 % IPv6) once with our
SilkWriter as FT_RWIPV6ROUTING v1 uncompressed and zlib, and FT_RWGENERIC v5
uncompressed, into ``bench/out/`` (kept and reused on later runs). Then, for
each file, ``--repeat`` times (median printed):

Times are CPU seconds of this process (the one-core figure; wall time is
printed beside it), so other load on a shared machine does not count.

* **decode**: ``sum(len(b) for b in read_batches(path))`` — header, reads,
  decompression, decode to ``FLOW_DTYPE``, SiLK's fix-ups;
* **baseline**: what any decoder must at least do, measured the same way:
  read the same byte ranges, then one ``np.frombuffer(...).copy()`` into an
  output of the batch's size (uncompressed), or ``zlib.decompress`` of every
  block (zlib). The ratio decode/baseline is the figure to watch; absolute
  records/s depend on the machine and its load.

    .venv/bin/python bench/bench_silk_decode.py [--records 10000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from silkwatch.runtime import tune_process

tune_process()  # as the silkwatch command runs: before numpy is imported
import numpy as np  # noqa: E402

from silkwatch.connectors.silk import Compression, FileFormat, SilkWriter, read_batches, read_header  # noqa: E402
from silkwatch.detectors.schema import FLOW_DTYPE, empty_batch  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
CHUNK = 1_000_000
ROWS = 65_536
FILES = {  # name: (format, compression)
    "ipv6routing-v1-none.rw": (FileFormat.FT_RWIPV6ROUTING, Compression.NONE),
    "ipv6routing-v1-zlib.rw": (FileFormat.FT_RWIPV6ROUTING, Compression.ZLIB),
    "generic-v5-none.rw": (FileFormat.FT_RWGENERIC, Compression.NONE),
}


def synthetic_flows(rows: int, *, ipv6_share: float, seed: int) -> np.ndarray:
    """One hour of plausible flows: a few thousand hosts, common ports, small counters."""
    rng = np.random.default_rng(seed)
    b = empty_batch(rows)
    b["stime_ms"] = 1_434_553_200_000 + np.sort(rng.integers(0, 3_600_000, rows))
    b["elapsed_ms"] = rng.exponential(2_000, rows).astype(np.uint32)
    b["proto"] = rng.choice([6, 17, 1], rows, p=[0.6, 0.38, 0.02])
    b["sport"] = rng.integers(1024, 65536, rows)
    b["dport"] = rng.choice([53, 80, 443, 22, 123, 8080], rows)
    b["packets"] = rng.integers(1, 2_000, rows)
    b["bytes"] = b["packets"] * rng.integers(40, 1500, rows)
    b["flags"] = np.where(b["proto"] == 6, rng.integers(0, 64, rows), 0)
    b["sensor"], b["flowtype"] = 3, 1
    b["ipv6"] = rng.random(rows) < ipv6_share
    for column in ("sip", "dip"):
        raw = np.zeros((rows, 16), np.uint8)
        raw[:, 10:12] = 0xFF
        raw[:, 12], raw[:, 14], raw[:, 15] = (
            10,
            rng.integers(0, 16, rows),
            rng.integers(0, 256, rows),
        )
        v6 = b["ipv6"]
        raw[v6] = rng.integers(0, 256, (int(v6.sum()), 16))
        raw[v6, :2] = (0x20, 0x01)
        b[column] = raw.view("V16").reshape(-1)
    raw = np.zeros((rows, 16), np.uint8)
    raw[~b["ipv6"], 10:12] = 0xFF
    b["nhip"] = raw.view("V16").reshape(-1)
    return b


def ensure_file(name: str, records: int) -> Path:
    """Write the benchmark file unless an identical one is already there."""
    file_format, compression = FILES[name]
    path = OUT / f"{records}-{name}"
    if path.exists() and read_header(path).file_format == file_format:
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    partial = path.with_name(path.name + ".partial")
    ipv6_share = 0.05 if file_format == FileFormat.FT_RWIPV6ROUTING else 0.0
    with SilkWriter(partial, file_format=file_format, compression=compression) as writer:
        for seed, start in enumerate(range(0, records, CHUNK)):
            writer.write(
                synthetic_flows(min(CHUNK, records - start), ipv6_share=ipv6_share, seed=seed)
            )
    partial.rename(path)
    elapsed_s = time.perf_counter() - started
    print(f"wrote {path.name}: {path.stat().st_size / 1e6:,.0f} MB in {elapsed_s:.1f} s")
    return path


def decode(path: Path) -> int:
    return sum(len(batch) for batch in read_batches(path, rows=ROWS))


def baseline_raw(path: Path) -> int:
    """Read the records in batch-sized pieces and copy them once into a batch-sized array."""
    header = read_header(path)
    records = 0
    with open(path, "rb") as stream:
        stream.seek(header.length)
        while chunk := stream.read(ROWS * header.rec_size):
            rows = len(chunk) // header.rec_size
            out = np.empty(rows * FLOW_DTYPE.itemsize, np.uint8)
            out[: len(chunk)] = np.frombuffer(chunk, np.uint8)
            records += rows
    return records


def baseline_zlib(path: Path) -> int:
    """Read and inflate every block, nothing else."""
    header = read_header(path)
    records = 0
    with open(path, "rb") as stream:
        stream.seek(header.length)
        while prefix := stream.read(8):
            compressed, _ = struct.unpack(">II", prefix)
            records += len(zlib.decompress(stream.read(compressed))) // header.rec_size
    return records


def median_rate(run: Callable[[Path], int], path: Path, repeat: int) -> tuple[float, float, int]:
    """Median records per CPU second and per wall second over ``repeat`` runs, and the count.

    CPU time of this process is the one-core figure on a shared machine: wall
    time also counts the turns other processes take on the cores.
    """
    cpu_s, wall_s, counts = [], [], set()
    for _ in range(repeat):
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        counts.add(run(path))
        cpu_s.append(time.process_time() - cpu_started)
        wall_s.append(time.perf_counter() - wall_started)
    (count,) = counts
    return count / statistics.median(cpu_s), count / statistics.median(wall_s), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("records per CPU second (per wall second in brackets), median of", args.repeat)
    print(f"{'file':<24} {'decode':>22} {'baseline':>22} {'decode/baseline':>16}")
    for name in FILES:
        path = ensure_file(name, args.records)
        baseline = baseline_zlib if "zlib" in name else baseline_raw
        decoded, decoded_wall, count = median_rate(decode, path, args.repeat)
        floor, floor_wall, floor_count = median_rate(baseline, path, args.repeat)
        assert count == floor_count == args.records, (count, floor_count)
        print(
            f"{name:<24} {decoded / 1e6:>8.1f} M ({decoded_wall / 1e6:>6.1f} M) "
            f"{floor / 1e6:>8.1f} M ({floor_wall / 1e6:>6.1f} M) {decoded / floor:>15.2f}x"
        )


if __name__ == "__main__":
    main()
