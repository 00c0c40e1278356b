"""End-to-end stream throughput through a real Kafka broker: batches vs one message per flow.

Measured in one run, on this machine:

* **batch design** — ``FlowPublisher`` sends frames of flows; a ``silkwatch worker
  --roles bins`` counts hourly bins. Time from the first send to the moment the
  worker's ``/silkwatch/bins/`` view holds every flow.
* **per-record baseline** — the common Faust pattern (``bench/per_record_app.py``):
  one JSON message per flow, a ``faust.Record`` per message, table updates per
  flow. Same clock: first send to last count.
* **memory per tracked pair** — resident memory of the detection state (pair
  histories, host hours) held by the embedded runner, divided by the pairs held.

Flows are generated before the clock starts (50,000 Zipf-distributed hosts, one
hour). One round of the batch design warms the broker's JIT up first and is not
counted. Medians of ``--repeat`` runs::

    .venv/bin/python bench/bench_stream_e2e.py [--flows 2000000] [--baseline-flows 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from kafka import KafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repo's test services are imported below

from silkwatch.connectors.kafka.publisher import FlowPublisher  # noqa: E402
from silkwatch.detectors.schema import FlowBatch, empty_batch, ipv4_to_v16, v16_to_ipv4  # noqa: E402
from silkwatch.runtime import tune_process  # noqa: E402
from silkwatch.streams.network import network_totals  # noqa: E402
from tests.services.kafka import start_kafka  # noqa: E402
from tests.services.process import free_port, start_service, url_answers  # noqa: E402

HOUR_MS = 3_600_000
START_MS = 1_434_553_200_000
ROWS = 65_536


def synthetic_flows(count: int, seed: int = 1) -> list[FlowBatch]:
    """``count`` flows of one hour from 50,000 Zipf-distributed sources, in batches."""
    rng = np.random.default_rng(seed)
    batch = empty_batch(count)
    hosts = np.minimum(rng.zipf(1.3, count), 50_000).astype(np.uint32)
    batch["sip"] = ipv4_to_v16(0x0A000000 + hosts)
    batch["dip"] = ipv4_to_v16(0xC6336400 + rng.integers(0, 4096, count).astype(np.uint32))
    batch["stime_ms"] = START_MS + rng.integers(0, HOUR_MS, count)
    batch["packets"] = rng.integers(1, 50, count)
    batch["bytes"] = batch["packets"] * rng.integers(40, 1500, count)
    batch["proto"] = 6
    batch["sensor"] = 0
    batch["flowtype"] = 1
    return [batch[i : i + ROWS] for i in range(0, count, ROWS)]


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def wait_until(condition, timeout_s: float = 600.0, poll_s: float = 0.05) -> float:
    """Poll until true; return the monotonic time it became true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(poll_s)
    raise TimeoutError("the worker did not finish in time")


def start_worker(argv: list[str], env: dict[str, str], ready_url: str, log: Path):
    old = dict(os.environ)
    os.environ.update(env)
    try:
        return start_service("worker", argv, log_path=log, ready=lambda: url_answers(ready_url),
                             timeout_s=120)  # fmt: skip
    finally:
        os.environ.clear()
        os.environ.update(old)


@contextmanager
def worker_on_new_topic(
    broker, workdir: Path, roles: str, workers: int = 1
) -> Iterator[tuple[str, list[str]]]:
    """A new 8-partition flows topic with ``workers`` ``silkwatch worker --roles ROLES`` on it.

    Yields the topic and the base URLs of the workers' views, once the group has
    settled its assignment (a clock started inside counts only the stream).
    """
    tag = uuid.uuid4().hex[:8]
    topic = f"bench-{tag}"
    broker.create_topic(topic, 8)
    env = {"SILKWATCH_BINS_TOPIC": f"{topic}-bins", "SILKWATCH_ALERTS_TOPIC": f"{topic}-alerts"}
    started, bases = [], []
    try:
        for n in range(workers):
            port = free_port()
            argv = [sys.executable, "-m", "silkwatch", "worker", "--broker", broker.url,
                    "--app-id", f"bench-{tag}", "--topic", topic, "--web-port", str(port),
                    "--data-dir", str(workdir / f"{tag}-{n}"), "--roles", roles]  # fmt: skip
            base = f"http://127.0.0.1:{port}/silkwatch"
            log = workdir / f"worker-{tag}-{n}.log"
            started.append(start_worker(argv, env, f"{base}/bins/", log))
            bases.append(base)
        time.sleep(3 * workers)  # let the group settle its assignment before the clock starts
        yield topic, bases
    finally:
        for worker in started:
            worker.stop()


