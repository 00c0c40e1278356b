"""Alert latency on a live feed: from publishing the deciding flow to the alert on the topic.

A real broker and one ``silkwatch worker --roles detect`` (default settings:
scoring every 2 s of wall time between hour closes). Flows are stamped with the
wall clock, as a router's would be, over a light background feed. Planted
findings, one after another:

* **beacons** — a host's first 11 callbacks (every 10 s, stamped in the last two
  minutes) are published ahead; then the 12th, the one that makes a beacon
  (``min_callbacks``), is published and the clock starts.
* **exfiltration** — a host's 8 earlier hours of ordinary uploads (stamped in
  the past 8 hours) are published ahead; then one 40 MB upload is published and
  the clock starts.

The clock stops when the alert for that host is read from the alerts topic.
Baseline in the same run: the hour-close path (``SILKWATCH_SCORE_INTERVAL_S=0``),
where the same beacon waits for its hour to end plus the allowed lateness;
measured as the event-time wait it implies (the time left in the hour + 30 min),
since nobody waits for it in a benchmark.

    .venv/bin/python bench/bench_alert_latency.py [--beacons 12] [--exfil 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from kafka import KafkaConsumer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repo's test services are imported below

from silkwatch.connectors.kafka.publisher import FlowPublisher  # noqa: E402
from silkwatch.detectors.schema import make_batch  # noqa: E402
from tests.services.kafka import start_kafka  # noqa: E402
from tests.services.process import free_port, start_service, url_answers  # noqa: E402

HOUR_MS = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


def beacon_history(i: int, count: int, end_ms: int, period_s: int = 10) -> np.ndarray:
    """``count`` callbacks of host 10.9.0.i ending ``period_s`` before ``end_ms``."""
    times = [end_ms - (count - k) * period_s * 1000 for k in range(count)]
    return make_batch(
        sip=[f"10.9.0.{i}"] * count, dip=[f"203.0.113.{i}"] * count, dport=[443] * count,
        proto=[6] * count, sport=range(40_000, 40_000 + count), stime_ms=times,
        elapsed_ms=[200] * count, bytes=[420] * count, packets=[6] * count,
    )  # fmt: skip


def exfil_history(i: int, end_ms: int) -> np.ndarray:
    """Eight earlier hours of ~200 kB uploads from 10.8.0.i, and what it received."""
    hours = [end_ms - h * HOUR_MS for h in range(1, 9)]
    up = make_batch(
        sip=[f"10.8.0.{i}"] * 8, dip=["192.0.2.80"] * 8, dport=[443] * 8, proto=[6] * 8,
        sport=[50_000 + h for h in range(8)], stime_ms=hours, bytes=[200_000] * 8,
        packets=[400] * 8, elapsed_ms=[5_000] * 8,
    )  # fmt: skip
    down = make_batch(
        sip=["192.0.2.80"] * 8, dip=[f"10.8.0.{i}"] * 8, sport=[443] * 8, proto=[6] * 8,
        dport=[50_000 + h for h in range(8)], stime_ms=hours, bytes=[900_000] * 8,
        packets=[700] * 8, elapsed_ms=[5_000] * 8,
    )  # fmt: skip
    return np.concatenate([up, down])


def upload(i: int, at_ms: int) -> np.ndarray:
    """One 40 MB upload to a new destination, in big packets."""
    return make_batch(
        sip=[f"10.8.0.{i}"], dip=["198.51.100.66"], dport=[443], proto=[6], sport=[61_000],
        stime_ms=[at_ms], bytes=[40_000_000], packets=[28_000], elapsed_ms=[60_000],
    )  # fmt: skip


def background(at_ms: int, rng: np.random.Generator, n: int = 200) -> np.ndarray:
    """Ordinary web traffic of 100 hosts around ``at_ms``."""
    return make_batch(
        sip=[f"10.7.0.{h}" for h in rng.integers(1, 100, n).tolist()],
        dip=[f"192.0.2.{d}" for d in rng.integers(1, 250, n).tolist()],
        dport=[443] * n, proto=[6] * n, sport=rng.integers(30_000, 60_000, n).tolist(),
        stime_ms=(at_ms - rng.integers(0, 2_000, n)).tolist(),
        bytes=rng.integers(500, 20_000, n).tolist(), packets=rng.integers(4, 30, n).tolist(),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beacons", type=int, default=12)
    parser.add_argument("--exfil", type=int, default=8)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores)")
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory(prefix="silkwatch-latency-") as scratch:
        workdir = Path(scratch)
        broker = start_kafka(workdir / "kafka")
        tag = uuid.uuid4().hex[:8]
        topic, alerts_topic, port = f"live-{tag}", f"live-{tag}-alerts", free_port()
        broker.create_topic(topic, 8)
        argv = [sys.executable, "-m", "silkwatch", "worker", "--broker", broker.url,
                "--app-id", f"latency-{tag}", "--topic", topic, "--web-port", str(port),
                "--data-dir", str(workdir / "data"), "--roles", "detect"]  # fmt: skip
        old = dict(os.environ)
        os.environ.update({"SILKWATCH_ALERTS_TOPIC": alerts_topic,
                           "SILKWATCH_BINS_TOPIC": f"{topic}-bins"})  # fmt: skip
        try:
            worker = start_service(
                "worker", argv, log_path=workdir / "worker.log",
                ready=lambda: url_answers(f"http://127.0.0.1:{port}/silkwatch/bins/"),
                timeout_s=120,
            )  # fmt: skip
        finally:
            os.environ.clear()
            os.environ.update(old)
        consumer = KafkaConsumer(
            alerts_topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="latest",
            consumer_timeout_ms=200,
        )  # fmt: skip
        latencies: dict[str, list[float]] = {"beacon": [], "exfil": []}
        try:
            with FlowPublisher(broker.url, topic) as publisher:
                publisher.send(background(now_ms(), rng))
                publisher.flush()
                time.sleep(5)  # assignment settles, partitions restored
                plants = [("beacon", i) for i in range(1, args.beacons + 1)]
                plants += [("exfil", i) for i in range(1, args.exfil + 1)]
                for kind, i in plants:
                    t = now_ms()
                    ahead = beacon_history(i, 11, t) if kind == "beacon" else exfil_history(i, t)
                    publisher.send(np.concatenate([ahead, background(t, rng)]))
                    publisher.flush()
                    time.sleep(2.5)  # scored without the deciding flow: no alert yet
                    deciding = beacon_history(i, 1, now_ms() + 10_000) if kind == "beacon" \
                        else upload(i, now_ms())  # fmt: skip
                    sip = f"10.9.0.{i}" if kind == "beacon" else f"10.8.0.{i}"
                    started = time.monotonic()
                    publisher.send(deciding)
                    publisher.flush()
                    latency = wait_for_alert(consumer, kind, sip, started, publisher, rng)
                    latencies[kind].append(latency)
                    print(f"  {kind:6s} {sip:11s} {latency:6.2f} s", flush=True)
        finally:
            consumer.close()
            worker.stop()
            broker.process.stop()
    every = latencies["beacon"] + latencies["exfil"]
    median = statistics.median(every)
    wait_s = (HOUR_MS - (now_ms() % HOUR_MS)) / 1000 + 1800
    beacons, exfil = statistics.median(latencies["beacon"]), statistics.median(latencies["exfil"])
    print(f"alert latency over {len(every)} planted findings: median {median:.2f} s, "
          f"max {max(every):.2f} s (beacons {beacons:.2f} s, exfil {exfil:.2f} s)")  # fmt: skip
    print(f"hour-close path (baseline): the same finding waits for its hour's end plus 30 min "
          f"of lateness: {wait_s:,.0f} s from now; ratio {wait_s / median:,.0f}x")  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def wait_for_alert(consumer, kind, sip, started, publisher, rng, timeout_s: float = 120.0) -> float:
    """Seconds from ``started`` until an alert of ``kind`` for ``sip`` is read; feeds background."""
    deadline = started + timeout_s
    last_feed = time.monotonic()
    while time.monotonic() < deadline:
        for record in consumer:
            alert = json.loads(record.value)
            if alert.get("kind") == kind and alert.get("sip") == sip:
                return time.monotonic() - started
        if time.monotonic() - last_feed > 1.0:  # a live feed keeps flowing
            publisher.send(background(now_ms(), rng))
            last_feed = time.monotonic()
    raise SystemExit(f"no {kind} alert for {sip} within {timeout_s:.0f} s")


if __name__ == "__main__":
    main()
