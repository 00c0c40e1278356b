"""Alert grouping cost for one huge group, against baselines measured in the same run.

``--alerts`` distinct alerts of one kind (one group), ``--repeat`` times (median printed):

* **grouping**: ``Grouper.add`` for every alert, then one ``Grouper.due`` that sends
  them all as one notification (what the delivery loop does with a burst);
* **decode baseline**: ``json.loads`` of the same alerts, the least any reader of the
  topic pays per alert;
* **validation**: ``silkwatch.connectors.alerting.schema.validate_alert`` (decode + schema);
* **scaling**: grouping at 1/4, 1/2 and all of ``--alerts``: time per alert should stay
  flat (the quadratic grouping it replaces cost 1.6 / 6.7 / 27 s at 1,000 / 2,000 /
  4,000 alerts).

    .venv/bin/python bench/bench_alert_grouping.py [--alerts 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json

from bench_metrics import median_s  # bench/ is the script's folder: sys.path[0]

from silkwatch.connectors.alerting.grouping import Grouper, GroupingConfig
from silkwatch.connectors.alerting.schema import validate_alert


def records(n: int) -> list[bytes]:
    """``n`` distinct exfil alerts as the topic holds them."""
    return [
        json.dumps(
            {
                "id": f"{i:016x}",
                "revision": 1,
                "kind": "exfil",
                "severity": "high",
                "score": 0.9,
                "sip": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                "dip": "198.51.100.7",
                "dport": 443,
                "proto": 6,
                "first_seen": "2015-06-17T15:00:00.000Z",
                "last_seen": "2015-06-17T16:00:00.000Z",
                "evidence": {"bytes": i},
                "reason": "5.0 MB out at 1400 B/packet.",
            }
        ).encode()
        for i in range(n)
    ]


def group(alerts: list[dict]) -> None:
    grouper = Grouper(GroupingConfig(group_wait_s=0))
    for offset, alert in enumerate(alerts):
        grouper.add(alert, now_s=0.0, token=(0, offset))
    (notification,) = grouper.due(now_s=0.0)
    assert len(notification.tokens) == len(alerts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    raw = records(args.alerts)
    alerts = [validate_alert(r) for r in raw]

    decode_s = median_s(lambda: [json.loads(r) for r in raw], args.repeat)
    validate_s = median_s(lambda: [validate_alert(r) for r in raw], args.repeat)
    group_s = median_s(lambda: group(alerts), args.repeat)
    print(f"alerts in one group           {args.alerts:>12,}")
    print(f"decode baseline (json.loads)  {decode_s:>12.3f} s")
    print(f"validation (schema)           {validate_s:>12.3f} s   {validate_s / decode_s:5.2f}x")
    print(f"grouping (add all + due)      {group_s:>12.3f} s   {group_s / decode_s:5.2f}x")
    for part in (4, 2, 1):
        n = args.alerts // part
        seconds = median_s(lambda n=n: group(alerts[:n]), args.repeat)
        print(
            f"grouping {n:>9,} alerts       {seconds:>12.3f} s   {seconds / n * 1e6:5.2f} µs/alert"
        )


if __name__ == "__main__":
    main()