def publish(broker, topic: str, batches: list[FlowBatch]) -> None:
    """Every batch to ``topic``, acknowledged."""
    with FlowPublisher(broker.url, topic) as publisher:
        for batch in batches:
            publisher.send(batch)


def run_batch_design(broker, workdir: Path, batches: list[FlowBatch]) -> float:
    """Flows/s from the first frame sent to the last flow counted in the bins."""
    total = sum(len(b) for b in batches)
    with worker_on_new_topic(broker, workdir, "bins") as (topic, (base,)):
        started = time.monotonic()
        publish(broker, topic, batches)
        done = wait_until(
            lambda: network_totals(get_json(f"{base}/bins/")).get(START_MS, (0,))[0] >= total - 0.5
        )
        return total / (done - started)


def run_per_record(broker, workdir: Path, batches: list[FlowBatch], count: int) -> float:
    """Flows/s of the one-message-per-flow Faust agent."""
    tag = uuid.uuid4().hex[:8]
    topic, port = f"bench-records-{tag}", free_port()
    broker.create_topic(topic, 8)
    env = {"SILKWATCH_BROKER": broker.url, "BENCH_TOPIC": topic, "PYTHONPATH": str(ROOT),
           "SILKWATCH_APP_ID": f"bench-rec-{tag}", "SILKWATCH_WEB_PORT": str(port),
           "BENCH_DATA_DIR": str(workdir / f"per-record-{tag}")}  # fmt: skip
    argv = [sys.executable, "-m", "faust", "-A", "bench.per_record_app", "worker", "-l", "warn",
            "--web-port", str(port)]  # fmt: skip
    url = f"http://127.0.0.1:{port}/records/"
    worker = start_worker(argv, env, url, workdir / f"per-record-{tag}.log")
    flows = np.concatenate(batches)[:count]
    last_octet = (v16_to_ipv4(flows["sip"]) & 0xFF).tolist()
    columns = zip(
        last_octet, flows["stime_ms"].tolist(), flows["bytes"].tolist(),
        flows["packets"].tolist(), strict=True,
    )  # fmt: skip
    messages = [
        json.dumps({"sip": f"10.0.0.{s}", "stime_ms": t, "bytes": b, "packets": p}).encode()
        for s, t, b, p in columns
    ]
    try:
        time.sleep(3)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5)
        started = time.monotonic()
        for i, message in enumerate(messages):
            producer.send(topic, value=message, partition=i % 8)
        producer.flush()
        done = wait_until(lambda: get_json(url)["records"] >= count)
        producer.close()
        return count / (done - started)
    finally:
        worker.stop()


def memory_per_pair(batches: list[FlowBatch]) -> tuple[float, int]:
    """Resident bytes of the detection state per pair held (embedded runner)."""
    from silkwatch.streams.embedded import EmbeddedStream

    def rss() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    before = rss()
    stream = EmbeddedStream()
    for batch in batches:
        stream.send(batch)
    pairs = len(stream.detection.state.pairs)
    return (rss() - before) / max(pairs, 1), pairs


def main() -> None:
    tune_process()  # the publisher runs here: set up the process as `silkwatch publish` does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=2_000_000)
    parser.add_argument("--baseline-flows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    batches = synthetic_flows(args.flows)
    with tempfile.TemporaryDirectory(prefix="silkwatch-bench-") as scratch:
        workdir = Path(scratch)
        broker = start_kafka(workdir / "kafka")
        try:
            # a broker runs for days: warm its JIT up with one round, not counted
            run_batch_design(broker, workdir, batches)
            batch_rates = [run_batch_design(broker, workdir, batches) for _ in range(args.repeat)]
            base_rates = [
                run_per_record(broker, workdir, batches, args.baseline_flows)
                for _ in range(args.repeat)
            ]
        finally:
            broker.process.stop()
    batch_rate, base_rate = statistics.median(batch_rates), statistics.median(base_rates)
    print(f"batch design : {batch_rate:12,.0f} flows/s end to end (median of {args.repeat}; "
          f"{args.flows:,} flows; runs {[f'{r:,.0f}' for r in batch_rates]})")  # fmt: skip
    print(f"per-record   : {base_rate:12,.0f} flows/s end to end (median of {args.repeat}; "
          f"{args.baseline_flows:,} flows; runs {[f'{r:,.0f}' for r in base_rates]})")  # fmt: skip
    print(f"ratio        : {batch_rate / base_rate:12,.1f}x")
    per_pair, pairs = memory_per_pair(batches[: max(1, 500_000 // ROWS)])
    print(
        f"memory       : {per_pair:12,.0f} bytes resident per tracked host pair ({pairs:,} pairs)"
    )


if __name__ == "__main__":
    main()
