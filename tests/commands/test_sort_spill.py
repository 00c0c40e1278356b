"""``silkwatch sort`` beyond its buffer: sorted runs on disk, merged, the same bytes out."""

from __future__ import annotations

import hashlib

import pytest

from silkwatch import sortruns
from silkwatch.cli import main
from silkwatch.commands.sort import buffer_size
from silkwatch.connectors.silk import SilkWriter, read_batches
from tests.commands.test_filter_sort import DATA, DATA_V6


@pytest.fixture
def merges(monkeypatch) -> list[int]:
    """The number of runs of every merge (none: everything was sorted in memory)."""
    seen: list[int] = []
    merge = sortruns._merge

    def counted(runs, *args):
        seen.append(len(runs))
        yield from merge(runs, *args)

    monkeypatch.setattr(sortruns, "_merge", counted)
    return seen


def _sorted(tmp_path, name: str, *argv: str) -> str:
    """MD5 of the SiLK file ``silkwatch sort ARGV`` writes."""
    out = tmp_path / name
    assert main(["sort", *argv, f"--output-path={out}"]) == 0
    return hashlib.md5(out.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "argv",
    [
        ["--fields=sip,stime", DATA],
        ["--fields=bytes", "--reverse", DATA],
        ["--fields=sport,dIP", DATA, DATA_V6],  # ties across runs keep their input order
        ["--fields=proto", DATA],  # few keys: long runs of ties
    ],
)
def test_runs_on_disk_give_the_in_memory_bytes(tmp_path, argv, monkeypatch, merges):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    whole = _sorted(tmp_path, "memory.rw", *argv)
    spilled = _sorted(tmp_path, "disk.rw", "--sort-buffer-size=3M", *argv)
    assert spilled == whole
    assert merges == [17 * (len(argv) - 1 - ("--reverse" in argv))]  # 30,246 records a run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.rw", "memory.rw"]  # runs removed


def test_a_tiny_buffer_many_runs(tmp_path, merges):
    flows = next(read_batches(DATA, rows=997))
    small = tmp_path / "small.rw"
    with SilkWriter(small) as writer:
        writer.write(flows)
    runs = tmp_path / "runs"
    runs.mkdir()
    whole = _sorted(tmp_path, "memory.rw", "--fields=dport,sip", str(small))
    # 14 records a run: 72 runs, merged 13 rows a block
    spilled = _sorted(
        tmp_path,
        "disk.rw",
        "--sort-buffer-size=1.5K",
        f"--temp-directory={runs}",
        "--fields=dport,sip",
        str(small),
    )
    assert spilled == whole and list(runs.iterdir()) == []
    assert merges == [72]


def test_buffer_sizes_and_a_bad_temp_directory(tmp_path, capsys):
    assert (buffer_size("1.5K"), buffer_size("2g"), buffer_size("100")) == (1536, 2 << 30, 100)
    with pytest.raises(SystemExit):
        main(["sort", "--fields=sip", "--sort-buffer-size=0", DATA])
    assert "expected a size like" in capsys.readouterr().err
    argv = ["sort", "--fields=sip", "--buffer-size=1M", "--temp-directory=/no/such/dir"]
    assert main([*argv, "--output-path=/dev/null", DATA]) == 1
    err = capsys.readouterr().err
    assert err.startswith("silkwatch: error: sort: --temp-directory /no/such/dir:")
    assert err.count("\n") == 1
