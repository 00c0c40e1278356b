"""Detection engine: embedded speed, memory per pair, recovery, and the stream end to end.

Measured in one run, on this machine (medians of ``--repeat``):

* **embedded** — ``silkwatch.streams.embedded.run`` over the demo day (``silkwatch demo``'s
  synthetic day, seed 7, 2,000 hosts, 1.05 M flows, batches in memory): flows/s
  of the whole stream (bins, detection, network hours), and of detection alone.
  Baseline in the same run: the bins side alone (``BinProcessor``), the part of
  the stream that was already fast.
* **memory** — bytes of detection state per tracked pair with 1 M pairs (16-byte
  retained flows counted apart), from the state's own accounting and from RSS.
* **recovery** — a partition holding 500,000 pairs: checkpoint size, time to write
  it (``dump_state``), to read it back (``load_state``), and to replay 100,000 flows
  on top.
* **end to end** (``--kafka``) — the demo day published to a real broker (8
  partitions), one ``silkwatch worker`` with every role (bins, detect); time from
  the first frame sent until the worker's detection reached the last offset of
  every partition and the bins hold every flow. Baseline in the same run: the
  same worker with ``--roles bins``. Then two workers in one group (the Kafka
  way to scale out: each takes half the partitions), against the one.

    .venv/bin/python bench/bench_detect.py [--repeat 3] [--kafka]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repo's test services are imported below

from silkwatch.detectors.config import DetectorsConfig  # noqa: E402
from silkwatch.detectors.pairs import PairConfig  # noqa: E402
from silkwatch.detectors.schema import empty_batch, ipv4_to_v16  # noqa: E402
from silkwatch.detectors.scoring import source_counts  # noqa: E402
from silkwatch.detectors.synthetic import synthetic_day  # noqa: E402
from silkwatch.runtime import tune_process  # noqa: E402
from silkwatch.streams.checkpoint import dump_state, load_state  # noqa: E402
from silkwatch.streams.detection import DetectionProcessor  # noqa: E402
from silkwatch.streams.embedded import run  # noqa: E402
from silkwatch.streams.processing import BinProcessor, BinStores, StreamConfig  # noqa: E402


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def embedded(batches: list[np.ndarray], repeat: int) -> None:
    flows = sum(len(b) for b in batches)

    def bins_only() -> None:
        processor = BinProcessor(BinStores({}, {}), 0, StreamConfig())
        for offset, batch in enumerate(batches):
            processor.process(batch, offset)
        processor.flush()

    def detection_only() -> None:
        processor = DetectionProcessor(0, StreamConfig(), DetectorsConfig())
        for offset, batch in enumerate(batches):
            processor.process(batch, offset)
        processor.flush()

    rounds = {
        "bins alone (baseline)": bins_only,
        "detection alone": detection_only,
        "whole stream": lambda: run(batches),
    }
    results = {name: [timed(fn) for _ in range(repeat)] for name, fn in rounds.items()}
    base = statistics.median(results["bins alone (baseline)"])
    print(f"embedded, demo day ({flows:,} flows, {len(batches)} batches, median of {repeat}):")
    for name, times in results.items():
        median = statistics.median(times)
        runs = [round(t, 2) for t in times]
        print(f"  {name:24s} {median:7.2f} s  {flows / median:12,.0f} flows/s  "
              f"{median / base:5.1f}x the baseline's time  runs {runs}")  # fmt: skip


def many_pairs(count: int, *, per_pair: int, seed: int = 3) -> list[np.ndarray]:
    """``count`` distinct pairs with ``per_pair`` flows each over one hour, in batches."""
    rng = np.random.default_rng(seed)
    total = count * per_pair
    batch = empty_batch(total)
    pair = np.repeat(np.arange(count, dtype=np.uint32), per_pair)
    batch["sip"] = ipv4_to_v16(0x0A000000 + pair // 64)
    batch["dip"] = ipv4_to_v16(0xC6336400 + pair % 64 * 7919)
    batch["dport"] = 443
    batch["proto"] = 6
    batch["sport"] = rng.integers(1024, 65535, total)
    batch["stime_ms"] = 1_434_553_200_000 + rng.integers(0, 3_600_000, total)
    batch["bytes"] = rng.integers(60, 5_000, total)
    batch["packets"] = rng.integers(1, 10, total)
    batch = batch[np.argsort(batch["stime_ms"], kind="stable")]
    return [batch[i : i + 262_144] for i in range(0, total, 262_144)]


def memory(pairs: int) -> None:
    config = DetectorsConfig(pairs=PairConfig(max_pairs=2 * pairs))
    batches = many_pairs(pairs, per_pair=2)
    tracemalloc.start()
    processor = DetectionProcessor(0, StreamConfig(), config)
    for offset, batch in enumerate(batches):
        processor.process(batch, offset)
    state = processor.state.pairs
    # what every hour close keeps between closes: the prevalence links (detectors/links.py)
    source_counts(state, since_ms=0, now_ms=int(state.last_ms.max()))
    state.compact()
    allocated, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    events = len(state.events)
    accounted = (state.nbytes - state.events.nbytes) / len(state)
    traced = (allocated - state.events.nbytes) / len(state)
    print(f"memory, {len(state):,} pairs ({events:,} retained flows, 16 bytes each):")
    print(f"  {accounted:7.0f} bytes per pair held by the pair state's columns and index")
    print(f"  {traced:7.0f} bytes per pair allocated in all (tracemalloc: the host hours too)")


def recovery(pairs: int) -> None:
    config = DetectorsConfig(pairs=PairConfig(max_pairs=2 * pairs))
    batches = many_pairs(pairs, per_pair=4)
    processor = DetectionProcessor(0, StreamConfig(), config)
    for offset, batch in enumerate(batches):
        processor.process(batch, offset)
    data = b""

    def dump() -> None:
        nonlocal data
        data = dump_state(processor.state, partition=0)

    write_s = timed(dump)
    state = None

    def load() -> None:
        nonlocal state
        state = load_state(data, config, partition=0)

    read_s = timed(load)
    tail = many_pairs(25_000, per_pair=4, seed=9)
    for batch in tail:
        batch["stime_ms"] += 3_600_000
    restored = DetectionProcessor(0, StreamConfig(), config, state=state)
    replay_s = timed(lambda: [restored.process(b, len(batches) + i) for i, b in enumerate(tail)])
    print(f"recovery, a partition of {len(processor.state.pairs):,} pairs:")
    print(f"  checkpoint {len(data) / 1e6:7.1f} MB; write {write_s:.2f} s, read {read_s:.2f} s, "
          f"replay of {sum(len(b) for b in tail):,} flows {replay_s:.2f} s; "
          f"restore = read + replay")  # fmt: skip


def end_to_end(batches: list[np.ndarray], repeat: int) -> None:
    from bench_stream_e2e import get_json, publish, wait_until, worker_on_new_topic

    from silkwatch.streams.network import network_totals
    from tests.services.kafka import start_kafka

    flows = sum(len(b) for b in batches)

    def once(broker, workdir: Path, roles: str, workers: int = 1) -> float:
        with worker_on_new_topic(broker, workdir, roles, workers) as (topic, bases):
            started = time.monotonic()
            publish(broker, topic, batches)
            ends = end_offsets(broker.bootstrap, topic)

            def done() -> bool:
                # the detect view is cheap; the bins view sums every table (~10 % of the
                # worker's time when polled every 50 ms), so it is asked last and less often
                if "detect" in roles:
                    reached: dict[str, int] = {}
                    for base in bases:  # each worker lists the partitions it holds
                        for p, status in get_json(f"{base}/detect/").items():
                            reached[p] = max(reached.get(p, -1), status.get("offset", -1))
                    if not all(reached.get(str(p), -1) >= end - 1
                               for p, end in ends.items() if end > 0):  # fmt: skip
                        return False
                binned = [network_totals(get_json(f"{base}/bins/")) for base in bases]
                return sum(v[0] for hours in binned for v in hours.values()) >= flows - 0.5

            return flows / (wait_until(done, poll_s=0.1) - started)

    with tempfile.TemporaryDirectory(prefix="silkwatch-bench-") as scratch:
        workdir = Path(scratch)
        broker = start_kafka(workdir / "kafka")
        try:
            once(broker, workdir, "bins")  # warm the broker's JIT up, not counted
            base = [once(broker, workdir, "bins") for _ in range(repeat)]
            full = [once(broker, workdir, "bins,detect") for _ in range(repeat)]
            two = [once(broker, workdir, "bins,detect", workers=2) for _ in range(repeat)]
        finally:
            broker.process.stop()
    b, f, t = statistics.median(base), statistics.median(full), statistics.median(two)
    print(
        f"end to end through Kafka, demo day ({flows:,} flows, 8 partitions, median of {repeat}):"
    )
    print(f"  --roles bins (baseline)   {b:12,.0f} flows/s  runs {[f'{r:,.0f}' for r in base]}")
    print(f"  --roles bins,detect       {f:12,.0f} flows/s  runs {[f'{r:,.0f}' for r in full]}")
    print(f"  ratio                     {f / b:12.2f}x")
    print(f"  two workers, every role   {t:12,.0f} flows/s  runs {[f'{r:,.0f}' for r in two]}")
    print(f"  ratio to one worker       {t / f:12.2f}x")


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The next offset of each partition of ``topic``."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return {tp.partition: end for tp, end in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def main() -> None:
    tune_process()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=1_000_000, help="pairs for the memory test")
    parser.add_argument("--kafka", action="store_true", help="also run end to end through Kafka")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores)")
    batches = synthetic_day(7, hosts=2_000).batches
    embedded(batches, args.repeat)
    memory(args.pairs)
    recovery(args.pairs // 2)
    if args.kafka:
        end_to_end(batches, args.repeat)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
