"""Each sink's exact payload, POSTed to a real HTTP receiver on 127.0.0.1; config and secrets."""

from __future__ import annotations

import logging

import pytest

from silkwatch.connectors.alerting.apprise_sink import AppriseSink
from silkwatch.connectors.alerting.config import DeliveryConfigError, load_delivery_config
from silkwatch.connectors.alerting.grafana import GrafanaAnnotationSink
from silkwatch.connectors.alerting.grouping import GroupingConfig, Notification
from silkwatch.connectors.alerting.http import DeliveryError
from silkwatch.connectors.alerting.mattermost import MattermostSink
from silkwatch.connectors.alerting.secrets import Secret, SecretError, read_secret
from silkwatch.connectors.alerting.slack import SlackSink
from silkwatch.connectors.alerting.teams import TeamsSink
from silkwatch.connectors.alerting.webhook import AlertmanagerWebhookSink
from silkwatch.detectors.alerts import Alert
from tests.connectors.alert_samples import stamped
from tests.connectors.receiver import Receiver

EXFIL = stamped(Alert(
    "exfil", "critical", 0.9512, "10.0.0.5", "198.51.100.7", 443, 6,
    1434553200013, 1434556799000, {"bytes": 5_000_000, "bytes_per_packet": 1400.0},
    "5.0 MB out at 1400 B/packet, 40x the host's baseline.",
), id="00000000000e7f11", revision=2)  # fmt: skip
BEACON = stamped(
    Alert(
        "exfil", "medium", 0.6, "10.0.0.6", None, None, None, 1434553200000, 1434553500000, {}, ""
    ),
    id="00000000000e7f12",
)
NOTE = Notification(group={"kind": "exfil"}, alerts=(EXFIL, BEACON), truncated=1, tokens=(1, 2, 3))

LINE_1 = (
    "[critical] exfil 10.0.0.5 → 198.51.100.7:443/tcp score 0.951 at 2015-06-17T15:59:59.000Z: "
    "5.0 MB out at 1400 B/packet, 40x the host's baseline."
)
LINE_2 = "[medium] exfil 10.0.0.6 → * score 0.6 at 2015-06-17T15:05:00.000Z"
TITLE = "silkwatch: 3 alerts (exfil), worst critical"
KEYS = "00000000000e7f11:2,00000000000e7f12:1"


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def secret(receiver, path="/hook"):
    return Secret(receiver.url + path, "test")


MM_TITLE = r"silkwatch: 3 alerts \(exfil\), worst critical"
MM_LINE_1 = (
    r"\[critical\] exfil 10.0.0.5 → 198.51.100.7:443/tcp score 0.951 at 2015-06-17T15:59:59.000Z: "
    "5.0 MB out at 1400 B/packet, 40x the host's baseline."
)
MM_LINE_2 = r"\[medium\] exfil 10.0.0.6 → \* score 0.6 at 2015-06-17T15:05:00.000Z"


async def test_slack(receiver):
    await SlackSink("slack", secret(receiver)).send(NOTE)
    ((_, headers, _),) = receiver.requests
    assert headers["Idempotency-Key"] == KEYS
    assert receiver.bodies("/hook") == [
        {
            "text": TITLE,
            "attachments": [
                {
                    "color": "#F2495C",
                    "blocks": [
                        {"type": "header", "text": {"type": "plain_text", "text": TITLE}},
                        {
                            "type": "section",
                            "text": {
                                "type": "mrkdwn",
                                "text": f"• {LINE_1}\n• {LINE_2}\n… and 1 more",
                            },
                        },
                    ],
                }
            ],
            "idempotency_key": KEYS,
        }
    ]


async def test_mattermost(receiver):
    await MattermostSink("mm", secret(receiver), username="soc-bot").send(NOTE)
    assert receiver.bodies() == [
        {
            "username": "soc-bot",
            "text": f"#### {MM_TITLE}",
            "attachments": [
                {
                    "color": "#F2495C",
                    "fallback": MM_TITLE,
                    "text": f"- {MM_LINE_1}\n- {MM_LINE_2}\n… and 1 more",
                }
            ],
            "idempotency_key": KEYS,
        }
    ]


