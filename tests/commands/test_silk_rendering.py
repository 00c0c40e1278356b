"""SiLK's rendering rules that the suite does not pin: bin edges, unknown flowtypes, ties."""

from __future__ import annotations

from pathlib import Path

import pytest

from silkwatch.cli import main
from silkwatch.detectors import groupby
from silkwatch.detectors.schema import make_batch

SUITE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "silk" / "silk-suite"
DATA = str(SUITE / "data" / "data.rwf")
pytestmark = pytest.mark.skipif(not (SUITE / "data").is_dir(), reason="SiLK suite data missing")


def run(capsys, *argv: str) -> list[str]:
    assert main(list(argv)) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(
    ("bin_size", "first_bin"),
    [
        # 7 s does not divide a day: rwcount's grid starts two days before the first
        # record's day (2009/02/10), not at the epoch (which would give 00:00:01)
        ("7", "2009/02/12T00:00:02"),
        ("3600", "2009/02/12T00:00:00"),
        # over a day: a week before; 5 days from 2009/02/05 is 2009/02/10
        ("432000", "2009/02/10T00:00:00"),
    ],
)
def test_count_bin_edges_are_rwcounts(capsys, bin_size, first_bin):
    lines = run(capsys, "count", f"--bin-size={bin_size}", "--load-scheme=1", "--delimited", DATA)
    assert lines[1].split("|")[0] == first_bin


def test_count_start_and_end_time_frame_the_rows(capsys):
    lines = run(
        capsys,
        "count",
        "--bin-size=3600",
        "--start-time=2009/02/13T05",
        "--end-time=2009/02/13T07",
        "--delimited",
        "--no-titles",
        DATA,
    )
    assert [line.split("|")[0] for line in lines] == [
        "2009/02/13T05:00:00",
        "2009/02/13T06:00:00",
        "2009/02/13T07:00:00",
    ]


def test_cut_prints_flowtype_255_as_silk(capsys, tmp_path):
    conf = tmp_path / "silk.conf"
    conf.write_text("sensor 6 S6\nclass all\n  type 1 out out\nend class\n")
    lines = run(
        capsys, "cut", "--fields=class,type", "--num-recs=2", f"--site-config-file={conf}", DATA
    )
    # flowtype 1 is known; flowtype 0 is not in this site: class "?", type its number
    assert lines == ["cla|typ|", "all|out|", "  ?|  0|"]


def test_stats_ties_are_listed_in_key_order():
    """rwstats picks among tied bins by its hash order; silkwatch by key, smallest first."""
    batch = make_batch(dport=[443, 80, 53, 80, 443, 53, 22], bytes=[1] * 7)
    table = groupby.result(groupby.update(groupby.empty("dPort", "records"), batch))
    bottom = groupby.top(table, count=2, bottom=True)
    top = groupby.top(table, count=2)
    assert bottom.table.keys["dport"].tolist() == [22, 53]  # 22 alone, then the first of 53/80/443
    assert top.table.keys["dport"].tolist() == [53, 80]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"SILK_TIMESTAMP_FORMAT": "epoch", "SILK_IPV6_POLICY": "force"},
            ["::ffff:192.168.111.201|1234396802.696"],
        ),
        ({"SILK_TIMESTAMP_FORMAT": "bogus"}, ["192.168.111.201|2009/02/12T00:00:02.696"]),
    ],
)
def test_silk_environment_defaults(capsys, monkeypatch, env, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    lines = run(
        capsys, "cut", "--fields=sip,stime", "--num-recs=1", "--delimited", "--no-titles", DATA
    )
    assert lines == expected
