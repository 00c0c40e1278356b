"""Inputs for every command: many files, folders, repository trees, globs, stdin, bad input."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import numpy as np
import pytest

from silkwatch.cli import main
from silkwatch.connectors import inputs
from silkwatch.connectors.flows import read_flows
from silkwatch.connectors.flowtext import FlowTextError
from silkwatch.connectors.inputs import InputError, InputRun, iter_inputs, resolve_inputs
from silkwatch.connectors.silk import SilkWriter
from silkwatch.connectors.silk.header import PackedFile
from silkwatch.connectors.silk.writer import hour_file_entries
from silkwatch.detectors.schema import make_batch

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SUITE_DATA = SHARED / "data" / "silk" / "silk-suite" / "data"
ZEEK = SHARED / "data" / "real" / "flows" / "stratosphere-008-mixed-conn.log.labeled"


def hour_file(root: Path, prefix: str, sensor: int, hour: int, rows: int) -> Path:
    start = 1_434_499_200_000 + hour * 3_600_000  # 2015/06/17
    folder = root / prefix / "2015" / "06" / "17"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prefix}-S{sensor}_20150617.{hour:02d}"
    with SilkWriter(path, entries=hour_file_entries(PackedFile(start, 0, sensor))) as out:
        out.write(make_batch(stime_ms=[start] * rows, bytes=list(range(1, rows + 1))))
    return path


@pytest.fixture(autouse=True)
def fresh_faults(monkeypatch):
    monkeypatch.setattr(inputs, "FAULTS", inputs.Faults())


def test_names_resolve_to_files_in_order(tmp_path):
    late = hour_file(tmp_path / "repo", "in", 1, 15, 3)
    early = hour_file(tmp_path / "repo", "out", 2, 3, 2)
    (tmp_path / "flat").mkdir()
    for name in ("b.rw", "a.rw", ".hidden"):
        (tmp_path / "flat" / name).write_bytes(b"")
    assert resolve_inputs([str(tmp_path / "repo")]) == [str(early), str(late)]  # by hour
    assert resolve_inputs([str(tmp_path / "flat")]) == [
        str(tmp_path / "flat" / "a.rw"),
        str(tmp_path / "flat" / "b.rw"),
    ]
    assert resolve_inputs([str(tmp_path / "flat" / "*.rw"), "-", "stdin"]) == [
        str(tmp_path / "flat" / "a.rw"),
        str(tmp_path / "flat" / "b.rw"),
        "-",
        "-",
    ]
    assert resolve_inputs([str(tmp_path / "repo" / "*" / "2015" / "06" / "17" / "*")]) == [
        str(late),
        str(early),
    ]  # a glob keeps its own (path) order


def test_nothing_named_reads_stdin_unless_it_is_a_terminal(monkeypatch):
    assert resolve_inputs([], stdin_ok=True) == ["-"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO()))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    with pytest.raises(InputError, match="no input: name a flow file, folder or glob"):
        resolve_inputs([])


def test_a_glob_matching_nothing_is_an_error(tmp_path):
    with pytest.raises(InputError, match=r"nothing\*\.rw: no file matches"):
        resolve_inputs([str(tmp_path / "nothing*.rw")])


def test_a_damaged_file_in_a_walk_is_reported_and_the_walk_goes_on(tmp_path, capsys):
    first = hour_file(tmp_path, "in", 1, 1, 5)
    bad = hour_file(tmp_path, "in", 1, 2, 7)
    last = hour_file(tmp_path, "in", 1, 3, 11)
    bad.write_bytes(bad.read_bytes()[:-30])  # the last record cut short
    run = InputRun()
    total = sum(len(b) for b in iter_inputs(resolve_inputs([str(tmp_path)]), run=run))
    assert total == 5 + 6 + 11  # the damaged file's whole records are kept
    assert (run.files, run.failed) == (3, 1)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad.name} offset" in err and "truncated record" in err
    assert inputs.FAULTS.messages and str(first) not in err and str(last) not in err


def test_the_command_exits_1_after_a_damaged_file(tmp_path, capsys):
    hour_file(tmp_path, "in", 1, 1, 5)
    bad = hour_file(tmp_path, "in", 1, 2, 7)
    hour_file(tmp_path, "in", 1, 3, 11)
    bad.write_bytes(bad.read_bytes()[:-30])
    assert main(["filter", "--bytes=1-", "--print-statistics", str(tmp_path)]) == 1  # an input
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("silkwatch: error: silk: ") and "truncated record" in err[0]
    assert err[1] == "Files     3.  Read         22.  Pass         22. Fail           0."


def test_one_damaged_input_is_still_an_error(tmp_path):
    bad = hour_file(tmp_path, "in", 1, 2, 7)
    bad.write_bytes(bad.read_bytes()[:-30])
    with pytest.raises(Exception, match="truncated record"):
        list(iter_inputs([str(bad)]))


def test_a_pcap_is_named_as_one(tmp_path):
    for magic in (b"\xd4\xc3\xb2\xa1", b"\x0a\x0d\x0d\x0a"):
        pcap = tmp_path / "capture.pcap"
        pcap.write_bytes(magic + bytes(60))
        with pytest.raises(FlowTextError) as caught:
            list(read_flows(pcap))
        assert str(caught.value) == (
            f"flowtext: {pcap} header: this is a pcap; use --input-format pcap"
        )


def test_a_damaged_gz_reports_what_was_read_then_one_error(tmp_path):
    packed = gzip.compress(ZEEK.read_bytes())
    damaged = tmp_path / "conn.log.gz"
    damaged.write_bytes(packed[: len(packed) // 2] + bytes(64) + packed[len(packed) // 2 + 64 :])
    flows = 0
    with pytest.raises(FlowTextError) as caught:
        for batch in read_flows(damaged, rows=1000, format="zeek"):
            flows += len(batch)
    assert flows > 1000  # the batches before the damage came out
    # the inflated garbage is the first bad line (the CRC would fail later): one line
    assert str(caught.value).startswith(f"flowtext: {damaged} line ")
    assert "\n" not in str(caught.value)


def test_a_truncated_gz_is_one_error_line(tmp_path):
    packed = gzip.compress(ZEEK.read_bytes())
    cut = tmp_path / "conn.log.gz"
    cut.write_bytes(packed[: len(packed) // 3])
    with pytest.raises(FlowTextError, match=r"conn.log.gz header: damaged after [\d,]+ bytes"):
        list(read_flows(cut, format="zeek"))


BINETFLOW = "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,TotPkts,TotBytes,SrcBytes\n"
RECORD = "2013/12/17 22:09:19.5,1.0,tcp,10.0.0.1,1234,   ->,10.0.0.2,80,S_SA,10,{total},500\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            BINETFLOW.replace("SrcAddr", "SrcAdr") + RECORD.format(total=1000),
            "line 1: binetflow header lacks SrcAddr (columns not known: SrcAdr, Dir)",
        ),
        (
            BINETFLOW + RECORD.format(total="12345678901234567890123456"),
            "line 2: integer out of range for uint64",
        ),
    ],
)
def test_text_that_is_not_right_is_an_error_not_a_guess(tmp_path, text, message):
    path = tmp_path / "x.binetflow"
    path.write_text(text)
    with pytest.raises(FlowTextError) as caught:
        list(read_flows(path))
    assert str(caught.value) == f"flowtext: {path} {message}"


def test_every_bad_line_is_not_a_silent_success(tmp_path, capsys):
    path = tmp_path / "all-bad.binetflow"
    path.write_text(BINETFLOW + "garbage\n" * 19)
    assert main(["filter", "--proto=6", "--print-statistics", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"silkwatch: error: flowtext: {path} line 2: 1 fields, expected 12\n"
        "Files     1.  Read          0.  Pass          0. Fail           0.\n"
    )
    assert main(["filter", "--proto=6", "--skip-bad-lines=19", "--print-stat", str(path)]) == 0
    assert capsys.readouterr().err == (
        f"silkwatch: {path}: skipped 19 malformed lines (argus)\n"
        "Files     1.  Read          0.  Pass          0. Fail           0.\n"
    )


def test_empty_inputs_are_no_flows(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    batches = list(iter_inputs([str(empty), str(SUITE_DATA / "empty.rwf")]))
    assert sum(map(len, batches)) == 0
    assert all(isinstance(b, np.ndarray) for b in batches)


def test_a_pcap_goes_through_the_exporter_chain_when_asked(capsys):
    """``--input-format pcap``: softflowd → nfcapd → nfdump, as ``connectors/pcapflows.py`` does."""
    pcap = SHARED / "data" / "real" / "pcap" / "benign" / "chrissanders-dns_query_response.pcapng"
    assert main(["filter", "--input-format=pcap", "--proto=17", "--print-stat", str(pcap)]) == 0
    assert capsys.readouterr().err == (
        "Files     1.  Read          2.  Pass          2. Fail           0.\n"
    )


def test_filter_writes_what_a_single_damaged_input_held(tmp_path, capsys):
    bad = hour_file(tmp_path, "in", 1, 2, 7)
    bad.write_bytes(bad.read_bytes()[:-30])
    out = tmp_path / "pass.rw"
    assert main(["filter", "--bytes=1-", f"--pass={out}", "--print-statistics", str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert "truncated record" in err[0] and len(err) == 2
    assert err[1] == "Files     1.  Read          6.  Pass          6. Fail           0."
    assert sum(len(b) for b in read_flows(out)) == 6