async def test_teams_workflows_adaptive_card(receiver):
    await TeamsSink("teams", secret(receiver)).send(NOTE)
    (body,) = receiver.bodies()
    (attachment,) = body["attachments"]
    assert body["type"] == "message"
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert body["idempotency_key"] == KEYS
    assert card["body"] == [
        {
            "type": "RichTextBlock",
            "inlines": [
                {
                    "type": "TextRun",
                    "text": TITLE,
                    "weight": "Bolder",
                    "size": "Medium",
                    "color": "Attention",
                }
            ],
        },
        {
            "type": "RichTextBlock",
            "inlines": [{"type": "TextRun", "text": LINE_1}],
            "spacing": "Small",
        },
        {
            "type": "RichTextBlock",
            "inlines": [{"type": "TextRun", "text": LINE_2}],
            "spacing": "Small",
        },
        {
            "type": "RichTextBlock",
            "inlines": [{"type": "TextRun", "text": "… and 1 more"}],
            "spacing": "Small",
        },
    ]


async def test_alertmanager_webhook_format(receiver):
    sink = AlertmanagerWebhookSink("soc", secret(receiver), external_url="http://grafana/d/wall")
    await sink.send(NOTE)
    (body,) = receiver.bodies()
    first, second = body.pop("alerts")
    assert body == {
        "version": "4",
        "groupKey": '{}:{"kind":"exfil"}',
        "truncatedAlerts": 1,
        "status": "firing",
        "receiver": "soc",
        "groupLabels": {"kind": "exfil"},
        "commonLabels": {"alertname": "exfil", "source": "silkwatch"},
        "commonAnnotations": {},
        "externalURL": "http://grafana/d/wall",
        "idempotency_key": KEYS,
    }
    assert first == {
        "status": "firing",
        "labels": {
            "alertname": "exfil",
            "source": "silkwatch",
            "severity": "critical",
            "sip": "10.0.0.5",
            "dip": "198.51.100.7",
            "dport": "443",
            "proto": "6",
        },
        "annotations": {
            "summary": LINE_1,
            "description": "5.0 MB out at 1400 B/packet, 40x the host's baseline.",
            "score": "0.951",
            "evidence": '{"bytes": 5000000, "bytes_per_packet": 1400.0}',
            "last_seen": "2015-06-17T15:59:59.000Z",
        },
        "startsAt": "2015-06-17T15:00:00.013Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://grafana/d/wall",
        "fingerprint": "00000000000e7f11",
        "idempotencyKey": "00000000000e7f11:2",
    }
    assert second["labels"] == {
        "alertname": "exfil",
        "source": "silkwatch",
        "severity": "medium",
        "sip": "10.0.0.6",
    }


async def test_apprise_json_url(receiver):
    sink = AppriseSink("apprise", Secret(f"json://127.0.0.1:{receiver.port}/apprise", "test"))
    await sink.send(NOTE)
    ((path, _, body),) = receiver.requests
    assert path == "/apprise"
    assert (body["title"], body["type"]) == (TITLE, "failure")
    assert body["message"] == f"{LINE_1}\n{LINE_2}\n… and 1 more"


async def test_grafana_annotations_once_each_even_when_retried(receiver):
    sink = GrafanaAnnotationSink("grafana", receiver.url, Secret("glsa_tok", "test"))
    await sink.send(NOTE)
    await sink.send(NOTE)  # a retry after a partial failure must not annotate twice
    assert [(p, h["Authorization"], h["Idempotency-Key"]) for p, h, _ in receiver.requests] == [
        ("/api/annotations", "Bearer glsa_tok", "00000000000e7f11:2"),
        ("/api/annotations", "Bearer glsa_tok", "00000000000e7f12:1"),
    ]
    assert receiver.bodies() == [
        {
            "time": 1434553200013,
            "timeEnd": 1434556799000,
            "tags": ["silkwatch", "alert", "exfil", "critical"],
            "text": "[critical] exfil 10.0.0.5 → 198.51.100.7:443/tcp score 0.951 at "
            "2015-06-17T15:59:59.000Z: 5.0 MB out at 1400 B/packet, 40x the host&#x27;s baseline.",
            "data": {"idempotency_key": "00000000000e7f11:2"},
        },
        {
            "time": 1434553200000,
            "timeEnd": 1434553500000,
            "tags": ["silkwatch", "alert", "exfil", "medium"],
            "text": LINE_2,
            "data": {"idempotency_key": "00000000000e7f12:1"},
        },
    ]


@pytest.mark.parametrize(
    ("status", "fail_next", "reason"), [(500, 0, "http_500"), (200, 1, "http_503")]
)
async def test_refused_delivery_names_sink_and_reason_not_url(receiver, status, fail_next, reason):
    receiver.status, receiver.fail_next = status, fail_next
    with pytest.raises(DeliveryError) as info:
        await SlackSink("slack", secret(receiver, "/services/T0/B0/TOPSECRET")).send(NOTE)
    assert str(info.value) == f"alert delivery: sink slack: {reason}"
    assert info.value.reason == reason


