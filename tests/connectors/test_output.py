"""``-o PATH`` like a command-line tool: atomic for files, write-through for the rest."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from silkwatch.connectors.output import OutputError, open_output, open_text_output


def write(path, data: bytes = b"new") -> None:
    with open_output(path) as out:
        out.write(data)


def test_regular_file_is_replaced_atomically_with_the_umask_mode(tmp_path):
    target = tmp_path / "page.html"
    target.write_bytes(b"old")
    old = os.umask(0o027)
    try:
        write(target)
    finally:
        os.umask(old)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # 0666 & ~027, not mkstemp's 0600
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]  # no temp file left


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "page.html"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), open_output(target) as out:
        out.write(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]


def test_symlink_is_written_through_not_replaced(tmp_path):
    real = tmp_path / "real.html"
    real.write_bytes(b"old")
    link = tmp_path / "link.html"
    link.symlink_to(real)
    write(link)
    assert link.is_symlink() and real.read_bytes() == b"new"


def test_dev_null_stays_a_device():
    write("/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_fifo_is_written_through(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(Path(fifo).read_bytes()))
    reader.start()
    write(fifo, b"through the pipe")
    reader.join(timeout=10)
    assert got == [b"through the pipe"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no/such/folder/out.rw", "no/such/folder/out.rw: cannot write: no such folder"),
        ("/proc/version", "/proc/version: cannot write: "),
    ],
)
def test_unwritable_targets_are_one_line(tmp_path, monkeypatch, target, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError) as caught:
        write(target)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert caught.value.reason == "output_error"


def test_text_output_and_stdout(tmp_path, capsys):
    with open_text_output(tmp_path / "a.txt") as out:
        out.write("héllo\n")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    with open_text_output(None) as out:
        out.write("to stdout\n")
    assert capsys.readouterr().out == "to stdout\n"


def test_output_path_of_the_text_tables_is_one_line_too(tmp_path, capsys):
    from silkwatch.cli import main

    empty = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "silk"
    empty = empty / "silk-suite" / "data" / "empty.rwf"
    missing = tmp_path / "no" / "such" / "count.txt"
    assert main(["count", f"--output-path={missing}", str(empty)]) == 1
    assert capsys.readouterr().err == f"silkwatch: error: {missing}: cannot write: no such folder\n"
    written = tmp_path / "count.txt"
    assert main(["count", f"--output-path={written}", str(empty)]) == 0
    assert written.read_text().startswith("               Date|")


def test_demo_output_into_a_missing_folder_is_one_line(tmp_path, capsys):
    from silkwatch.cli import main

    missing = tmp_path / "no" / "day.rw"
    assert main(["demo", "--hosts", "20", "--output", str(missing)]) == 1
    assert capsys.readouterr().err.endswith(
        f"silkwatch: error: {missing}: cannot write: no such folder\n"
    )
