"""``silkwatch plot`` as a user runs it: pipes, files, ``-o``, errors, FlowPlotter's order."""

from __future__ import annotations

import subprocess
import sys

import pytest

from silkwatch.cli import main
from tests.plots.conftest import FCCX, V6MIX, golden_rows, page_data

PYTHON = [sys.executable, "-m", "silkwatch"]


def test_pipe_in_page_out(tmp_path):
    """``cat flow.rw | silkwatch plot linechart 3600 bytes > page.html``, from an empty folder."""
    with FCCX.open("rb") as flows:
        done = subprocess.run(
            [*PYTHON, "plot", "linechart", "3600", "Bytes"],
            stdin=flows,
            capture_output=True,
            cwd=tmp_path,
            check=True,
        )
    html = done.stdout.decode()
    assert html.startswith("<!DOCTYPE html>") and "default-src 'none'" in html
    assert (
        list(tmp_path.iterdir()) == []
    )  # nothing written beside the page (FlowPlotter's temp.test)
    data = page_data(html)
    assert data["subtitle"].startswith("245340 records from stdin, 2015-06-17T15:00:00.013Z")
    golden = golden_rows("fccx-rwcount-3600-timeprop.txt")
    assert [f"{row[1]:.2f}" for row in data["charts"][0]["table"]["rows"]] == [
        row[2] for row in golden
    ]


def test_output_file_is_written_whole_and_runs_can_overlap(tmp_path):
    runs = [
        subprocess.Popen(
            [*PYTHON, "plot", "barchart", "dip", "bytes", str(V6MIX), "-o", str(tmp_path / name)]
        )
        for name in ("a.html", "b.html")
    ]
    assert [run.wait(120) for run in runs] == [0, 0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html", "b.html"]
    assert (tmp_path / "a.html").read_text() == (tmp_path / "b.html").read_text()
    rows = page_data((tmp_path / "a.html").read_text())["charts"][0]["table"]["rows"]
    assert rows[0][:2] == ["10.0.0.7", 1900000000]


def test_flowplotter_count_after_value_and_files_after_options(tmp_path):
    page = tmp_path / "graph.html"
    assert main(["plot", "forcegraph", "sip", "dip", "bytes", "7", str(FCCX), "-o", str(page)]) == 0
    assert len(page_data(page.read_text())["charts"][0]["option"]["series"][0]["links"]) == 7
    geo = tmp_path / "geo.html"
    assert (
        main(["plot", "geomap", "dcc", "bytes", "--exclude", "CA,--", str(FCCX), "-o", str(geo)])
        == 0
    )
    rows = page_data(geo.read_text())["charts"][0]["table"]["rows"]
    assert [row[0] for row in rows] == ["US", "SE", "JP", "NL"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["linechart", "60", "octets"], "plot linechart: value 'octets' unknown"),
        (["linechart", "0", "bytes"], "bin size must be positive"),
        (["treemap", "sip", "octets"], "unknown value 'octets'"),
        (["timeline", "sip", "stime"], "plot timeline: needs two fields"),
        (["bubblechart", "color"], "unknown field 'color'"),
    ],
)
def test_bad_arguments_are_one_line_before_any_input(tmp_path, capsys, arguments, message):
    page = tmp_path / "never.html"
    assert main(["plot", *arguments, str(tmp_path / "missing.rw"), "-o", str(page)]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not page.exists()


def test_missing_input_names_the_file(tmp_path, capsys):
    assert main(["plot", "piechart", "dip", "bytes", str(tmp_path / "gone.rw")]) == 1
    assert "gone.rw" in capsys.readouterr().err


def test_help_shows_the_flowplotter_command(capsys):
    with pytest.raises(SystemExit):
        main(["plot", "forcegraph", "--help"])
    out = capsys.readouterr().out
    assert "flowplotter.sh forceopacity sip dip distinct:dport 100" in out
    assert "silkwatch plot forcegraph sip dip distinct:dport 100" in out


def test_every_flowplotter_chart_is_a_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["plot", "--help"])
    out = capsys.readouterr().out
    for chart in (
        "linechart",
        "bubblechart",
        "geomap",
        "treemap",
        "piechart",
        "barchart",
        "columnchart",
        "timeline",
        "forcegraph",
        "assetdiscovery",
        "report",
    ):
        assert chart in out
