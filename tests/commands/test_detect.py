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
