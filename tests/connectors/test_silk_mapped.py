"""Plain SiLK files are decoded from mappings of the page cache, not copied out first:
the same batches and positions as reading, across mapping windows, and the same errors."""

from __future__ import annotations

import io

import numpy as np
import pytest

from silkwatch.connectors.silk import SilkWriter, read_batches
from silkwatch.connectors.silk import reader as silk_reader
from silkwatch.connectors.silk.exceptions import SilkTruncatedError
from silkwatch.connectors.silk.reader import SilkFile, SilkStream
from silkwatch.detectors.schema import make_batch


@pytest.fixture
def flows_file(tmp_path):
    rng = np.random.default_rng(5)
    n = 10_007
    batch = make_batch(
        stime_ms=1_434_500_000_000 + rng.integers(0, 10**7, n),
        bytes=rng.integers(1, 10**6, n),
        sip=[f"10.0.{i % 250}.{i % 200}" for i in range(n)],
    )
    path = tmp_path / "flows.rw"
    with SilkWriter(path) as writer:
        writer.write(batch)
    return path


def _read(path, rows):
    with open(path, "rb") as raw:
        silk = SilkFile(raw, str(path))
        return list(silk.iter_positioned(rows))


def test_windows_give_the_batches_and_positions_of_reading(flows_file, monkeypatch):
    size = SilkFile(io.BytesIO(flows_file.read_bytes()), "x").layout.rec_size
    monkeypatch.setattr(silk_reader, "_MAP_WINDOW", 1000 * size + 17)  # 3 chunks a window
    mapped = _read(flows_file, 333)
    monkeypatch.setattr(SilkStream, "_mappable", lambda self: None)
    copied = _read(flows_file, 333)
    assert len(mapped) == len(copied) == 31
    for (a, at_a), (b, at_b) in zip(mapped, copied, strict=True):
        assert a.tobytes() == b.tobytes() and at_a == at_b


def test_a_truncated_mapped_file_gives_its_records_then_the_error(flows_file):
    flows_file.write_bytes(flows_file.read_bytes()[:-5])
    got = []
    with pytest.raises(SilkTruncatedError, match="truncated record"):
        for batch in read_batches(flows_file, rows=4096):
            got.append(len(batch))
    assert sum(got) == 10_006


def test_streams_not_at_the_file_start_are_read(flows_file):
    raw = open(flows_file, "rb")  # noqa: SIM115 - closed below
    try:
        silk = SilkFile(raw, "x")
        assert silk._mappable() is not None
        raw.seek(3)  # the stream no longer sits where the header ended
        assert silk._mappable() is None
    finally:
        raw.close()
    assert SilkFile(io.BytesIO(flows_file.read_bytes()), "y")._mappable() is None


def test_records_used_in_place_are_read_not_mapped(flows_file, monkeypatch):
    """count's kernel reads the records themselves: they are copied by the read-ahead
    thread, where a mapping would be faulted in and unmapped in the caller's time."""
    counted = frozenset({"stime_ms", "elapsed_ms", "bytes", "packets"})
    decoded = np.concatenate(list(read_batches(flows_file, rows=4096, columns=counted)))

    def no_mapping(self):
        raise AssertionError("records read in place were mapped")

    monkeypatch.setattr(SilkStream, "_mappable", no_mapping)
    batches = list(read_batches(flows_file, rows=4096, columns=counted, in_place=True))
    assert [len(batch) for batch in batches] == [4096, 4096, 1815]
    in_place = np.concatenate(batches)
    for name in sorted(counted):
        assert in_place[name].tolist() == decoded[name].tolist(), name
