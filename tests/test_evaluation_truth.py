"""The evaluation's ground truth parses and covers every data file in ../shared/data/real."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from bench.ground_truth import CAPTURES, ROLES, VISIBILITY, by_path

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
