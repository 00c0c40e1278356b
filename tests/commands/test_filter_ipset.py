"""``silkwatch filter --sipset/--dipset/--anyset/--nhipset`` (and ``--not-``), and ``--xargs``
for filter and sort, on SiLK's own test data.

An IPset of some CIDR blocks must pass exactly the records the same blocks pass as
``--scidr`` (rwfilter's manual: "See also --scidr"), in every layout SiLK writes.
"""

from __future__ import annotations

import io
import ipaddress

import numpy as np
import pytest

from silkwatch.cli import main
from tests.commands.test_filter_sort import DATA, DATA_V6, TOTAL, records, statistics
from tests.connectors.ipset_files import write_ipset

V4 = ["192.168.111.0/24", "10.252.217.50/32", "172.16.0.0/12", "10.219.216.0/29"]
#: the same blocks IPv4-mapped: an IPv6 set holding IPv4 addresses (rwset --record-version=3)
V4_AS_V6 = [f"::ffff:{net.split('/')[0]}/{96 + int(net.split('/')[1])}" for net in V4]
V6 = ["2001:db8:c0:a8::6f:0/112", "2001:db8:a:fc::d9:32/128", "2001:db8:ac:18::/64"]


def passed(capsys, *argv: str) -> int:
    """Records passed, from rwfilter's statistics line."""
    return int(statistics(capsys, *argv).split("Pass")[1].split(".")[0])


def _set(tmp_path, blocks, version) -> str:
    networks = [ipaddress.ip_network(b) for b in blocks]
    return str(write_ipset(tmp_path / f"{version}-{len(blocks)}.set", networks, version))


@pytest.mark.parametrize(
    ("blocks", "version"), [(V4, 2), (V4, 3), (V4, 4), (V4_AS_V6, 3), (V4_AS_V6, 4), (V4_AS_V6, 5)]
)
def test_sets_pass_what_the_same_cidr_blocks_pass(tmp_path, capsys, blocks, version):
    ipset = _set(tmp_path, blocks, version)
    cidrs = ",".join(V4)
    for set_switch, cidr_switch in [
        ("sipset", "scidr"),
        ("dipset", "dcidr"),
        ("anyset", "any-cidr"),
        ("nhipset", "nhcidr"),
    ]:
        expected = passed(capsys, f"--{cidr_switch}={cidrs}", DATA)
        assert passed(capsys, f"--{set_switch}={ipset}", DATA) == expected
        assert passed(capsys, f"--not-{set_switch}={ipset}", DATA) == TOTAL - expected
    assert 0 < passed(capsys, f"--sipset={ipset}", DATA) < TOTAL  # the test can fail


@pytest.mark.parametrize("version", [3, 4, 5])
def test_ipv6_sets_on_ipv6_records(tmp_path, capsys, version):
    ipset = _set(tmp_path, V6, version)
    for set_switch, cidr_switch in [("sipset", "scidr"), ("anyset", "any-cidr")]:
        expected = passed(capsys, f"--{cidr_switch}={','.join(V6)}", DATA_V6)
        assert 0 < expected < TOTAL
        assert passed(capsys, f"--{set_switch}={ipset}", DATA_V6) == expected


def test_set_and_other_switches_are_anded_and_files_keep_the_records(tmp_path, capsys):
    ipset = _set(tmp_path, V4, 2)
    out = tmp_path / "pass.rw"
    assert main(["filter", f"--sipset={ipset}", "--proto=6", f"--pass={out}", DATA]) == 0
    flows = records(out)
    reference = records(DATA)
    inside = np.zeros(len(reference), bool)
    for block in V4:
        net = ipaddress.ip_network(block)
        low = np.ascontiguousarray(reference["sip"]).view(">u4").reshape(-1, 4)[:, 3]
        inside |= (low & int(net.netmask)) == int(net.network_address)
    kept = reference[inside & (reference["proto"] == 6)]
    assert len(flows) == len(kept) > 0
    assert flows["stime_ms"].tolist() == kept["stime_ms"].tolist()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: str(tmp / "none.set"), "none.set offset 0: cannot open"),
        (lambda tmp: DATA, "data.rwf offset 5: not an IPset file (format FT_RWIPV6ROUTING)"),
    ],
)
def test_a_bad_set_file_is_one_line(tmp_path, capsys, make, message):
    assert main(["filter", f"--sipset={make(tmp_path)}", "--pass=/dev/null", DATA]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("silkwatch: error: ")


def test_filter_xargs_reads_names_from_a_file_or_stdin(tmp_path, capsys, monkeypatch):
    names = tmp_path / "names.txt"
    names.write_text(f"{DATA}\n\n{DATA_V6}\n")
    # the same as naming both (data-v6.rwf's ICMP is ICMPv6, protocol 58)
    assert statistics(capsys, "--proto=1", f"--xargs={names}") == (
        "Files     2.  Read    1003752.  Pass      15622. Fail      988130.\n"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{DATA}\n"))
    assert statistics(capsys, "--proto=1", "--xargs") == (
        "Files     1.  Read     501876.  Pass      15622. Fail      486254.\n"
    )
    assert main(["filter", "--proto=1", f"--xargs={names}", "--pass=/dev/null", DATA]) == 1
    assert "--xargs names the inputs" in capsys.readouterr().err


def test_sort_xargs(tmp_path, capsys, monkeypatch):
    out = tmp_path / "sorted.rw"
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{DATA_V6}\n{DATA}\n"))
    assert main(["sort", "--xargs", "--fields=stime", f"--output-path={out}"]) == 0
    flows = records(out)
    assert len(flows) == 2 * TOTAL and (np.diff(flows["stime_ms"]) >= 0).all()
    missing = tmp_path / "no-list"
    assert main(["sort", f"--xargs={missing}", "--fields=stime", "--output-path=/dev/null"]) == 1
    assert "--xargs" in capsys.readouterr().err
