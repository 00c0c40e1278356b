"""Secrets never reach a log line, at any verbosity: ``silkwatch -vv alerts deliver`` runs
as a process against the real broker and real receivers on 127.0.0.1 (one of them
down, so failures are logged too), and every line it writes is searched for the tokens."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer

from silkwatch.connectors.alerting.secrets import RedactingFilter, Secret, redact
from silkwatch.detectors.alerts import Alert
from tests.connectors.alert_samples import stamped
from tests.connectors.receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_TOKEN = "T0KEN-webhook-8c1f2a"
APPRISE_TOKEN = "T0KEN-apprise-55e0b7"
SLACK_TOKEN = "XoXbSlackT0KEN993"
TOKENS = (WEBHOOK_TOKEN, APPRISE_TOKEN, SLACK_TOKEN)


def deliver(config: Path, broker: str, env: dict[str, str], *verbosity: str, log=subprocess.PIPE):
    """``silkwatch alerts deliver`` as a process; ``log`` takes its output (a file for a
    long verbose run: a pipe nobody reads would fill and stall it)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "silkwatch",
            *verbosity,
            "alerts",
            "deliver",
            "--broker",
            broker,
            "--config",
            str(config),
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.kafka
def test_no_token_in_any_line_of_a_vv_run(kafka_broker, tmp_path):
    topic = kafka_broker.create_topic("alerts-secrets", 1)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    for i in range(3):
        alert = Alert("exfil", "high", 0.9, "10.0.0.5", f"198.51.100.{i}", 443, 6, 0, 1000)
        producer.send(topic, json.dumps(stamped(alert)).encode())
    producer.send(topic, b'{"kind": ["exfil"]}')  # a poison one: dead-lettered, logged
    producer.flush()
    producer.close()
    webhook, apprise_receiver, slack = Receiver().start(), Receiver().start(), Receiver()
    config = tmp_path / "sinks.toml"
    config.write_text(
        f'topic = "{topic}"\n[grouping]\ngroup_wait_s = 0\n'
        '[[sinks]]\nname = "hook"\ntype = "webhook"\nurl_env = "T_HOOK"\n'
        '[[sinks]]\nname = "app"\ntype = "apprise"\nurl_env = "T_APPRISE"\n'
        '[[sinks]]\nname = "slack"\ntype = "slack"\nurl_env = "T_SLACK"\n'
    )
    env = {
        "T_HOOK": f"{webhook.url}/hooks/{WEBHOOK_TOKEN}?sig={WEBHOOK_TOKEN}",
        "T_APPRISE": f"json://127.0.0.1:{apprise_receiver.port}/apprise/{APPRISE_TOKEN}",
        "T_SLACK": f"{slack.url}/services/T0/B0/{SLACK_TOKEN}",  # down: failures logged
    }
    log_path = tmp_path / "deliver.log"
    with log_path.open("w") as log:
        process = deliver(config, kafka_broker.url, env, "-vv", log=log)
    try:
        for _ in range(600):
            if (webhook.requests and apprise_receiver.requests) or process.poll() is not None:
                break
            time.sleep(0.1)
        time.sleep(2.0)  # a few failed slack attempts more
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        webhook.stop()
        apprise_receiver.stop()
    assert webhook.requests and apprise_receiver.requests
    lines = log_path.read_text().splitlines()
    assert len(lines) > 50  # -vv: the clients' debug story is there
    assert [line for line in lines if any(token in line for token in TOKENS)] == []
    assert any("alert delivery failed sink=slack reason=connection" in line for line in lines)
    assert any("alert dead-lettered" in line and "reason=invalid_kind" in line for line in lines)


def test_unparseable_apprise_url_at_default_verbosity(tmp_path):
    config = tmp_path / "sinks.toml"
    config.write_text('[[sinks]]\nname = "app"\ntype = "apprise"\nurl_env = "T_APPRISE"\n')
    token = "T0KEN-unparseable-4411"
    process = deliver(
        config, "kafka://127.0.0.1:9", {"T_APPRISE": f"nosuchscheme://{token}@x/{token}"}
    )
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    assert token not in out
    assert out.splitlines()[-1] == (
        f"silkwatch: error: alert config: {config}: sinks[0] (app): "
        "alert delivery: sink app: apprise_url_not_understood"
    )


def test_redacting_filter_covers_arguments_and_tracebacks():
    Secret("https://hooks.example/services/T0AAA/B0BBB/ZZtopSECRET77", "test")
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "posting to %s failed", ("ZZtopSECRET77",), None
    )
    try:
        raise ValueError("https://hooks.example/services/T0AAA/B0BBB/ZZtopSECRET77")
    except ValueError:
        record.exc_info = sys.exc_info()
    RedactingFilter().filter(record)
    assert record.getMessage() == "posting to <redacted> failed"
    assert "ZZtopSECRET77" not in record.exc_text
    assert record.exc_text.endswith("ValueError: <redacted>")
    assert redact("nothing secret here") == "nothing secret here"
