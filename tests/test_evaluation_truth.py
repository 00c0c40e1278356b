"""The evaluation's ground truth parses and covers every data file in ../shared/data/real."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from silkwatch.evaluation.truth import CAPTURES, ROLES, VISIBILITY, by_path

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
REAL = SHARED / "data" / "real"
NOT_DATA = {"README.md", "flowexport_check.sh"}


def test_every_data_file_has_a_truth_and_nothing_else_does():
    on_disk = {
        str(path.relative_to(REAL))
        for path in REAL.rglob("*")
        if path.is_file() and path.name not in NOT_DATA
    }
    assert len(on_disk) == 19  # README.md: "Total: 19 data files"
    assert set(by_path()) == on_disk
    assert len(CAPTURES) == 19


@pytest.mark.parametrize("capture", CAPTURES, ids=[c.path for c in CAPTURES])
def test_each_truth_is_well_formed(capture):
    assert capture.role in ROLES
    assert bool(capture.findings) == (capture.role == "malicious")
    for finding in capture.findings:
        ipaddress.ip_address(finding.sip)
        ipaddress.ip_address(finding.dip)
        assert finding.visible in VISIBILITY
        assert 0 < finding.dport < 65536 and finding.proto in (6, 17)
        assert finding.why


def test_roles_and_visibility_as_the_readme_says():
    roles = {c.path.rsplit("/", 1)[-1]: c.role for c in CAPTURES}
    assert sorted(name for name, role in roles.items() if role == "benign-day") == [
        "stratosphere-008-mixed-conn.log.labeled",
        "stratosphere-010-mixed-conn.log.labeled",
        "stratosphere-012-mixed-conn.log.labeled",
    ]
    visible = sorted(
        (f.sip, f.dip, f.dport) for c in CAPTURES for f in c.findings if f.visible == "yes"
    )
    assert visible == [
        ("10.2.1.5", "13.91.62.40", 443),
        ("147.32.80.37", "141.193.213.20", 443),
        ("192.168.1.115", "41.108.179.197", 1177),
        ("192.168.1.17", "192.168.1.210", 53),
        ("192.168.1.17", "192.168.1.210", 53),
    ]


def test_scoring_rules_pair_host_and_false():
    from silkwatch.detectors.alerts import Alert
    from silkwatch.detectors.schema import make_batch
    from silkwatch.evaluation.real import score_file

    capture = by_path()["pcap/beacon/slips-test-cc-capture-2.pcap"]
    flows = make_batch(
        sip=["147.32.80.37", "141.193.213.20", "147.32.82.19"],
        dip=["141.193.213.20", "147.32.80.37", "147.32.80.9"],
        stime_ms=[0, 0, 3_600_000],
        elapsed_ms=[10, 10, 0],
    )

    def alert(sip, dip):
        return Alert("beacon", "high", 0.8, sip, dip, 443, 6, 0, 0)

    alerts = [
        alert("147.32.80.37", "141.193.213.20"),  # the beacon: right pair
        alert("141.193.213.20", "147.32.80.37"),  # its replies: right pair, other direction
        alert("147.32.80.37", "147.32.80.9"),  # the host's DNS: right host, wrong pair
        alert("147.32.82.19", "147.32.80.9"),  # the stray host: false
    ]
    result = score_file(capture, [flows], alerts, 0.0)
    assert (result.flows, result.source_hosts, result.span_ms) == (3, 3, 3_600_000)
    assert (result.true_pair_alerts, result.true_host_alerts) == (2, 3)
    assert result.pair_hits == {("147.32.80.37", "141.193.213.20")}
    assert result.hosts_hit == {"147.32.80.37"}
    assert [(a.sip, a.dip) for a in result.false_alerts] == [("147.32.82.19", "147.32.80.9")]
