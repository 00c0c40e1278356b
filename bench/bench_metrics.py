"""Metrics recording and Geo-IP cost per flow, against naive baselines in the same run.

On the synthetic day (``silkwatch.detectors.synthetic``, ``--hosts`` client hosts), ``--repeat``
times (median printed):

* **record_batch**: ``silkwatch.connectors.prometheus.record_batch`` on every batch (one
  ``np.unique`` + ``bincount`` per batch), without and with Geo-IP;
* **per-flow baseline**: one ``labels(...).inc()`` per flow, as an agent that
  counted record by record would (measured on the first ``--baseline-rows`` rows
  and scaled per flow);
* **Geo-IP**: ``CountryDB.country_codes`` (one lookup per distinct dIP), cold (a
  fresh database each run) and warm (its address cache filled by an earlier
  batch, the steady state), against one lookup per row.

    .venv/bin/python bench/bench_metrics.py [--hosts 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from prometheus_client import CollectorRegistry

from silkwatch.connectors.geoip import CountryDB, _address
from silkwatch.connectors.prometheus import create_metrics, protocol_label, record_batch
from silkwatch.detectors.synthetic import synthetic_day


def median_s(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline-rows", type=int, default=50_000)
    args = parser.parse_args()
    day = synthetic_day(7, hosts=args.hosts)
    flows = sum(len(b) for b in day.batches)
    sample = np.concatenate(day.batches)[: args.baseline_rows]
    countries = CountryDB()

    def vectorised(geo: CountryDB | None) -> Callable[[], None]:
        def run() -> None:
            metrics = create_metrics(CollectorRegistry())
            for batch in day.batches:
                record_batch(metrics, batch, countries=geo)

        return run

    def per_flow() -> None:
        metrics = create_metrics(CollectorRegistry())
        for row in sample.tolist():
            names = [str(row[10]), str(row[15]), protocol_label(row[14])]  # sensor, flowtype, proto
            metrics.flows.labels(*names).inc()
            metrics.flow_bytes.labels(*names).inc(row[2])
            metrics.flow_packets.labels(*names).inc(row[1])

    def geo_per_row() -> None:
        for raw, v6 in zip(sample["dip"].tolist(), sample["ipv6"].tolist(), strict=True):
            countries.country_code(_address(bytes(raw), v6))

    def geo_cold() -> None:
        with CountryDB() as fresh:
            fresh.country_codes(sample["dip"], sample["ipv6"])

    def geo_warm() -> None:
        countries.country_codes(sample["dip"], sample["ipv6"])

    plain = median_s(vectorised(None), args.repeat) / flows
    with_geo = median_s(vectorised(countries), args.repeat) / flows
    naive = median_s(per_flow, args.repeat) / len(sample)
    geo_rows = median_s(geo_per_row, args.repeat) / len(sample)
    geo_unique = median_s(geo_cold, args.repeat) / len(sample)
    geo_warm_s = median_s(geo_warm, args.repeat) / len(sample)
    distinct = len(np.unique(sample["dip"]))
    rows = [
        ("record_batch", plain, ""),
        ("record_batch + Geo-IP (warm)", with_geo, ""),
        ("per-flow labels().inc()", naive, f"ratio {naive / plain:6.1f}x slower"),
        ("Geo-IP, every row", geo_rows, ""),
        ("Geo-IP, distinct, cold", geo_unique, f"ratio {geo_rows / geo_unique:6.1f}x faster"),
        ("Geo-IP, distinct, warm", geo_warm_s, f"ratio {geo_rows / geo_warm_s:6.1f}x faster"),
    ]
    print(
        f"flows {flows:,} in {len(day.batches)} batches; sample {len(sample):,} rows, "
        f"{distinct:,} distinct dIP"
    )
    for name, seconds, note in rows:
        print(f"{name:30s} {seconds * 1e9:9.1f} ns/flow {1 / seconds / 1e6:8.2f} M flows/s  {note}")


if __name__ == "__main__":
    main()
