"""rwcount load schemes: hand-computed tiny cases and SiLK 3.19.1's own output."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from silkwatch.detectors import timebins
from silkwatch.detectors.schema import make_batch
from silkwatch.detectors.timebins import (
    LOAD_SCHEMES,
    BinVolumes,
    LoadSchemeError,
    bin_volumes,
    empty_bins,
    fill_span,
    merge_bins,
    parse_load_scheme,
)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SILK = SHARED / "data" / "silk"
FCCX = SILK / "fccx" / "FT_RWIPV6ROUTING-v1-c1-L.dat"

# A flow over three 100 ms bins: 50..269 ms, i.e. 220 ms end-inclusive:
# 50 ms in bin 0, 100 ms in bin 100, 70 ms in bin 200.
SPANNING = {"stime_ms": [50], "elapsed_ms": [219], "bytes": [2200], "packets": [22]}
THIRD = 1 / 3


def _rows(volumes: BinVolumes) -> list[tuple[int, float, float, float]]:
    return list(
        zip(
            volumes.bin_start_ms.tolist(),
            volumes.records.tolist(),
            volumes.bytes.tolist(),
            volumes.packets.tolist(),
            strict=True,
        )
    )


@pytest.mark.parametrize(
    ("scheme", "expected"),
    [
        (
            "time-proportional",
            [(0, 50 / 220, 500, 5), (100, 100 / 220, 1000, 10), (200, 70 / 220, 700, 7)],
        ),
        ("bin-uniform", [(b, THIRD, 2200 * THIRD, 22 * THIRD) for b in (0, 100, 200)]),
        ("start-spike", [(0, 1, 2200, 22)]),
        ("end-spike", [(200, 1, 2200, 22)]),  # eTime 269
        ("middle-spike", [(100, 1, 2200, 22)]),  # 50 + 219 // 2 = 159
        ("maximum-volume", [(b, 1, 2200, 22) for b in (0, 100, 200)]),
        ("minimum-volume", [(b, 1, 0, 0) for b in (0, 100, 200)]),
    ],
)
def test_flow_spanning_three_bins(scheme, expected):
    got = _rows(bin_volumes(make_batch(**SPANNING), bin_ms=100, scheme=scheme))
    assert [b for b, *_ in got] == [b for b, *_ in expected]
    np.testing.assert_allclose([v for _, *v in got], [v for _, *v in expected], rtol=1e-12)


@pytest.mark.parametrize("scheme", list(LOAD_SCHEMES))
@pytest.mark.parametrize(
    ("flow", "expected"),
    [
        # inside one bin: every scheme adds one record and the full volume
        ({"stime_ms": [110], "elapsed_ms": [20], "bytes": [30], "packets": [3]}, [(100, 1, 30, 3)]),
        # zero duration exactly on a bin boundary: belongs to the bin it starts
        ({"stime_ms": [300], "elapsed_ms": [0], "bytes": [40], "packets": [4]}, [(300, 1, 40, 4)]),
    ],
)
def test_flow_inside_one_bin(scheme, flow, expected):
    assert _rows(bin_volumes(make_batch(**flow), bin_ms=100, scheme=scheme)) == expected


def test_end_is_inclusive_for_time_proportional():
    # 150..200 ms is 51 ms: 50 in bin 100 and the very last millisecond in bin 200
    flow = make_batch(stime_ms=[150], elapsed_ms=[50], bytes=[5100], packets=[51])
    got = _rows(bin_volumes(flow, bin_ms=100))
    np.testing.assert_allclose(got, [(100, 50 / 51, 5000, 50), (200, 1 / 51, 100, 1)])


def test_groups_are_binned_apart_and_sorted():
    batch = make_batch(stime_ms=[0, 5, 150, 20], bytes=[1, 2, 3, 4], proto=[17, 6, 6, 17])
    got = bin_volumes(batch, bin_ms=100, group=batch["proto"])
    assert got.group.tolist() == [6, 6, 17]
    assert got.bin_start_ms.tolist() == [0, 100, 0]
    assert got.records.tolist() == [1, 1, 2]
    assert got.bytes.tolist() == [2, 3, 5]


def test_empty_batch_and_empty_merge():
    assert bin_volumes(make_batch(stime_ms=[]), bin_ms=1000) == empty_bins()
    one = bin_volumes(make_batch(stime_ms=[1], bytes=[2]), bin_ms=10)
    assert merge_bins(empty_bins(), one) == one == merge_bins(one, empty_bins())


def test_negative_times_floor_to_earlier_bin():
    got = bin_volumes(make_batch(stime_ms=[-1], bytes=[9]), bin_ms=100, scheme=1)
    assert got.bin_start_ms.tolist() == [-100]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("time-proportional", 4),
        ("4", 4),
        ("0", 0),
        ("Bin-Uniform", 0),
        ("max", 5),
        ("end", 2),
        (6, 6),
    ],
)
def test_parse_load_scheme(text, expected):
    assert parse_load_scheme(text) == expected


@pytest.mark.parametrize("text", ["7", "m", "", "spiky"])
def test_parse_load_scheme_rejects(text):
    with pytest.raises(LoadSchemeError, match="load scheme") as info:
        parse_load_scheme(text)
    assert info.value.reason == "bad_load_scheme"


def test_fill_span_trims_byteless_edges_and_fills_gaps():
    # minimum-volume gives the spanning flow's bins a record but no bytes, so
    # they fall outside the printed span
    batch = make_batch(stime_ms=[50, 420], elapsed_ms=[219, 0], bytes=[2200, 7], packets=[22, 1])
    volumes = bin_volumes(batch, bin_ms=100, scheme="minimum-volume")
    assert _rows(fill_span(volumes, bin_ms=100)) == [(400, 1, 7, 1)]
    volumes = bin_volumes(batch, bin_ms=100, scheme="start-spike")
    assert _rows(fill_span(volumes, bin_ms=100)) == [
        (0, 1, 2200, 22),
        (100, 0, 0, 0),
        (200, 0, 0, 0),
        (300, 0, 0, 0),
        (400, 1, 7, 1),
    ]
    assert len(fill_span(volumes, bin_ms=100, skip_zeroes=True)) == 2


def test_many_pieces_are_binned_in_parts(monkeypatch):
    batch = make_batch(stime_ms=[0, 5, 10, 15], elapsed_ms=[999] * 4, bytes=[1000] * 4)
    whole = bin_volumes(batch, bin_ms=10, scheme="bin-uniform")
    monkeypatch.setattr(timebins, "DENSE_CELLS", 0)  # list pieces instead of a window
    monkeypatch.setattr(timebins, "MAX_PIECES", 150)  # 4 flows x ~100 pieces: split
    parts = bin_volumes(batch, bin_ms=10, scheme="bin-uniform")
    assert parts.bin_start_ms.tolist() == whole.bin_start_ms.tolist() == list(range(0, 1020, 10))
    np.testing.assert_allclose(parts.bytes, whole.bytes, rtol=1e-15)
    assert (whole.records.sum(), whole.bytes.sum()) == pytest.approx((4, 4000))


# --- rwcount's arithmetic, double for double --------------------------------


def rwcount_reference(flows, origin, size, scheme):
    """rwcount.c's startAdd ... minimumAdd, transcribed one flow at a time (Python floats
    are C doubles): bin → [records, bytes, packets], each bin summed in input order."""
    bins = {}

    def add(b, records, volume, packets):
        cell = bins.setdefault(b, [0.0, 0.0, 0.0])
        cell[0] += records
        cell[1] += volume
        cell[2] += packets

    for start, elapsed, volume, packets in flows:
        s = start - origin
        e = s + elapsed
        if scheme in (1, 2, 3):
            t = {1: s, 2: e, 3: s + elapsed // 2}[scheme]
            add(t // size, 1.0, float(volume), float(packets))
            continue
        first, last = s // size, e // size
        if first == last:
            add(first, 1.0, float(volume), float(packets))
        elif scheme == 0:  # meanAdd
            share = 1.0 / (float(last - first) + 1.0)
            for b in range(first, last + 1):
                add(b, share, float(volume) * share, float(packets) * share)
        elif scheme == 4:  # durationAdd
            share = float(size) / float(1 + e - s)
            whole_bytes, whole_packets = float(volume) * share, float(packets) * share
            ratio = float(first) + 1.0 - (float(s) / float(size))
            add(first, ratio * share, ratio * whole_bytes, ratio * whole_packets)
            ratio = (float(e + 1) / float(size)) - float(last)
            add(last, ratio * share, ratio * whole_bytes, ratio * whole_packets)
            for b in range(first + 1, last):
                add(b, share, whole_bytes, whole_packets)
        else:
            for b in range(first, last + 1):
                add(
                    b, 1.0, float(volume) if scheme == 5 else 0.0, (packets if scheme == 5 else 0.0)
                )
    return {origin + b * size: tuple(cell) for b, cell in sorted(bins.items())}


def _random_flows(seed, n, bin_ms=30_000):
    """Flows over 240 bins lasting 0 to 60 bins, some on bin edges."""
    rng = np.random.default_rng(seed)
    return make_batch(
        stime_ms=1_434_500_000_000 + rng.integers(0, 240 * bin_ms, n),
        elapsed_ms=rng.choice([0, 1, bin_ms - 1, bin_ms, 2 * bin_ms + 1, 60 * bin_ms], n),
        bytes=rng.integers(1, 10**10, n),
        packets=rng.integers(1, 10**6, n),
        sensor=rng.integers(0, 3, n),
    )


def _as_dict(volumes):
    cells = zip(
        volumes.records.tolist(), volumes.bytes.tolist(), volumes.packets.tolist(), strict=True
    )
    return dict(zip(volumes.bin_start_ms.tolist(), cells, strict=True))


def _stored_32_bit(batch):
    """The four columns with 32-bit counters, as most SiLK formats store them (``silkwatch
    count`` hands the kernel such views of the records)."""
    names = ("stime_ms", "elapsed_ms", "bytes", "packets")
    out = np.zeros(len(batch), list(zip(names, ("<i8", "<u4", "<u4", "<u4"), strict=True)))
    for name in names:
        out[name] = batch[name] % 2**32 if name in ("bytes", "packets") else batch[name]
    return out


@pytest.mark.parametrize("scheme", range(7))
@pytest.mark.parametrize("bin_ms", [30_000, 7])
@pytest.mark.parametrize("counters", ["64-bit", "32-bit"])
def test_counter_holds_rwcounts_doubles(scheme, bin_ms, counters):
    batch = _random_flows(scheme, 600, bin_ms)
    if counters == "32-bit":
        batch = _stored_32_bit(batch)
        assert timebins._FlowColumns.of(batch).bytes.dtype == np.uint32  # read in place
    origin = 1_434_326_400_000  # two days before the day of the flows, as rwcount
    columns = ("stime_ms", "elapsed_ms", "bytes", "packets")
    flows = zip(*(batch[n].tolist() for n in columns), strict=True)
    expected = rwcount_reference(flows, origin, bin_ms, scheme)
    counter = timebins.VolumeCounter(bin_ms=bin_ms, scheme=scheme, origin_ms=origin)
    for start in range(0, len(batch), 97):  # the window grows batch after batch
        counter.update(batch[start : start + 97])
    assert _as_dict(counter.result()) == expected  # exactly: the same doubles
    (one_batch,) = timebins.bin_volumes_by(
        batch, bin_ms=bin_ms, scheme=scheme, groups=[None], origin_ms=origin
    )
    assert _as_dict(one_batch) == expected


@pytest.mark.parametrize("scheme", range(7))
def test_listed_pieces_sum_to_the_windows_doubles(monkeypatch, scheme):
    batch = _random_flows(10 + scheme, 500)
    groups = [None, batch["sensor"]]
    window = timebins.bin_volumes_by(batch, bin_ms=60_000, scheme=scheme, groups=groups)
    monkeypatch.setattr(timebins, "DENSE_CELLS", 0)
    pieces = timebins.bin_volumes_by(batch, bin_ms=60_000, scheme=scheme, groups=groups)
    assert pieces == window
    assert window[1].group.tolist() == sorted(window[1].group.tolist())


def test_counter_keeps_a_far_record_apart():
    import tracemalloc

    counter = timebins.VolumeCounter(bin_ms=1, scheme="time-proportional", origin_ms=0)
    tracemalloc.start()
    counter.update(make_batch(stime_ms=[5, 9], elapsed_ms=[2, 0], bytes=[30, 7]))
    counter.update(make_batch(stime_ms=[10**13], bytes=[4]))  # 300 years ahead, 1 ms bins
    counter.update(make_batch(stime_ms=[6], bytes=[1]))
    got = counter.result()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10 * 2**20  # not a window of 10**13 bins
    assert got.bin_start_ms.tolist() == [5, 6, 7, 9, 10**13]
    assert got.bytes.tolist() == [10.0, 11.0, 10.0, 7.0, 4.0]
    assert got.records.tolist() == pytest.approx([1 / 3, 1 + 1 / 3, 1 / 3, 1, 1])


def test_kernel_refuses_mismatched_buffers():
    from silkwatch.detectors import _timebins

    batch = make_batch(stime_ms=[0, 1])
    columns = timebins._FlowColumns.of(batch)
    with pytest.raises(ValueError, match="groups \\* nbins \\* 3"):
        _timebins.accumulate(*columns, 0, 10, 4, None, 0, 1, np.zeros(4))
    window = np.zeros((1, 3, 3))  # bins 0-2 of 1 ms
    assert _timebins.accumulate(*columns, 0, 1, 4, None, 0, 3, window) == 2
    long = timebins._FlowColumns.of(make_batch(stime_ms=[1, 2], elapsed_ms=[0, 5], bytes=[7, 9]))
    # the flow reaching past bin 2 stops the adding, and adds no share at all
    assert _timebins.accumulate(*long, 0, 1, 4, None, 0, 3, window) == 1
    assert window[0].tolist() == [[1, 0, 0], [2, 7, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="1-D columns of one length"):
        _timebins.span(columns.start[:1], *columns[1:], 0, 10, 4)
    with pytest.raises(ValueError, match="both uint32 or both uint64"):
        _timebins.span(*columns[:3], columns.packets.astype(np.uint32), 0, 10, 4)


def test_counters_of_mixed_or_foreign_types_are_read_as_uint64():
    batch = np.zeros(
        2, [("stime_ms", "<i8"), ("elapsed_ms", "<u4"), ("bytes", "<u4"), ("packets", ">u8")]
    )
    batch["bytes"], batch["packets"] = [7, 2**32 - 1], [1, 2**40]
    columns = timebins._FlowColumns.of(batch)
    assert (columns.bytes.dtype, columns.packets.dtype) == (np.uint64, np.uint64)
    assert columns.bytes.tolist() == [7, 2**32 - 1] and columns.packets.tolist() == [1, 2**40]
    volumes = bin_volumes(batch, bin_ms=10, scheme="start-spike")
    assert volumes.bytes.tolist() == [7.0 + 2**32 - 1] and volumes.packets.tolist() == [1 + 2**40]


def test_state_pickles():
    volumes = bin_volumes(make_batch(**SPANNING), bin_ms=100)
    assert pickle.loads(pickle.dumps(volumes)) == volumes


def test_split_equals_whole_random():
    rng = np.random.default_rng(7)
    n = 5000
    batch = make_batch(
        stime_ms=rng.integers(0, 10_000_000, n),
        elapsed_ms=rng.integers(0, 2_000_000, n),
        bytes=rng.integers(0, 10**9, n),
        packets=rng.integers(1, 10**6, n),
        sensor=rng.integers(0, 3, n),
    )
    for scheme in LOAD_SCHEMES:
        whole = bin_volumes(batch, bin_ms=60_000, scheme=scheme, group=batch["sensor"])
        parts = empty_bins()
        for start in range(0, n, 777):
            part = batch[start : start + 777]
            parts = merge_bins(
                parts, bin_volumes(part, bin_ms=60_000, scheme=scheme, group=part["sensor"])
            )
        assert parts.group.tolist() == whole.group.tolist()
        assert parts.bin_start_ms.tolist() == whole.bin_start_ms.tolist()
        for name in ("records", "bytes", "packets"):
            np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), rtol=1e-12)


# --- SiLK's own rwcount output on the FCCX sample --------------------------

GOLDEN_COUNTS = [
    (300, "time-proportional", "fccx-rwcount-300-timeprop.txt"),
    (300, "bin-uniform", "fccx-rwcount-300-bin-uniform.txt"),
    (300, "start-spike", "fccx-rwcount-300-start-spike.txt"),
    (300, "end-spike", "fccx-rwcount-300-end-spike.txt"),
    (300, "middle-spike", "fccx-rwcount-300-middle-spike.txt"),
    (300, "maximum-volume", "fccx-rwcount-300-maximum-volume.txt"),
    (300, "minimum-volume", "fccx-rwcount-300-minimum-volume.txt"),
    (3600, "time-proportional", "fccx-rwcount-3600-timeprop.txt"),
]


def read_golden_count(name: str) -> list[tuple[str, str, str, str]]:
    """rwcount text → (date, records, bytes, packets) strings per row."""
    lines = (SILK / "golden" / name).read_text().splitlines()[1:]
    return [tuple(cell.strip() for cell in line.split("|")[:4]) for line in lines]


def as_rwcount_rows(volumes: BinVolumes) -> list[tuple[str, str, str, str]]:
    dates = np.datetime_as_string(volumes.bin_start_ms.astype("datetime64[ms]"), unit="s")
    return [
        (str(date).replace("-", "/"), f"{r:.2f}", f"{b:.2f}", f"{p:.2f}")
        for date, r, b, p in zip(
            dates, volumes.records, volumes.bytes, volumes.packets, strict=True
        )
    ]


@pytest.fixture(scope="module")
def fccx():
    from silkwatch.connectors.silk import read_batches

    return np.concatenate(list(read_batches(FCCX)))


@pytest.mark.parametrize(("bin_s", "scheme", "golden"), GOLDEN_COUNTS)
def test_matches_rwcount(fccx, bin_s, scheme, golden):
    expected = read_golden_count(golden)
    volumes = fill_span(bin_volumes(fccx, bin_ms=bin_s * 1000, scheme=scheme), bin_ms=bin_s * 1000)
    assert as_rwcount_rows(volumes) == expected


@pytest.mark.parametrize(("bin_s", "scheme", "golden"), GOLDEN_COUNTS)
def test_matches_rwcount_batch_by_batch(fccx, bin_s, scheme, golden):
    merged = empty_bins()
    for start in range(0, len(fccx), 20_011):
        merged = merge_bins(
            merged, bin_volumes(fccx[start : start + 20_011], bin_ms=bin_s * 1000, scheme=scheme)
        )
    assert as_rwcount_rows(fill_span(merged, bin_ms=bin_s * 1000)) == read_golden_count(golden)
