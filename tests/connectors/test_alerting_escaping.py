"""Hostile alert text reaches every target escaped for that target: each sink POSTs to a
real HTTP receiver on 127.0.0.1, and the payload is checked exactly and searched for
any control sequence that got through."""

from __future__ import annotations

import json
import re

import pytest

from silkwatch.connectors.alerting.grafana import GrafanaAnnotationSink
from silkwatch.connectors.alerting.grouping import Notification
from silkwatch.connectors.alerting.mattermost import MattermostSink
from silkwatch.connectors.alerting.secrets import Secret
from silkwatch.connectors.alerting.slack import SlackSink
from silkwatch.connectors.alerting.teams import TeamsSink
from silkwatch.connectors.alerting.webhook import AlertmanagerWebhookSink
from silkwatch.detectors.alerts import Alert
from tests.connectors.alert_samples import stamped
from tests.connectors.receiver import Receiver

HOSTILE = (
    "<!channel> <!here> <@U024BE7LH> <https://evil.example/login|click here> "
    '& <script>alert(1)</script> <img src=x onerror="x()"> @all @channel '
    "![t](https://evil.example/t.png) [docs](https://evil.example) **bold**\n# heading\r\x1b[31m"
)
ALERT = stamped(
    Alert(
        "exfil", "high", 0.8, "10.0.0.5", "198.51.100.7", 443, 6,
        1434553200000, 1434556800000, {}, HOSTILE,
    ),
    id="000000000000bad1",
)  # fmt: skip
NOTE = Notification(group={"kind": "exfil"}, alerts=(ALERT,), tokens=(1,))
PREFIX = "[high] exfil 10.0.0.5 → 198.51.100.7:443/tcp score 0.8 at 2015-06-17T16:00:00.000Z: "

#: what must not appear anywhere in a target's payload
SLACK_CONTROL = ["<!channel>", "<!here>", "<@U", "<https://", "<script", "<img", "@channel", "\n#"]


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def posted(receiver) -> tuple[dict, str]:
    (body,) = receiver.bodies()
    return body, json.dumps(body, ensure_ascii=False)


async def test_slack_mrkdwn(receiver):
    await SlackSink("slack", Secret(receiver.url + "/h", "t")).send(NOTE)
    body, text = posted(receiver)
    section = body["attachments"][0]["blocks"][1]["text"]["text"]
    assert section == (
        "• [high] exfil 10.0.0.5 → 198.51.100.7:443/tcp score 0.8 at 2015-06-17T16:00:00.000Z: "
        "&lt;!channel&gt; &lt;!here&gt; &lt;@\u200bU024BE7LH&gt; "
        "&lt;https://evil.example/login|click here&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt; "
        '&lt;img src=x onerror="x()"&gt; @\u200ball @\u200bchannel '
        "![t](https://evil.example/t.png) [docs](https://evil.example) **bold** # heading [31m"
    )
    assert [c for c in SLACK_CONTROL if c in text] == []


async def test_mattermost_markdown(receiver):
    await MattermostSink("mm", Secret(receiver.url + "/h", "t")).send(NOTE)
    body, text = posted(receiver)
    assert body["attachments"][0]["text"] == (
        r"- \[high\] exfil 10.0.0.5 → 198.51.100.7:443/tcp score 0.8 at 2015-06-17T16:00:00.000Z: "
        r"\<\!channel\> \<\!here\> \<@" + "\u200b" + r"U024BE7LH\> "
        r"\<https://evil.example/login\|click here\> \& \<script\>alert\(1\)\</script\> "
        r'\<img src=x onerror="x\(\)"\> @' + "\u200b" + "all @\u200bchannel "
        r"\!\[t\]\(https://evil.example/t.png\) \[docs\]\(https://evil.example\) \*\*bold\*\* "
        r"\# heading \[31m"
    )
    # with every backslash-escaped character taken out, no markup character is left
    bare = re.sub(r"\\.", "", body["attachments"][0]["text"].removeprefix("- "))
    assert [c for c in "<>[]()*_`!&|~#" if c in bare] == []
    assert [c for c in ["@all", "@channel"] if c in text] == []


async def test_teams_text_runs_are_not_markdown(receiver):
    await TeamsSink("teams", Secret(receiver.url + "/h", "t")).send(NOTE)
    body, _ = posted(receiver)
    blocks = body["attachments"][0]["content"]["body"]
    assert {b["type"] for b in blocks} == {"RichTextBlock"}  # no TextBlock renders Markdown
    assert blocks[1]["inlines"] == [
        {
            "type": "TextRun",
            "text": PREFIX + HOSTILE.replace("\n", " ").replace("\r\x1b", " "),
        }
    ]


async def test_grafana_annotation_html(receiver):
    await GrafanaAnnotationSink("g", receiver.url, Secret("tok", "t")).send(NOTE)
    body, text = posted(receiver)
    assert body["text"] == (
        "[high] exfil 10.0.0.5 → 198.51.100.7:443/tcp score 0.8 at 2015-06-17T16:00:00.000Z: "
        "&lt;!channel&gt; &lt;!here&gt; &lt;@U024BE7LH&gt; "
        "&lt;https://evil.example/login|click here&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt; "
        "&lt;img src=x onerror=&quot;x()&quot;&gt; @all @channel "
        "![t](https://evil.example/t.png) [docs](https://evil.example) **bold** # heading [31m"
    )
    assert "<" not in text and ">" not in text


async def test_alertmanager_labels_and_annotations(receiver):
    hostile_source = {**ALERT, "kind": "exfil", "severity": "high"}
    note = Notification(group={"kind": "exfil\n<!channel>"}, alerts=(hostile_source,))
    await AlertmanagerWebhookSink("am", Secret(receiver.url + "/h", "t")).send(note)
    body, _ = posted(receiver)
    (alert,) = body["alerts"]
    assert body["groupLabels"] == {"kind": "exfil <!channel>"}  # one line, plain
    assert alert["annotations"]["description"] == HOSTILE.replace("\n", " ").replace("\r\x1b", " ")
    for value in [*alert["labels"].values(), *alert["annotations"].values()]:
        assert "\n" not in value and "\r" not in value and "\x1b" not in value
        assert len(value) <= 2000
