"""What rwfilter and analysts hand over that is not a tidy flow file: one line, right exit code.

Empty input (a header-only SiLK stream from a filter that matched nothing, an empty
file) is SiLK's empty output and exit 0; a record dated centuries ahead does not
make ``count`` allocate for the span; a pipe from ``silkwatch filter`` works as one
from rwfilter.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from silkwatch.connectors.silk import SilkWriter
from silkwatch.detectors.schema import make_batch

SUITE_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "silk" / "silk-suite"
DATA = str(SUITE_DATA / "data" / "data.rwf")
SILKWATCH = [sys.executable, "-m", "silkwatch"]
#: address space for the commands below (numpy, the readers): 1.5 GB
LIMIT_BYTES = 1_500_000_000


def silkwatch(*argv: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))

    return subprocess.run(
        [*SILKWATCH, *argv], input=stdin, capture_output=True, preexec_fn=limit, timeout=300
    )


@pytest.fixture(scope="module")
def header_only() -> bytes:
    """What ``rwfilter ... --pass=stdout`` writes when nothing passes."""
    done = silkwatch("filter", "--proto=255", "--pass=stdout", DATA)
    assert done.returncode == 0 and done.stderr == b""
    return done.stdout


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["count"],
            b"               Date|        Records|               Bytes|          Packets|\n",
        ),
        (["stats", "--fields=sip", "--count=5"], b"INPUT: 0 Records for 0 Bins"),
        (["uniq", "--fields=sip"], b"sIP|   Records|\n"),
        (["cut", "--fields=sip"], b"sIP|\n"),
    ],
)
def test_header_only_stream_and_empty_file_give_an_empty_table(
    header_only, tmp_path, argv, expected
):
    piped = silkwatch(*argv, stdin=header_only)
    assert (piped.returncode, piped.stderr) == (0, b"")
    assert expected in piped.stdout
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    named = silkwatch(*argv, str(empty))
    assert (named.returncode, named.stderr, named.stdout) == (0, b"", piped.stdout)


@pytest.fixture(scope="module")
def far_future(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("far") / "far.rw"
    thousand_years_ms = 1000 * 365 * 86_400_000
    with SilkWriter(path) as out:
        out.write(
            make_batch(
                stime_ms=[1_434_553_200_000, 1_434_553_200_000 + thousand_years_ms],
                bytes=[10, 20],
                packets=[1, 1],
                elapsed_ms=[1000, 2000],
            )
        )
    return path


def test_count_does_not_allocate_for_a_thousand_years(far_future):
    sparse = silkwatch("count", "--skip-zeroes", str(far_future))
    assert sparse.returncode == 0, sparse.stderr
    assert sparse.stdout.decode().splitlines()[1:] == [
        "2015/06/17T15:00:00|           1.00|               10.00|             1.00|",
        "3014/10/18T15:00:00|           1.00|               20.00|             1.00|",
    ]
    dense = silkwatch("count", str(far_future))  # SiLK would print a billion empty rows
    assert dense.returncode == 1 and dense.stdout == b""
    assert dense.stderr.decode() == (
        "silkwatch: error: count: 1,051,200,001 bins of 30 s between the first and the last "
        "record (over 50,000,000); use --skip-zeroes, a larger --bin-size or "
        "--start-time/--end-time\n"
    )


def test_text_durations_are_capped_at_silks_maximum(tmp_path):
    log = tmp_path / "long.binetflow"
    log.write_text(
        "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,TotPkts,TotBytes\n"
        "2013/12/17 22:09:19.5,9999999.5,tcp,10.0.0.1,1234,   ->,10.0.0.2,80,S_SA,10,1000\n"
    )
    done = silkwatch("cut", "--fields=duration", "--no-titles", str(log))
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"4294967.295|\n"  # 2**32 - 1 ms, not 9999999.5 s wrapped around
