"""``silkwatch filter`` and ``silkwatch sort`` on SiLK's own test data (data.rwf, 501,876 flows).

The counts are those of SiLK 3.19.1's rwfilter on the same file: each equals the
number of records in the output SiLK's test suite expects downstream (for
``--proto=1``, the 15,622 rows of ``expected/rwcut-icmpTypeCode.out``; for
``--type=in,inweb``, ``INPUT: 250928 Records`` of ``rwstats-sdport-top-flo-c5``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from silkwatch.cli import main
from silkwatch.connectors.silk import read_batches, read_header
from silkwatch.detectors.flowfilter import ipv4_mapped

SUITE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "silk" / "silk-suite"
DATA = str(SUITE / "data" / "data.rwf")
DATA_V6 = str(SUITE / "data" / "data-v6.rwf")
EMPTY = str(SUITE / "data" / "empty.rwf")
TOTAL = 501_876
SILKWATCH = [sys.executable, "-m", "silkwatch"]


def records(path: str | Path) -> np.ndarray:
    return np.concatenate([*read_batches(path), np.zeros(0, dtype=next(read_batches(DATA)).dtype)])


def columns(flows: np.ndarray) -> dict[str, bytes]:
    """Every column's bytes (the rows' padding left out)."""
    return {name: flows[name].tobytes() for name in flows.dtype.names}


def statistics(capsys, *argv: str) -> str:
    assert main(["filter", *argv, "--print-statistics"]) == 0
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("switches", "passed"),
    [
        (["--proto=1"], 15_622),  # rwcut-icmpTypeCode: 15,623 lines with the title
        (["--type=in,inweb"], 250_928),  # rwstats-sdport-top-flo-c5: INPUT: 250928 Records
        (["--dport=0-66,69-1023,8080"], 253_971),  # rwstats-dport-bot-byt-c4
        (["--sport=0-66,69-1023,8080"], 258_683),  # rwstats-sport-bot-flo-c4
        (["--dport=68"], TOTAL - 494_069),  # rwstats-dport-icmp-top-p16 reads the fail side
    ],
)
def test_counts_are_rwfilters(capsys, switches, passed):
    expected = f"Files     1.  Read {TOTAL:10d}.  Pass {passed:10d}. Fail  {TOTAL - passed:10d}.\n"
    assert statistics(capsys, *switches, DATA) == expected


def test_switches_are_anded_and_volume_statistics_are_silks_table(capsys):
    assert main(["filter", "--proto=6", "--dport=80", "--print-volume-statistics", DATA]) == 0
    flows = records(DATA)
    web = flows[(flows["proto"] == 6) & (flows["dport"] == 80)]
    rest = len(flows) - len(web)
    assert capsys.readouterr().err == (
        "     |              Recs|           Packets|               Bytes|     Files|\n"
        f"Total|{TOTAL:18d}|{int(flows['packets'].sum()):18d}|{int(flows['bytes'].sum()):20d}|"
        "         1|\n"
        f" Pass|{len(web):18d}|{int(web['packets'].sum()):18d}|{int(web['bytes'].sum()):20d}|"
        "          |\n"
        f" Fail|{rest:18d}|{int(flows['packets'].sum() - web['packets'].sum()):18d}|"
        f"{int(flows['bytes'].sum() - web['bytes'].sum()):20d}|          |\n"
    )


def test_pass_and_fail_files_split_the_input_in_order(tmp_path):
    passed, failed, every = tmp_path / "pass.rw", tmp_path / "fail.rw", tmp_path / "all.rw"
    argv = ["filter", "--proto=17", f"--pass={passed}", f"--fail={failed}"]
    assert main([*argv, f"--all-destination={every}", DATA]) == 0
    flows, good, bad = records(DATA), records(passed), records(failed)
    assert len(good) == int((flows["proto"] == 17).sum()) and (good["proto"] == 17).all()
    assert len(good) + len(bad) == TOTAL and not (bad["proto"] == 17).any()
    assert columns(good) == columns(flows[flows["proto"] == 17])  # every column, in order
    assert columns(records(every)) == columns(flows)
    assert read_header(passed).invocations[0].startswith("silkwatch filter --proto=17")
    assert oct(passed.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_max_pass_records_stops_reading(capsys, tmp_path):
    out = tmp_path / "ten.rw"
    assert main(["filter", "--proto=1", "--max-pass-records=10", f"--pass={out}", DATA]) == 0
    flows = records(DATA)
    icmp = np.flatnonzero(flows["proto"] == 1)
    assert columns(records(out)) == columns(flows[icmp[:10]])
    argv = ["--proto=1", "--max-pass-records=10", f"--pass={tmp_path / 'b.rw'}", DATA]
    read = int(icmp[9]) + 1  # rwfilter stops at the 10th pass: the records up to it were read
    assert statistics(capsys, *argv) == (
        f"Files     1.  Read {read:10d}.  Pass {10:10d}. Fail  {read - 10:10d}.\n"
    )


def test_compressed_output_is_read_back(tmp_path):
    for method in ("zlib", "lzo1x", "snappy"):
        out = tmp_path / f"{method}.rw"
        argv = ["filter", "--ip-version=6", f"--compression-method={method}", f"--pass={out}"]
        assert main([*argv, DATA_V6]) == 0
        assert read_header(out).compression == ("none", "zlib", "lzo1x", "snappy").index(method)
        assert len(records(out)) == TOTAL


def test_filter_to_stdout_pipes_into_cut_like_rwfilter_into_rwcut():
    """silk-suite case rwcut-icmpTypeCode: rwfilter --proto=1 --pass=- data.rwf | rwcut ..."""
    case = next(
        c
        for c in json.loads((SUITE / "cases.json").read_text())
        if c["name"] == "rwcut-icmpTypeCode"
    )
    env = {**os.environ, **case["env"]}
    first = subprocess.run(
        [*SILKWATCH, "filter", "--proto=1", "--pass=-", "data/data.rwf"],
        cwd=SUITE,
        env=env,
        capture_output=True,
        check=True,
    )
    second = subprocess.run(
        [*SILKWATCH, "cut", "--fields=icmpTypeCode"],
        cwd=SUITE,
        env=env,
        input=first.stdout,
        capture_output=True,
        check=True,
    )
    assert hashlib.md5(second.stdout).hexdigest() == case["md5"]


def test_repository_selection_by_date_sensor_and_type(tmp_path, capsys):
    from silkwatch.connectors.silk import SilkWriter
    from silkwatch.connectors.silk.header import PackedFile
    from silkwatch.connectors.silk.writer import hour_file_entries
    from silkwatch.detectors.schema import make_batch

    hour = 1_434_553_200_000  # 2015/06/17T15
    for sensor, prefix, flowtype, day, h in [
        (3, "in", 0, "20150617", 15),
        (3, "out", 1, "20150617", 15),
        (4, "in", 0, "20150617", 16),
        (3, "iw", 2, "20150618", 0),
    ]:
        folder = tmp_path / prefix / day[:4] / day[4:6] / day[6:]
        folder.mkdir(parents=True, exist_ok=True)
        start = hour + (h - 15) * 3_600_000 + (9 * 3_600_000 if day == "20150618" else 0)
        entries = hour_file_entries(PackedFile(start, flowtype, sensor))
        with SilkWriter(folder / f"{prefix}-S{sensor}_{day}.{h:02d}", entries=entries) as out:
            rows = h + 1
            out.write(
                make_batch(
                    stime_ms=[start] * rows,
                    bytes=[1] * rows,
                    sensor=[sensor] * rows,
                    flowtype=[flowtype] * rows,
                )
            )
    root = f"--data-rootdir={tmp_path}"
    # the whole day of 2015/06/17, default types (in, inweb, inicmp): S3 in 15h, S4 in 16h
    assert statistics(capsys, root, "--start-date=2015/06/17", "--bytes=1") == (
        "Files     2.  Read         33.  Pass         33. Fail           0.\n"
    )
    # one hour, one sensor, all types
    argv = [root, "--start-date=2015/06/17:15", "--sensors=S3", "--type=all", "--bytes=1"]
    assert statistics(capsys, *argv) == (
        "Files     2.  Read         32.  Pass         32. Fail           0.\n"
    )
    # a day range with hour precision at the start: the end day at the start's hour
    # (2015/06/17:16 to 2015/06/18:16: S4 in 16h and S3 inweb 00h of the next day)
    argv = [root, "--start-date=2015/06/17:16", "--end-date=2015/06/18", "--type=inweb,in"]
    assert statistics(capsys, *argv, "--bytes=1") == (
        "Files     2.  Read         18.  Pass         18. Fail           0.\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--proto=6", DATA], "filter: no output: give --pass, --fail, --all-destination"),
        (["--pass=/tmp/x.rw", DATA], "filter: no partitioning switch"),
        (["--proto=6", "--pass=/no/such/folder/x.rw", DATA], "/no/such/folder/x.rw: cannot write"),
        (["--sport=99999", "--pass=-", DATA], "filter: --sport=99999: '99999' is outside 0-65535"),
        (["--type=nope", "--print-stat", DATA], "filter: --type=all/nope: unknown class/type"),
        (["--sensors=3-1", "--print-stat", DATA], "filter: --sensors=3-1: unknown sensor '3-1'"),
        (["--sensors=70000", "--print-stat", DATA], "--sensors=70000: unknown sensor '70000'"),
        (["--proto=6", "--print-stat", "--data-rootdir=/tmp", DATA], "cannot be combined"),
    ],
)
def test_bad_command_lines_are_one_line(capsys, argv, message):
    assert main(["filter", *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("silkwatch: error: ")


def test_a_missing_input_is_reported_and_the_rest_is_read(capsys):
    assert main(["filter", "--proto=1", "/no/such.rw", DATA, "--print-statistics"]) == 1
    assert capsys.readouterr().err == (
        "silkwatch: error: /no/such.rw: cannot open: No such file or directory\n"
        "Files     1.  Read     501876.  Pass      15622. Fail      486254.\n"  # opened files
    )


def test_empty_input_gives_an_empty_silk_file(tmp_path, capsys):
    out = tmp_path / "none.rw"
    assert main(["filter", "--proto=6", f"--pass={out}", "--print-statistics", EMPTY]) == 0
    assert capsys.readouterr().err == (
        "Files     1.  Read          0.  Pass          0. Fail           0.\n"
    )
    assert len(records(out)) == 0


def test_sort_orders_like_rwsort_and_merges_files(tmp_path):
    out = tmp_path / "sorted.rw"
    assert main(["sort", "--fields=sport,dIP", "--output-path", str(out), DATA, DATA_V6]) == 0
    flows = records(out)
    assert len(flows) == 2 * TOTAL
    sport = flows["sport"].astype(np.int64)
    assert (np.diff(sport) >= 0).all()
    # within one sPort, dIP ascending as 128-bit numbers (IPv4 mapped sorts before 2001:...)
    same = np.diff(sport) == 0
    dip = np.ascontiguousarray(flows["dip"]).view(">u8").reshape(-1, 2)
    hi, lo = dip[:, 0], dip[:, 1]
    ordered = (hi[1:] > hi[:-1]) | ((hi[1:] == hi[:-1]) & (lo[1:] >= lo[:-1]))
    assert ordered[same].all()
    assert sorted(records(DATA)["bytes"].tolist() * 1) == sorted(
        flows[~flows["ipv6"]]["bytes"].tolist()
    )


def test_sort_reverse_and_stdin(tmp_path):
    data = Path(DATA).read_bytes()
    done = subprocess.run(
        [*SILKWATCH, "sort", "--fields=stime", "--reverse"],
        input=data,
        capture_output=True,
        check=True,
    )
    out = tmp_path / "rev.rw"
    out.write_bytes(done.stdout)
    flows = records(out)
    assert len(flows) == TOTAL and (np.diff(flows["stime_ms"]) <= 0).all()


def test_sort_refuses_unknown_fields(capsys):
    assert main(["sort", "--fields=sIP,nosuch", "--output-path=/dev/null", DATA]) == 1
    assert capsys.readouterr().err == (
        "silkwatch: error: sort: --fields=sIP,nosuch: unknown or ambiguous sort field 'nosuch'\n"
    )


@pytest.mark.parametrize(
    "name", ["stratosphere-008-mixed-conn.log.labeled", "ctu-normal-7-2013-13-07.binetflow"]
)
def test_text_inputs_filter_into_silk_files(tmp_path, name):
    """Zeek and Argus text in, SiLK out: the same flows as the text reader gives."""
    from silkwatch.connectors.flows import read_flows

    text = SUITE.parents[1] / "real" / "flows" / name
    out = tmp_path / "udp.rw"
    assert main(["filter", "--proto=17", f"--pass={out}", str(text)]) == 0
    flows = np.concatenate(list(read_flows(text)))
    udp = flows[flows["proto"] == 17]
    assert len(udp) > 0
    written, expected = columns(records(out)), columns(udp)
    # the text readers leave the next hop zero (::); a SiLK file stores IPv4's 0.0.0.0 mapped
    assert written.pop("nhip") == ipv4_mapped(udp, "nhip").tobytes()
    del expected["nhip"]
    assert written == expected


def test_sensor_and_type_names_come_from_the_site_config(tmp_path, capsys, monkeypatch):
    site = tmp_path / "silk.conf"
    site.write_text(
        "sensor 0 alpha\nsensor 1 beta\n"
        "class all\n  type 0 in in\n  type 2 inweb iw\nend class\n"
        "class ext\n  type 5 mirror mirror\nend class\n"
    )
    by_id = statistics(capsys, "--sensors=1", DATA)
    assert statistics(capsys, f"--site-config-file={site}", "--sensors=beta", DATA) == by_id
    monkeypatch.setenv("SILK_CONFIG_FILE", str(site))
    assert statistics(capsys, "--sensors=beta", DATA) == by_id
    assert statistics(capsys, "--flowtypes=all/in,all/inweb", DATA) == (
        f"Files     1.  Read {TOTAL:10d}.  Pass     250928. Fail      250948.\n"
    )
    assert main(["filter", "--sensors=S1", "--print-stat", DATA]) == 1  # not this site's name
    assert capsys.readouterr().err == (
        "silkwatch: error: filter: --sensors=S1: unknown sensor 'S1'\n"
    )


PIPED_CASES = [
    case
    for case in json.loads((SUITE / "cases.json").read_text())
    if {"rwfilter", "rwsort"} & set(case["tools"])
]


@pytest.mark.slow
@pytest.mark.parametrize("case", PIPED_CASES, ids=[case["name"] for case in PIPED_CASES])
def test_silk_suite_pipelines_through_real_pipes(case):
    """SiLK's cases that pipe rwfilter/rwsort into a tool: the same MD5 through OS pipes."""
    command = case["command"]
    for tool in ("rwfilter", "rwsort", "rwcut", "rwcount", "rwuniq", "rwstats"):
        command = command.replace(tool, f"{sys.executable} -m silkwatch {tool[2:]}")
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=SUITE,
        env={**os.environ, **case["env"]},
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()[-300:]
    assert hashlib.md5(done.stdout).hexdigest() == case["md5"]
