"""``silkwatch detect`` as an analyst runs it."""

from __future__ import annotations

import json
import subprocess
import sys

FCCX = "data/silk/fccx/FT_RWIPV6ROUTING-v1-c1-L.dat"
NJRAT = "data/real/flows/stratosphere-001-njrat-labeled-conn.log"


def silkwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "silkwatch", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_detect_prints_the_njrat_beacon_as_json(shared_dir):
    done = silkwatch("detect", str(shared_dir / NJRAT), "--format", "json")
    assert done.returncode == 0, done.stderr
    alerts = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(a["kind"], a["sip"], a["dip"], a["dport"], a["proto"]) for a in alerts] == [
        ("beacon", "192.168.1.115", "41.108.179.197", 1177, 6)
    ]
    assert done.stderr.strip() == "1,431 flows, 1,085,168 bytes, 1 alerts"


def test_truncated_file_reports_the_good_flows_then_one_error_line(shared_dir, tmp_path):
    damaged = tmp_path / "cut-short.rw"
    damaged.write_bytes((shared_dir / FCCX).read_bytes()[:5000])
    done = silkwatch("detect", str(damaged))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "744 flows, 191,422 bytes, 0 alerts",
        f"silkwatch: error: silk: {damaged} offset 4622: "
        "truncated compressed block (370 of 4444 bytes)",
    ]


def test_explain_prints_the_parts_of_each_score_and_the_near_misses(shared_dir):
    done = silkwatch("detect", str(shared_dir / NJRAT), "--explain", "--min-score", "0.2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == [
        "1970-01-01T00:04:53Z high     0.85 beacon          192.168.1.115 -> 41.108.179.197:1177/6"
        "  192.168.1.115 called 41.108.179.197:1177/6 237 times every 11.512 s (jitter 22% MAD)"
        " with 104 bytes per callback and 51 bytes/packet.",
        "    alert (threshold 0.65): timing=0.64 skew=1.00 size=1.00 bytes_per_packet=1.00"
        " count=1.00 prevalence_damping=0.00 fanout_damping=0.00",
    ]
    assert done.stderr.strip() == (
        "1,431 flows, 1,085,168 bytes, 1 alerts, 0 near misses at or above 0.2"
    )


def test_explain_as_json_marks_alerts_and_gives_parts(shared_dir):
    done = silkwatch("detect", str(shared_dir / NJRAT), "--explain", "--format", "json")
    [alert] = [json.loads(line) for line in done.stdout.splitlines()]
    assert (alert["alerted"], alert["threshold"], sorted(alert["parts"])) == (
        True, 0.65, ["bytes_per_packet", "count", "size", "skew", "timing"],
    )  # fmt: skip


def test_min_severity_and_suppressions_filter_what_is_printed(shared_dir, tmp_path):
    assert silkwatch("detect", str(shared_dir / NJRAT), "--min-severity", "critical").stdout == ""
    rules = tmp_path / "accepted.toml"
    rules.write_text('[[suppress]]\ndip = "41.108.179.0/24"\ndport = 1177\nkind = "beacon"\n')
    done = silkwatch("detect", str(shared_dir / NJRAT), "--suppress", str(rules))
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr.strip() == "1,431 flows, 1,085,168 bytes, 0 alerts"


def test_bad_min_score_and_bad_suppressions_are_one_line(shared_dir, tmp_path):
    done = silkwatch("detect", str(shared_dir / NJRAT), "--explain", "--min-score", "2")
    assert (done.returncode, done.stderr) == (
        1, "silkwatch: error: --min-score 2.0: must be in [0, 1]\n",
    )  # fmt: skip
    rules = tmp_path / "bad.toml"
    rules.write_text("[[suppress]]\ndport = 99999\n")
    done = silkwatch("detect", str(shared_dir / NJRAT), "--suppress", str(rules))
    assert (done.returncode, done.stderr) == (
        1, f"silkwatch: error: suppressions {rules}: rule 1: dport = 99999: "
        "expected a port 0-65535\n",
    )  # fmt: skip


