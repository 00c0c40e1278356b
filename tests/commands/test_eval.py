"""``silkwatch eval`` runs from the product, and a missing data folder is one line."""

from __future__ import annotations

from pathlib import Path

from silkwatch.cli import main

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def test_missing_data_folder_is_one_line_naming_it(tmp_path, capsys):
    assert main(["eval", "--no-sweep", "--data", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        f"silkwatch: error: eval: no folder {tmp_path / 'real'} (the data folder holds real/ "
        "and silk/; give it with --data DIR)\n"
    )


def test_real_files_report_from_the_product(tmp_path, capsys):
    """The real-file part only (seconds): the table of every ground-truth file, in its order."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "real").symlink_to((SHARED_DATA / "real").resolve())  # no silk/: no FCCX section
    assert main(["eval", "--no-sweep", "--data", str(data)]) == 0
    report = capsys.readouterr().out
    rows = [line.split(" | ")[0] for line in report.splitlines() if line.startswith("| `")]
    assert rows[:2] == [
        "| `pcap/beacon/slips-test-cc-capture-2.pcap`",
        "| `pcap/c2/c2lab-sliver-mtls-executing.pcap`",
    ]
    assert len(rows) == 19 + 3  # every file, then the three benign days again
    assert "## FCCX" not in report
