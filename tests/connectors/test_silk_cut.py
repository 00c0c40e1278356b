"""``silkwatch cut`` against rwcut's own output, and the field text helpers it uses."""

from __future__ import annotations

import doctest
import importlib
import io
import json
import sys

import pytest

from silkwatch.cli import main
from silkwatch.connectors.silk.text import (
    attributes_text,
    format_duration,
    format_time_ms,
    parse_attributes,
    parse_duration_ms,
    parse_fields,
    parse_tcp_flags,
    parse_time_ms,
    tcp_flags_text,
)
from tests.connectors.test_silk_reader import GOLDEN, SILK

FCCX_V1 = str(SILK / "fccx" / "FT_RWIPV6ROUTING-v1-c1-L.dat")
HEAD_FIELDS = (
    "sIP,dIP,sPort,dPort,protocol,packets,bytes,flags,sTime,duration,eTime,sensor,class,type"
)
CSV_FIELDS = (
    "sIP,dIP,sPort,dPort,protocol,packets,bytes,flags,sTime,duration,sensor,class,type,"
    "in,out,nhIP,initialFlags,sessionFlags,attributes,application"
)


def cut(capsys, *argv: str) -> str:
    assert main(["cut", *argv]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "golden"),
    [
        (
            (FCCX_V1, "--num-recs=25", f"--fields={HEAD_FIELDS}"),
            "fccx-out-S3-20150617.15-head25.rwcut.txt",
        ),
        (
            (FCCX_V1, "--tail-recs=5", f"--fields={HEAD_FIELDS}"),
            "fccx-out-S3-20150617.15-tail5.rwcut.txt",
        ),
        (
            (
                FCCX_V1,
                "--num-recs=25",
                f"--fields={CSV_FIELDS}",
                "--format=csv",
                "--timestamp-format=epoch",
                "--integer-tcp-flags",
            ),
            "fccx-out-S3-20150617.15-head25-epoch.csv",
        ),
        (
            (
                str(SILK / "dof" / "FT_RWGENERIC_DOF_c2.rw"),
                "--fields=sIP,dIP,sPort,dPort,proto,packets,bytes,flags,sTime,duration,sensor,class,type",
            ),
            "dof.rwcut.txt",
        ),
        ((str(SILK / "generated" / "v6mix.rw"), "--all-fields"), "v6mix.rwcut.txt"),
        (
            (
                str(SILK / "generated" / "fccx-FT_RWAUGWEB-v4-c1-B.dat"),
                "--num-recs=10",
                f"--fields={HEAD_FIELDS[: -len(',eTime,sensor,class,type')]},sensor,class,type",
            ),
            "fccx-augweb-head10.rwcut.txt",
        ),
    ],
    ids=["head25", "tail5", "epoch-csv", "dof-1434", "v6mix-all-fields", "augweb-head10"],
)
def test_output_equals_rwcut(capsys, argv, golden):
    assert cut(capsys, *argv) == (GOLDEN / golden).read_text()


def test_stdin_and_default_fields(capsys, monkeypatch):
    data = (SILK / "fccx" / "FT_RWIPV6ROUTING-v1-c2-B.dat").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    lines = cut(capsys, "-", "--num-recs=2").splitlines()
    head = (GOLDEN / "fccx-out-S3-20150617.15-head25.rwcut.txt").read_text().splitlines()
    default_width = sum(w + 1 for w in (39, 39, 5, 5, 3, 10, 10, 8, 23, 9, 23, 3))
    assert lines == [line[:default_width] for line in head[:3]]


def test_json_lines_carry_exact_values(capsys):
    out = cut(
        capsys,
        str(SILK / "generated" / "v6mix.rw"),
        "--format=json",
        "--timestamp-format=epoch",
        "--fields=sIP,dPort,flags,sTime,duration,sensor,type,attributes,iType,iCode",
    )
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 5
    assert rows[0] == {
        "sIP": "2001:db8::1",
        "dPort": 443,
        "flags": "FSPA",
        "sTime": 1434553262345,
        "duration": 12.345,
        "sensor": "S0",
        "type": "outweb",
        "attributes": "F",
        "iType": None,
        "iCode": None,
    }
    assert (rows[1]["iType"], rows[1]["iCode"], rows[1]["attributes"]) == (3, 3, "T")


def test_num_recs_zero_prints_everything_like_rwcut(capsys):
    assert (
        len(
            cut(
                capsys, str(SILK / "dof" / "FT_RWGENERIC_DOF_c3.rw"), "--num-recs=0", "--no-titles"
            ).splitlines()
        )
        == 1434
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--fields=sIP,nope"],
        ["--fields=s"],
        ["--num-recs=-1"],
        ["--start-rec-num=2", "--tail-recs=2"],
    ],
)
def test_bad_options_are_usage_errors(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(["cut", FCCX_V1, *argv])
    assert exit_.value.code == 2
    assert "silkwatch cut: error:" in capsys.readouterr().err


# --------------------------------------------------------------------------- text helpers


@pytest.mark.parametrize(
    ("value", "padded", "compact"),
    [
        (0, "        ", ""),
        (30, " SRPA   ", "SRPA"),
        (27, "FS PA   ", "FSPA"),
        (255, "FSRPAUEC", "FSRPAUEC"),
    ],
)
def test_tcp_flags_text(value, padded, compact):
    assert (tcp_flags_text(value), tcp_flags_text(value, padded=False)) == (padded, compact)
    assert (
        parse_tcp_flags(padded) == parse_tcp_flags(compact) == parse_tcp_flags(str(value)) == value
    )


@pytest.mark.parametrize(
    ("value", "text"), [(0, ""), (0x20, "T"), (0x40, "C"), (0x08, "F"), (0x10, "S"), (0x78, "TCFS")]
)
def test_attributes_text(value, text):
    assert attributes_text(value, padded=False) == text and parse_attributes(text) == value
    assert len(attributes_text(value)) == 8


@pytest.mark.parametrize(
    ("ms", "style", "text"),
    [
        (1434553200013, "default", "2015/06/17T15:00:00.013"),
        (1434553200013, "iso", "2015-06-17 15:00:00.013"),
        (1434553200013, "epoch", "1434553200.013"),
        (0, "default", "1970/01/01T00:00:00.000"),
    ],
)
def test_times(ms, style, text):
    assert format_time_ms(ms, style) == text and parse_time_ms(text) == ms


@pytest.mark.parametrize(
    ("ms", "text"), [(0, "0.000"), (6, "0.006"), (1799810, "1799.810"), (12345, "12.345")]
)
def test_durations(ms, text):
    assert format_duration(ms) == text and parse_duration_ms(text) == ms


def test_field_names_accept_case_and_unique_prefixes():
    with pytest.raises(ValueError, match="ambiguous field 'dur'"):
        parse_fields("dur")  # duration or dur+msec
    assert [f.name for f in parse_fields("SIP,proto,sess,sTime+msec,appl")] == [
        "sIP",
        "protocol",
        "sessionFlags",
        "sTime+msec",
        "application",
    ]


@pytest.mark.parametrize(
    "module", ["silkwatch.connectors.silk.text", "silkwatch.connectors.silk.writer"]
)
def test_docstring_examples_run(module):
    # pytest collects doctests from tests/ and detectors/ only, so run these here
    failed, attempted = doctest.testmod(
        importlib.import_module(module), optionflags=doctest.ELLIPSIS
    )
    assert (failed, attempted > 0) == (0, True)
