"""The shipped Prometheus alerting rules (``docker/prometheus/rules.yml``): valid for
``promtool check rules``, and each rule fires, or stays quiet, on exact series timelines
under ``promtool test rules``."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docker" / "prometheus" / "rules.yml"

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing")

WORKER = {"job": "silkwatch", "instance": "worker:6066"}
DELIVERER = {"job": "silkwatch-alerts", "instance": "alerts:9465"}


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


def annotations(alert: str, labels: dict[str, str]) -> dict[str, str]:
    """The rule's annotations with ``{{ $labels.x }}`` filled in, as Prometheus renders them."""
    (rule,) = [
        r
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for r in group["rules"]
        if r["alert"] == alert
    ]
    return {
        key: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)
        for key, text in rule["annotations"].items()
    }


def fires(alert: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    """``alert`` is firing at ``at`` with exactly these label sets (none: not firing)."""
    return {
        "eval_time": at,
        "alertname": alert,
        "exp_alerts": [
            {"exp_labels": dict(label_set), "exp_annotations": annotations(alert, label_set)}
            for label_set in labels
        ],
    }


def run_promtool(
    tmp_path: Path, name: str, input_series: list[dict], expected: list[dict]
) -> tuple[int, str]:
    """``promtool test rules`` on one timeline: (exit status, output)."""
    path = tmp_path / "rules_test.yml"
    test = {"name": name, "interval": "1m", "input_series": input_series}
    path.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(RULES)],
                "evaluation_interval": "1m",
                "tests": [{**test, "alert_rule_test": expected}],
            },
            sort_keys=False,
        )
    )
    done = subprocess.run(
        ["promtool", "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout + done.stderr


def test_promtool_check_rules():
    done = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    last = done.stdout.strip().splitlines()[-1].strip()
    assert (done.returncode, last) == (0, "SUCCESS: 6 rules found")


# each case: (input series, expected alerts), one promtool test per case
CASES = {
    "worker down for 2 min fires, a 1-min blip does not": (
        [series("up", WORKER, "1 1 0 1 0 0 0 0 0")],
        [
            fires("SilkwatchWorkerDown", "3m"),
            fires("SilkwatchWorkerDown", "5m"),
            fires(
                "SilkwatchWorkerDown",
                "6m",
                {"severity": "critical", **WORKER},
            ),
        ],
    ),
    "deliverer down": (
        [series("up", DELIVERER, "0x5")],
        [fires("SilkwatchDelivererDown", "3m", {"severity": "critical", **DELIVERER})],
    ),
    "lag growing for 15 min fires; lag high but shrinking does not": (
        [
            series(
                "silkwatch_kafka_consumer_lag_messages",
                {**WORKER, "topic": "flows", "partition": "0"},
                "2000+500x40",
            ),
            series(
                "silkwatch_kafka_consumer_lag_messages",
                {**WORKER, "topic": "bins", "partition": "0"},
                "50000-500x40",
            ),
        ],
        [
            fires("SilkwatchConsumerLagGrowing", "10m"),
            fires("SilkwatchConsumerLagGrowing", "30m", {"severity": "warning", "topic": "flows"}),
        ],
    ),
    "no flows for 10 min while a worker is up": (
        [
            series("up", WORKER, "1x40"),
            series(
                "silkwatch_flows_total",
                {**WORKER, "sensor": "0", "flowtype": "0", "protocol": "tcp"},
                "0+100x10 1000x30",
            ),
        ],
        [
            fires("SilkwatchNoFlows", "12m"),  # flows stopped at 10 m: not yet
            fires("SilkwatchNoFlows", "26m", {"severity": "warning"}),
        ],
    ),
    "a sink that only fails fires; one that fails and recovers does not": (
        [
            series(
                "silkwatch_alert_delivery_failures_total",
                {**DELIVERER, "sink": "slack", "reason": "http_503"},
                "0+2x30",
            ),
            series(
                "silkwatch_alert_delivery_failures_total",
                {**DELIVERER, "sink": "teams", "reason": "timeout"},
                "0+1x30",
            ),
            series("silkwatch_alert_deliveries_total", {**DELIVERER, "sink": "teams"}, "0+1x30"),
        ],
        [
            fires(
                "SilkwatchAlertDeliveryFailing", "20m", {"severity": "critical", "sink": "slack"}
            ),
        ],
    ),
    "dead letters in the last hour": (
        [
            series(
                "silkwatch_alerts_dead_lettered_total",
                {**DELIVERER, "reason": "invalid_severity"},
                "0 0 1 1 1",
            )
        ],
        [
            fires("SilkwatchAlertsDeadLettered", "1m"),
            fires(
                "SilkwatchAlertsDeadLettered",
                "4m",
                {"severity": "warning", "reason": "invalid_severity"},
            ),
        ],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rule_timelines(tmp_path, case):
    code, output = run_promtool(tmp_path, case, *CASES[case])
    assert (code, output.strip().splitlines()[-1].strip()) == (0, "SUCCESS"), output


def test_a_wrong_expectation_fails(tmp_path):
    # the harness can fail: a worker that never went down must not be reported down
    code, output = run_promtool(
        tmp_path,
        "up all along",
        [series("up", WORKER, "1x10")],
        [fires("SilkwatchWorkerDown", "5m", WORKER)],
    )
    assert code == 1 and "FAILED" in output