@pytest.mark.parametrize(("header", "wait_s"), [("7", 7.0), ("86400", 600.0), ("soon", 0.0)])
async def test_retry_after_of_a_rate_limited_receiver(receiver, header, wait_s):
    receiver.status, receiver.reply_headers = 429, {"Retry-After": header}
    with pytest.raises(DeliveryError) as info:
        await SlackSink("slack", secret(receiver)).send(NOTE)
    assert (info.value.reason, info.value.retry_after_s) == ("http_429", wait_s)


async def test_unreachable_receiver():
    down = Receiver()  # never started
    with pytest.raises(DeliveryError, match=r"sink teams: connection$"):
        await TeamsSink("teams", Secret(down.url + "/x", "test")).send(NOTE)


def test_secrets_from_env_and_file(monkeypatch, tmp_path):
    monkeypatch.setenv("HOOK", " https://hooks.example/T/B/X \n")
    assert read_secret(env="HOOK").reveal() == "https://hooks.example/T/B/X"
    assert repr(read_secret(env="HOOK")) == "Secret(<redacted> from $HOOK)"
    path = tmp_path / "hook"
    path.write_text("from-file\n")
    assert read_secret(file=path).reveal() == "from-file"
    with pytest.raises(SecretError, match="environment variable NOPE is unset or empty"):
        read_secret(env="NOPE")
    with pytest.raises(SecretError, match=r"missing: cannot read \(No such file or directory\)"):
        read_secret(file=tmp_path / "missing")


def test_load_delivery_config(monkeypatch, tmp_path):
    monkeypatch.setenv("SLACK_URL", "https://hooks.slack.com/services/T/B/SECRET")
    (tmp_path / "token").write_text("glsa_x\n")
    path = tmp_path / "sinks.toml"
    path.write_text(
        f"""
topic = "soc-alerts"
[grouping]
group_by = ["kind", "severity"]
group_wait_s = 10
[[sinks]]
name = "slack"
type = "slack"
url_env = "SLACK_URL"
[[sinks]]
name = "annotations"
type = "grafana"
url = "http://grafana:3000"
token_file = "{tmp_path / "token"}"
"""
    )
    config = load_delivery_config(path)
    assert config.topic == "soc-alerts"
    assert config.grouping == GroupingConfig(group_by=("kind", "severity"), group_wait_s=10)
    assert [type(s).__name__ for s in config.sinks] == ["SlackSink", "GrafanaAnnotationSink"]
    assert "SECRET" not in repr(config) and "glsa_x" not in repr(config)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[sinks]]\ntype = "slack"\nurl = "https://x"', "url must not be written in the file"),
        ('[[sinks]]\ntype = "pager"\nurl_env = "X"', "unknown type 'pager'"),
        ("[grouping]\nwait = 1\n[[sinks]]", "[grouping]: unknown keys ['wait']"),
        (
            "[grouping]\nmax_alerts = 0\n[[sinks]]",
            "[grouping] max_alerts = 0: must be a number >= 1",
        ),
        ("[grouping]\ngroup_wait_s = -5\n", "[grouping] group_wait_s = -5: must be a number >= 0"),
        ("", "no [[sinks]] configured"),
        ("[[sinks", "not valid TOML"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path, text, message, monkeypatch):
    monkeypatch.setenv("X", "https://x")
    path = tmp_path / "sinks.toml"
    path.write_text(text)
    with pytest.raises(DeliveryConfigError) as info:
        load_delivery_config(path)
    assert str(info.value).startswith(f"alert config: {path}: ")
    assert message in str(info.value)


def test_secret_never_logged(caplog):
    caplog.set_level(logging.DEBUG)
    sink = SlackSink("slack", Secret("https://hooks.slack.com/services/T/B/TOPSECRET", "$S"))
    logging.getLogger("test").info("configured %r", sink)
    assert "TOPSECRET" not in caplog.text and "Secret(<redacted> from $S)" in caplog.text


def test_deliver_command_config_error_is_one_line(tmp_path, capsys):
    from silkwatch.cli import main

    path = tmp_path / "sinks.toml"
    path.write_text('[[sinks]]\nname = "soc"\ntype = "teams"\nurl_env = "SILKWATCH_NO_SUCH_VAR"\n')
    code = main(["alerts", "deliver", "--broker", "kafka://127.0.0.1:9", "--config", str(path)])
    assert code == 1
    assert capsys.readouterr().err == (
        f"silkwatch: error: alert config: {path}: sinks[0] (soc): "
        "secret: environment variable SILKWATCH_NO_SUCH_VAR is unset or empty\n"
    )
