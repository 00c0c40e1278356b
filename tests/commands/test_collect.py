"""``silkwatch collect`` as a new user runs it: softflowd → collect → repository → count."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from silkwatch.cli import main
from tests.connectors.netflow_exporters import free_udp_port, nfdump_records

PCAP = (
    Path(__file__).resolve().parents[3]
    / "shared/data/real/pcap/beacon/slips-test-cc-capture-2.pcap"
)
TOOLS = all(shutil.which(tool) for tool in ("softflowd", "nfcapd", "nfdump"))
COLLECT = "from silkwatch.cli import main; raise SystemExit(main())"


def softflowd(port: int, version: str) -> None:
    subprocess.run(
        ["softflowd", "-r", str(PCAP), "-n", f"127.0.0.1:{port}", "-v", version, "-d", "-a"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


@pytest.mark.skipif(not TOOLS, reason="softflowd, nfcapd and nfdump are needed")
@pytest.mark.parametrize("version", ["5", "9", "10"])
def test_softflowd_into_repository_counts_as_nfdump(tmp_path: Path, capsys, version) -> None:
    port = free_udp_port()
    repository = tmp_path / "repo"
    collector = subprocess.Popen(
        [sys.executable, "-c", COLLECT, "collect", "--listen", f"udp://127.0.0.1:{port}",
         "--repository", str(repository), "--state", str(tmp_path / "state.json"),
         "--idle-exit", "1.5"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(3.0)  # the collector binds its socket
    softflowd(port, version)
    _, stderr = collector.communicate(timeout=120)
    assert collector.returncode == 0, stderr
    assert "malformed 0, template misses 0" in stderr

    # count reads hour files (a repository folder is another engineer's work in progress)
    hour_files = sorted(str(p) for p in repository.rglob("in-S0_*"))
    assert [Path(p).parent.relative_to(repository).parts[0] for p in hour_files] == ["in"]
    assert main(["count", "--bin-size", "86400", "--format", "json", *hour_files]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    ours = [sum(row[c] for row in rows) for c in ("records", "bytes", "packets")]

    capture = tmp_path / "nfcapd-export"  # the same export, into nfcapd
    capture.mkdir()
    records = nfdump_records(_captured(version), capture)
    theirs = [len(records), sum(r["in_bytes"] for r in records)]
    theirs.append(sum(r["in_packets"] for r in records))
    assert ours == theirs == [521, 231_575, 1_084]


def _captured(version: str) -> list[bytes]:
    from tests.connectors.netflow_exporters import softflowd_export

    return softflowd_export(PCAP, version, "-a")
