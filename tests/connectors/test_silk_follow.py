"""Repository walks and follow mode: appends as rwflowappend makes them, lossless restarts."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from silkwatch.connectors.silk import Compression, FileFormat, HeaderEntry, SilkWriter, read_batches
from silkwatch.connectors.silk.follow import iter_follow
from silkwatch.connectors.silk.repository import iter_repository, parse_hour_file
from silkwatch.detectors.schema import FlowBatch
from tests.connectors.test_silk_writer import canonical_flows

HOUR_15 = 1434553200000  # 2015-06-17 15:00 UTC


def hour_file(root: Path, type_name: str, prefix: str, sensor: str, hour: int) -> Path:
    path = root / type_name / "2015" / "06" / "17" / f"{prefix}-{sensor}_20150617.{hour:02d}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_hour(path: Path, flows: FlowBatch, **kwargs) -> None:
    with SilkWriter(path, entries=[HeaderEntry.packedfile(HOUR_15, 1, 3)], **kwargs) as writer:
        writer.write(flows)


def appended_block(path: Path, flows: FlowBatch) -> bytes:
    """The bytes rwflowappend would add to ``path`` for ``flows`` (same format, one block)."""
    whole = io.BytesIO(path.read_bytes())
    with SilkWriter(whole, append=True) as writer:
        writer.write(flows)
    return whole.getvalue()[path.stat().st_size :]


def follow(root: Path, checkpoint: Path, *, batches: int | None = None) -> list[FlowBatch]:
    """Run a follower until it has delivered ``batches`` batches (None: one scan), then stop it."""
    stop = threading.Event()
    got = []
    for batch in iter_follow(root, checkpoint, rows=1000, stop=stop, once=batches is None):
        got.append(batch)
        if batches is not None and len(got) == batches:
            stop.set()  # the follower saves this batch as consumed and returns
    return got


def test_follow_survives_restarts_and_growth_without_loss_or_repeats(tmp_path):
    root, checkpoint = tmp_path / "repo", tmp_path / "follow.json"
    flows = canonical_flows(6000, ipv6=True)
    out15 = hour_file(root, "out", "out", "S3", 15)
    write_hour(out15, flows[:3000], compression=Compression.ZLIB)  # blocks of 744 records

    first = follow(root, checkpoint, batches=2)  # stops inside the third block
    assert [len(b) for b in first] == [1000, 1000]
    saved = json.loads(checkpoint.read_text())["files"]
    assert list(saved) == ["out/2015/06/17/out-S3_20150617.15"]
    assert saved["out/2015/06/17/out-S3_20150617.15"][1] == 2000 - 2 * 744  # records into the block

    # rwflowappend adds a block, then is caught half-way through writing the next one
    with SilkWriter(out15, append=True) as writer:
        writer.write(flows[3000:4000])
    pending = appended_block(out15, flows[4000:4500])
    with open(out15, "ab") as stream:
        stream.write(pending[:100])
    # rwflowpack starts the next hour in another format, uncompressed
    in16 = hour_file(root, "in", "in", "S0", 16)
    with SilkWriter(in16, file_format=FileFormat.FT_RWGENERIC) as writer:
        writer.write(flows[4500:5000][~flows["ipv6"][4500:5000]])

    second = follow(root, checkpoint)
    with open(out15, "ab") as stream:
        stream.write(pending[100:])
    third = follow(root, checkpoint)
    fourth = follow(root, checkpoint)

    ipv4_tail = flows[4500:5000][~flows["ipv6"][4500:5000]]
    got = np.concatenate(first + second + third)
    expected = np.concatenate([flows[:4000], ipv4_tail, flows[4000:4500]])
    assert len(got) == len(expected) == 4500 + len(ipv4_tail)
    assert (got == expected).all()
    assert fourth == []


def test_a_half_written_header_is_waited_for(tmp_path):
    root, checkpoint = tmp_path / "repo", tmp_path / "follow.json"
    path = hour_file(root, "out", "out", "S3", 15)
    flows = canonical_flows(10, ipv6=False)
    buffer = io.BytesIO()
    with SilkWriter(buffer, entries=[HeaderEntry.packedfile(HOUR_15, 1, 3)]) as writer:
        writer.write(flows)
    path.write_bytes(buffer.getvalue()[:30])
    assert follow(root, checkpoint) == []
    path.write_bytes(buffer.getvalue())
    assert (np.concatenate(follow(root, checkpoint)) == flows).all()


def test_parse_hour_file_names():
    parsed = parse_hour_file(Path("repo/inweb/2015/06/17/iw-S12_20150617.15"))
    assert (parsed.hour_ms, parsed.type_name, parsed.sensor) == (HOUR_15, "inweb", 12)
    assert parse_hour_file(Path("repo/notes.txt")) is None
    assert parse_hour_file(Path("repo/out/out-S3_20151317.15")) is None  # month 13


@pytest.fixture
def repository(tmp_path) -> Path:
    """Six hour files: two sensors x (out 15:00, in 15:00, in 16:00), 10 flows each."""
    for index, (type_name, prefix, sensor, hour) in enumerate(
        (t, p, s, h)
        for t, p, h in (("out", "out", 15), ("in", "in", 15), ("in", "in", 16))
        for s in ("S0", "S3")
    ):
        flows = canonical_flows(10, ipv6=False, seed=index)
        write_hour(hour_file(tmp_path, type_name, prefix, sensor, hour), flows)
    (tmp_path / "silk.conf").write_text("# not an hour file\n")
    return tmp_path


@pytest.mark.parametrize(
    ("filters", "files"),
    [
        ({}, 6),
        ({"sensors": {3}}, 3),
        ({"types": {"in"}}, 4),
        ({"types": {"in"}, "sensors": {0}}, 2),
        ({"start_ms": HOUR_15 + 3_600_000}, 2),
        ({"start_ms": HOUR_15 + 1, "end_ms": HOUR_15 + 3_599_999}, 4),  # hours overlapping
        ({"end_ms": HOUR_15 - 1}, 0),
    ],
)
def test_repository_selection_by_path(repository, filters, files):
    assert len(list(iter_repository(repository, **filters))) == files
    assert sum(map(len, read_batches(repository, **filters))) == 10 * files


def test_repository_order_is_oldest_hour_first(repository):
    names = [f.path.name for f in iter_repository(repository)]
    assert names == [
        "in-S0_20150617.15",
        "in-S3_20150617.15",
        "out-S0_20150617.15",
        "out-S3_20150617.15",
        "in-S0_20150617.16",
        "in-S3_20150617.16",
    ]
