"""``silkwatch sort`` beyond its buffer, and merging presorted inputs: the same bytes out."""

from __future__ import annotations

import hashlib

import numpy as np
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


def _parts(tmp_path, count: int) -> list[str]:
    """The first 20,000 records of DATA and DATA_V6 dealt into ``count`` SiLK files, unsorted."""
    flows = np.concatenate(
        [next(read_batches(DATA, rows=10_000)), next(read_batches(DATA_V6, rows=10_000))]
    )
    paths = []
    for i in range(count):
        path = tmp_path / f"part-{i}.rw"
        with SilkWriter(path) as writer:
            writer.write(flows[i::count])
        paths.append(str(path))
    return paths


@pytest.mark.parametrize(
    ("keys", "buffer"),
    [
        (["--fields=sip,stime"], "2G"),
        (["--fields=bytes", "--reverse"], "2G"),
        (["--fields=proto"], "2G"),  # few keys: ties across inputs keep the input order
        (["--fields=dport,sip"], "1.5K"),  # the merge reads 3 records a block: many rounds
    ],
)
def test_presorted_inputs_merge_to_the_one_pass_bytes(tmp_path, keys, buffer, monkeypatch):
    parts = _parts(tmp_path, 3)
    one_pass = _sorted(tmp_path, "one-pass.rw", *keys, *parts)
    runs = []
    for i, part in enumerate(parts):
        _sorted(tmp_path, f"sorted-{i}.rw", *keys, part)
        runs.append(str(tmp_path / f"sorted-{i}.rw"))
    merged = []
    merge = sortruns.merge_presorted

    def counted(inputs, *args):
        merged.append([name for name, _ in inputs])
        yield from merge(inputs, *args)

    monkeypatch.setattr(sortruns, "merge_presorted", counted)
    argv = ["--presorted-input", f"--sort-buffer-size={buffer}", *keys, *runs]
    assert _sorted(tmp_path, "merged.rw", *argv) == one_pass
    assert merged == [runs]  # merged, not sorted again
    assert sum(len(b) for b in read_batches(tmp_path / "merged.rw")) == 20_000
    concatenated = _sorted(tmp_path, "runs-one-pass.rw", *keys, *runs)
    assert concatenated == one_pass  # a stable sort of sorted runs: the same bytes


def test_presorted_input_out_of_order_is_one_error_line(tmp_path, capsys):
    part, _ = _parts(tmp_path, 2)
    ordered = tmp_path / "ordered.rw"
    assert main(["sort", "--fields=sip", part, f"--output-path={ordered}"]) == 0
    argv = ["sort", "--presorted-input", "--fields=sip", str(ordered), part]
    assert main([*argv, f"--output-path={tmp_path / 'out.rw'}"]) == 1
    err = capsys.readouterr().err
    flows = next(read_batches(part, rows=10_000))
    keys = flows["sip"].tobytes()
    first = next(
        i for i in range(1, len(flows)) if keys[16 * i : 16 * i + 16] < keys[16 * i - 16 : 16 * i]
    )
    assert err == (
        f"silkwatch: error: sort: {part}: record {first + 1:,} is out of the --fields order; "
        "--presorted-input needs every input sorted by the same --fields and --reverse\n"
    )


def test_uniq_presorted_input_prints_what_it_prints_without(tmp_path, capsys):
    (part,) = _parts(tmp_path, 1)
    ordered = tmp_path / "ordered.rw"
    assert main(["sort", "--fields=sip", part, f"--output-path={ordered}"]) == 0
    argv = ["uniq", "--fields=sip", "--values=bytes,records", str(ordered)]
    outputs = []
    for extra in ([], ["--presorted-input"]):
        assert main([*argv, *extra]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == 1 + 11_784  # titles, sources