def test_fccx_hour_raises_nothing_with_the_default_site(shared_dir):
    """The enterprise hour's five infrastructure alerts (NetBIOS broadcast, SCOM, internal
    8443) are internal or broadcast: none is a callback out of the site."""
    done = silkwatch("detect", str(shared_dir / FCCX))
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr.strip() == "245,340 flows, 422,463,836 bytes, 0 alerts"


def test_demo_names_the_alerts_that_match_no_planted_attack():
    from silkwatch.commands.demo import unmatched_alerts
    from silkwatch.detectors.alerts import Alert
    from silkwatch.detectors.synthetic import Planted

    planted = [Planted("beacon", "10.1.0.3", "192.0.2.7", 443, 6, 0, 1)]
    alerts = [
        Alert("beacon", "high", 0.9, "10.1.0.3", "192.0.2.7", 443, 6, 0, 1),
        Alert("beacon", "medium", 0.7, "10.1.0.9", "13.107.4.50", 443, 6, 0, 1),
    ]
    assert unmatched_alerts(alerts, planted) == alerts[1:]


def test_output_is_sorted_by_time_then_severity_and_filtered():
    import argparse

    from silkwatch.commands.detect import select_alerts
    from silkwatch.detectors.alerts import Alert
    from silkwatch.detectors.config import DetectorsConfig

    def alert(kind, severity, score, first_ms):
        return Alert(kind, severity, score, "10.0.0.1", "192.0.2.1", 443, 6, first_ms, first_ms)

    alerts = [
        alert("beacon", "medium", 0.7, 2_000),
        alert("strobe", "medium", 0.6, 1_000),
        alert("exfil", "critical", 0.95, 2_000),
        alert("beacon", "low", 0.4, 500),
    ]
    args = argparse.Namespace(min_score=None, min_severity="low")
    assert [(a.first_seen_ms, a.kind) for a in select_alerts(alerts, args, DetectorsConfig())] == [
        (500, "beacon"), (1_000, "strobe"), (2_000, "exfil"), (2_000, "beacon"),
    ]  # fmt: skip
    args = argparse.Namespace(min_score=0.65, min_severity="medium")
    assert [a.kind for a in select_alerts(alerts, args, DetectorsConfig())] == ["exfil", "beacon"]


def test_the_sites_alert_thresholds_set_the_severity(shared_dir, tmp_path):
    config = tmp_path / "site.toml"
    config.write_text("[alerts]\nhigh_at = 0.9\ncritical_at = 0.95\n")
    done = silkwatch("detect", str(shared_dir / NJRAT), "--config", str(config), "--format", "json")
    [alert] = [json.loads(line) for line in done.stdout.splitlines()]
    assert (alert["kind"], alert["score"], alert["severity"]) == ("beacon", 0.854, "medium")


def test_the_sites_suppression_file_is_applied_from_the_config(shared_dir, tmp_path):
    rules = tmp_path / "accepted.toml"
    rules.write_text('[[suppress]]\nsip = "192.168.1.115"\nkind = "beacon"\n')
    config = tmp_path / "site.toml"
    config.write_text(f'[site]\nsuppressions = "{rules}"\n')
    done = silkwatch("detect", str(shared_dir / NJRAT), "--config", str(config))
    assert (done.returncode, done.stdout) == (0, "")


def test_a_finding_prints_once_at_its_last_revision():
    import argparse

    from silkwatch.commands.detect import alert_line, select_alerts
    from silkwatch.detectors.alerts import Alert

    def revision(n: int, score: float, severity: str) -> Alert:
        return Alert(
            "beacon", severity, score, "10.0.0.1", "1.2.3.4", 443, 6, 0, n, id="ab" * 8, revision=n
        )

    args = argparse.Namespace(min_score=None, min_severity="low")
    alerts = [revision(1, 0.75, "medium"), revision(3, 0.94, "critical"), revision(2, 0.8, "high")]
    [shown] = select_alerts(alerts, args, None)
    assert (shown.revision, shown.severity) == (3, "critical")
    assert alert_line(shown).endswith("  (revision 3)")
