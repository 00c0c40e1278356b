"""``silkwatch count|uniq|stats`` against SiLK 3.19.1's rwcount/rwuniq/rwstats output."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from silkwatch.cli import main

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
GOLDEN = SHARED / "data" / "silk" / "golden"
FCCX = str(SHARED / "data" / "silk" / "fccx" / "FT_RWIPV6ROUTING-v1-c1-L.dat")
ALL_VALUES = "records,bytes,packets,sIP-Distinct,dIP-Distinct,sTime-Earliest,eTime-Latest"


def run(capsys, *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def cells(text: str) -> list[list[str]]:
    """Table rows (title row and INPUT/OUTPUT lines dropped) as stripped cells."""
    lines = [line for line in text.splitlines() if "|" in line]
    return [[cell.strip() for cell in line.split("|")[:-1]] for line in lines[1:]]


@pytest.mark.parametrize(
    ("bin_s", "scheme", "golden"),
    [
        ("300", "time-proportional", "fccx-rwcount-300-timeprop.txt"),
        ("300", "0", "fccx-rwcount-300-bin-uniform.txt"),
        ("300", "start-spike", "fccx-rwcount-300-start-spike.txt"),
        ("300", "2", "fccx-rwcount-300-end-spike.txt"),
        ("300", "middle-spike", "fccx-rwcount-300-middle-spike.txt"),
        ("300", "5", "fccx-rwcount-300-maximum-volume.txt"),
        ("300", "minimum-volume", "fccx-rwcount-300-minimum-volume.txt"),
        ("3600", "4", "fccx-rwcount-3600-timeprop.txt"),
    ],
)
def test_count_prints_rwcount_text(capsys, bin_s, scheme, golden):
    out = run(capsys, "count", "--bin-size", bin_s, "--load-scheme", scheme, FCCX)
    assert out == (GOLDEN / golden).read_text()


def test_count_skip_zeroes_drops_the_empty_bin(capsys):
    out = run(
        capsys, "count", "--bin-size", "300", "--load-scheme", "end-spike", "--skip-zeroes", FCCX
    )
    expected = [
        row
        for row in cells((GOLDEN / "fccx-rwcount-300-end-spike.txt").read_text())
        if row[1] != "0.00"
    ]
    assert cells(out) == expected
    assert len(expected) == 16  # 16:15 had no flow ending in it


def test_count_csv_and_json(capsys):
    rows = list(
        csv.reader(io.StringIO(run(capsys, "count", "--bin-size", "3600", "--format", "csv", FCCX)))
    )
    assert rows == [
        ["Date", "Records", "Bytes", "Packets"],
        ["2015/06/17T15:00:00", "245305.52", "410816759.91", "2178495.41"],
        ["2015/06/17T16:00:00", "34.48", "11647076.09", "18203.59"],
    ]
    document = json.loads(run(capsys, "count", "--bin-size", "3600", "--format", "json", FCCX))
    assert document["load_scheme"] == "time-proportional" and document["bin_size_ms"] == 3_600_000
    assert [row["bin_start_ms"] for row in document["rows"]] == [1434553200000, 1434556800000]
    assert round(sum(row["bytes"] for row in document["rows"])) == 422_463_836


def test_count_millisecond_bins_print_milliseconds(capsys):
    out = run(
        capsys, "count", "--bin-size", "0.5", "--load-scheme", "start-spike", "--skip-zeroes", FCCX
    )
    first = cells(out)[0]
    assert first[0] == "2015/06/17T15:00:00.000"
    assert sum(float(row[1]) for row in cells(out)) == 245_340


@pytest.mark.parametrize(
    ("golden", "fields", "values"),
    [
        ("fccx-rwuniq-proto.txt", "protocol", ALL_VALUES),
        ("fccx-rwuniq-sip.txt", "sIP", "records,bytes,packets,dIP-Distinct"),
    ],
)
def test_uniq_matches_rwuniq(capsys, golden, fields, values):
    out = run(capsys, "uniq", "--fields", fields, "--values", values, "--sort-output", FCCX)
    assert out == (GOLDEN / golden).read_text()  # byte for byte: widths, titles, order


def test_uniq_json(capsys):
    document = json.loads(
        run(
            capsys, "uniq", "--fields", "protocol", "--values", ALL_VALUES, "--format", "json", FCCX
        )
    )
    assert document["input_records"] == 245_340
    assert document["rows"][0] == {
        "protocol": 1,
        "Records": 1588,
        "Bytes": 2_560_556,
        "Packets": 26_016,
        "sIP-Distinct": 56,
        "dIP-Distinct": 15,
        "sTime-Earliest": 1434553200587,
        "eTime-Latest": 1434557604048,
    }


@pytest.mark.parametrize(
    ("golden", "argv"),
    [
        (
            "fccx-rwstats-sip-bytes-top10.txt",
            ["--fields", "sIP", "--values", "bytes", "--count", "10"],
        ),
        ("fccx-rwstats-dport-records-top10.txt", ["--fields", "dPort", "--count", "10"]),
        (
            "fccx-rwstats-dip-packets-bottom5.txt",
            ["--fields", "dIP", "--values", "packets", "--bottom", "--count", "5"],
        ),
        (
            "fccx-rwstats-proto-pct1.txt",
            ["--fields", "protocol", "--values", "records", "--percentage", "1"],
        ),
    ],
)
def test_stats_matches_rwstats(capsys, golden, argv):
    out = run(capsys, "stats", *argv, FCCX)
    expected_text = (GOLDEN / golden).read_text()
    # byte for byte (these goldens have no tie at the cut-off, where rwstats' pick is
    # its hash order and ours is key order)
    assert out == expected_text


def test_stats_threshold_and_json(capsys):
    out = run(capsys, "stats", "--fields", "protocol", "--threshold", "36923", FCCX)
    assert out.splitlines()[1] == "OUTPUT: Top 2 bins by Records (threshold 36923)"
    assert [row[:2] for row in cells(out)] == [["17", "206825"], ["6", "36923"]]
    out = run(capsys, "stats", "--fields", "protocol", "--threshold", "1000000000", FCCX)
    assert out.splitlines()[1] == "OUTPUT: No bins above threshold of 1000000000 Records"
    document = json.loads(
        run(
            capsys,
            "stats",
            "--fields",
            "dPort",
            "--values",
            "bytes,records",
            "--count",
            "1",
            "--format",
            "json",
            FCCX,
        )
    )
    assert document["bins"] == 8392 and document["value"] == "bytes"
    # checked with np.bincount(dport, weights=bytes): port 11009 carries 261,626,322 bytes
    assert [(row["dPort"], row["Bytes"]) for row in document["rows"]] == [(11009, 261_626_322)]


def test_user_errors_are_one_line(capsys):
    assert main(["uniq", "--fields", "sIP,bogus", FCCX]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("silkwatch: error: group-by: unknown field 'bogus'") and err.count("\n") == 1
    )
    assert main(["count", "--load-scheme", "sideways", FCCX]) == 1
    assert "load scheme 'sideways' unknown" in capsys.readouterr().err
    assert (
        main(["stats", "--fields", "sIP", "--values", "sTime-Earliest", "--percentage", "5", FCCX])
        == 1
    )
    assert "--percentage needs a summable value" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: one of --count/--percentage/--threshold
        main(["stats", "--fields", "sIP", FCCX])


def test_reads_stdin():
    with open(FCCX, "rb") as stdin:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "silkwatch",
                "stats",
                "--fields",
                "sIP",
                "--values",
                "bytes",
                "--count",
                "1",
                "-",
            ],
            stdin=stdin,
            capture_output=True,
            text=True,
            check=True,
        )
    assert cells(done.stdout) == [["192.168.123.14", "31694474", "7.502293", "7.502293"]]


def test_uniq_names_sensor_class_type_like_rwcut(capsys):
    out = run(capsys, "uniq", "--fields", "sensor,class,type", "--values", "flows,bytes", FCCX)
    assert cells(out) == [["S3", "all", "out", "245340", "422463836"]]


def test_uniq_over_many_small_batches_and_merges_equals_rwuniq(capsys, monkeypatch):
    from silkwatch.commands import count, uniq

    monkeypatch.setattr(count, "READ_ROWS", 1_000)  # 246 batches
    monkeypatch.setattr(uniq, "MERGE_BINS", 1)  # merges as often as amortisation allows
    out = run(
        capsys, "uniq", "--fields", "sIP", "--values", "records,bytes,packets,dIP-Distinct", FCCX
    )
    assert cells(out) == cells((GOLDEN / "fccx-rwuniq-sip.txt").read_text())


def test_a_truncated_file_read_ahead_is_one_line_naming_the_offset(capsys, tmp_path):
    truncated = tmp_path / "cut.rw"
    truncated.write_bytes(Path(FCCX).read_bytes()[:100_000])
    assert main(["stats", "--fields", "sIP", "--count", "3", str(truncated)]) == 1
    assert capsys.readouterr().err == (
        f"silkwatch: error: silk: {truncated} offset 98214: "
        "truncated compressed block (1778 of 4505 bytes)\n"
    )
