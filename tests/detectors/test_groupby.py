"""rwuniq/rwstats group-by: tiny exact cases, merge contract, SiLK 3.19.1's output."""

from __future__ import annotations

import ipaddress
import pickle
from pathlib import Path

import numpy as np
import pytest

from silkwatch.detectors import groupby
from silkwatch.detectors.groupby import (
    GroupByError,
    empty,
    merge,
    parse_fields,
    parse_values,
    result,
    top,
    update,
)
from silkwatch.detectors.schema import ip_strings, make_batch

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SILK = SHARED / "data" / "silk"
FCCX = SILK / "fccx" / "FT_RWIPV6ROUTING-v1-c1-L.dat"

ALL_VALUES = "records,bytes,packets,sIP-Distinct,dIP-Distinct,sTime-Earliest,eTime-Latest"


def table_rows(table: groupby.GroupTable) -> list[tuple]:
    """Each bin as (key..., value...) with IPs as text."""
    columns = []
    for name in table.fields:
        column = table.keys[name]
        if column.dtype.kind == "V":
            column = ip_strings(column, groupby.is_ipv6(column))
        else:
            column = column.tolist()
        columns.append(column)
    columns += [table.columns[value].tolist() for value in table.values]
    return list(zip(*columns, strict=True))


SMALL = make_batch(
    sip=["10.0.0.1", "10.0.0.2", "10.0.0.1", "2001:db8::1", "10.0.0.1"],
    dip=["192.0.2.1", "192.0.2.1", "192.0.2.2", "2001:db8::2", "192.0.2.1"],
    sport=[1000, 1001, 1002, 1003, 1004],
    dport=[53, 53, 80, 443, 53],
    proto=[17, 17, 6, 6, 17],
    packets=[1, 2, 3, 4, 5],
    bytes=[100, 200, 300, 400, 500],
    stime_ms=[1_000, 2_500, 3_999, 10_000, 500],
    elapsed_ms=[0, 1_000, 2_001, 500, 100],
    flags=[0, 0, 2, 18, 0],
    sensor=[3, 3, 4, 3, 3],
    flowtype=[1, 1, 1, 0, 1],
)


@pytest.mark.parametrize(
    ("fields", "values", "expected"),
    [
        ("protocol", "records", [(6, 2), (17, 3)]),
        ("protocol", "bytes,packets", [(6, 700, 7), (17, 800, 8)]),
        ("dport", "records,sIP-Distinct", [(53, 3, 2), (80, 1, 1), (443, 1, 1)]),
        (
            "sIP",
            "records,dIP-Distinct,bytes",
            [("10.0.0.1", 3, 2, 900), ("10.0.0.2", 1, 1, 200), ("2001:db8::1", 1, 1, 400)],
        ),
        (
            "sIP,dIP",
            "records",
            [
                ("10.0.0.1", "192.0.2.1", 2),
                ("10.0.0.1", "192.0.2.2", 1),
                ("10.0.0.2", "192.0.2.1", 1),
                ("2001:db8::1", "2001:db8::2", 1),
            ],
        ),
        ("protocol", "sTime-Earliest,eTime-Latest", [(6, 3_999, 10_500), (17, 500, 3_500)]),
        ("sTime", "records", [(0, 1), (1, 1), (2, 1), (3, 1), (10, 1)]),  # whole seconds
        ("eTime", "records", [(0, 1), (1, 1), (3, 1), (6, 1), (10, 1)]),
        ("duration", "records", [(0, 3), (1, 1), (2, 1)]),
        ("flags,sensor", "records", [(0, 3, 3), (2, 4, 1), (18, 3, 1)]),
        ("type,class", "records", [(0, 0, 1), (1, 0, 4)]),
        ("protocol", "distinct:dPort,distinct:sensor", [(6, 2, 2), (17, 1, 1)]),
    ],
)
def test_small_batch(fields, values, expected):
    assert table_rows(result(update(empty(fields, values), SMALL))) == expected


def test_ipv4_sorts_before_ipv6_like_silk():
    batch = make_batch(sip=["2001:db8::1", "255.255.255.255", "0.0.0.1"])
    assert [row[0] for row in table_rows(result(update(empty("sIP"), batch)))] == [
        "0.0.0.1",
        "255.255.255.255",
        "2001:db8::1",
    ]


def test_sums_stay_exact_beyond_float_precision():
    big = 2**62 + 1
    table = result(update(empty("protocol", "bytes"), make_batch(proto=[6, 6], bytes=[big, 3])))
    assert table.columns["bytes"].tolist() == [big + 3]


def test_wide_keys_fall_back_to_several_words():
    # sIP (v6) + dIP (v6) + bytes need more than 64 bits once packed
    batch = make_batch(
        sip=["2001:db8::1", "2001:db9::1", "2001:db8::1"],
        dip=["::1", "::2", "::1"],
        bytes=[2**40, 1, 2**40],
    )
    assert table_rows(result(update(empty("sIP,dIP,bytes"), batch))) == [
        ("2001:db8::1", "::1", 2**40, 2),
        ("2001:db9::1", "::2", 1, 1),
    ]


@pytest.mark.parametrize(
    "addresses",
    [
        lambda rng, n: [f"10.0.{a}.{b}" for a, b in rng.integers(0, 256, (n, 2))],  # bincount
        lambda rng, n: [f"{a}.{b}.0.1" for a, b in rng.integers(1, 224, (n, 2))],  # one sort
        lambda rng, n: [f"{a:x}::{b:x}" for a, b in rng.integers(1, 65535, (n, 2))],  # lexsort
    ],
)
def test_grouping_paths_agree_with_python(addresses):
    rng = np.random.default_rng(11)
    texts = addresses(rng, 3000)
    batch = make_batch(sip=texts, dport=rng.integers(0, 3, 3000), bytes=rng.integers(0, 99, 3000))
    expected: dict[tuple, list[int]] = {}
    for text, port, size in zip(
        texts, batch["dport"].tolist(), batch["bytes"].tolist(), strict=True
    ):
        total = expected.setdefault((ipaddress.ip_address(text), port), [0, 0])
        total[0] += 1
        total[1] += size
    rows = table_rows(result(update(empty("sIP,dPort", "records,bytes"), batch)))
    assert [(ipaddress.ip_address(ip), port, r, b) for ip, port, r, b in rows] == [
        (ip, port, r, b)
        for (ip, port), (r, b) in sorted(expected.items(), key=lambda kv: (kv[0][0].version, kv[0]))
    ]


def test_empty_batch_and_empty_state():
    state = update(empty("sIP", ALL_VALUES), make_batch(sip=[]))
    assert len(state) == 0 and len(result(state).keys["sip"]) == 0
    assert merge(empty("sIP"), empty("sIP")).records.tolist() == []


def test_batch_is_not_modified_and_state_pickles():
    before = SMALL.copy()
    state = update(empty("sIP,dPort", ALL_VALUES), SMALL)
    assert (before == SMALL).all()  # field by field: padding bytes are not data
    assert table_rows(result(pickle.loads(pickle.dumps(state)))) == table_rows(result(state))


def test_split_equals_whole_and_merge_order_irrelevant():
    rng = np.random.default_rng(3)
    n = 20_000
    batch = make_batch(
        sip=np.array([f"10.0.{a}.{b}" for a, b in rng.integers(0, 40, (n, 2))]).tolist(),
        dip=np.array([f"192.0.2.{a}" for a in rng.integers(0, 200, n)]).tolist(),
        dport=rng.integers(0, 70, n),
        bytes=rng.integers(0, 10**6, n),
        packets=rng.integers(1, 1000, n),
        stime_ms=rng.integers(0, 10**9, n),
        elapsed_ms=rng.integers(0, 10**6, n),
    )
    fresh = empty("dPort", ALL_VALUES)
    whole = update(fresh, batch)
    parts = [update(fresh, batch[i : i + 3001]) for i in range(0, n, 3001)]
    sequential = fresh
    for part in parts:
        sequential = merge(sequential, part)
    for combined in (merge(*parts), merge(*parts[::-1]), sequential):
        assert table_rows(result(combined)) == table_rows(result(whole))
        assert result(combined).totals == result(whole).totals
    assert result(whole).totals["distinct:sip"] == len(set(ip_strings(batch["sip"], batch["ipv6"])))


def test_merge_refuses_different_specs():
    with pytest.raises(GroupByError, match="cannot merge"):
        merge(update(empty("sIP"), SMALL), update(empty("dIP"), SMALL))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("sIP,Proto", ("sip", "protocol")), (["dPort", "nhIP"], ("dport", "nhip"))],
)
def test_parse_fields(text, expected):
    assert parse_fields(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("records",)),
        ("Bytes,flows", ("bytes", "records")),
        ("dip-distinct,distinct:sPort", ("distinct:dip", "distinct:sport")),
    ],
)
def test_parse_values(text, expected):
    assert parse_values(text) == expected


@pytest.mark.parametrize(
    ("fields", "values"),
    [("sIP,bogus", "records"), ("", "records"), ("sIP,sip", "records"), ("sIP", "bytes,median")],
)
def test_bad_specs_are_user_errors(fields, values):
    with pytest.raises(GroupByError) as info:
        empty(fields, values)
    assert info.value.reason == "bad_group_spec"


DPORTS = make_batch(dport=[53] * 5 + [80] * 3 + [443] * 3 + [22], bytes=[1] * 12)


@pytest.mark.parametrize(
    ("limits", "expected_keys", "threshold"),
    [
        ({"count": 1}, [53], None),
        ({"count": 3}, [53, 80, 443], None),  # 80/443 tie: key order
        ({"count": 9}, [53, 80, 443, 22], None),
        ({"count": 2, "bottom": True}, [22, 80], None),
        ({"threshold": 3}, [53, 80, 443], 3),
        ({"threshold": 3, "bottom": True}, [22, 80, 443], 3),
        ({"percentage": 25}, [53, 80, 443], 3),  # 25 % of 12 = 3
        ({"percentage": 30}, [53, 80, 443], 3),  # 3.6 truncates to 3, as in SiLK
        ({"percentage": 40}, [53], 4),
        ({}, [53, 80, 443, 22], None),
    ],
)
def test_top(limits, expected_keys, threshold):
    ranked = top(result(update(empty("dPort", "records,bytes"), DPORTS)), **limits)
    assert ranked.table.keys["dport"].tolist() == expected_keys
    assert ranked.threshold == threshold
    assert ranked.bins == 4 and ranked.total == 12
    np.testing.assert_allclose(
        ranked.cumulative_percent, np.cumsum(ranked.table.columns["records"]) / 12 * 100
    )


def test_top_rejects_two_limits_and_unknown_value():
    table = result(update(empty("dPort", "records"), DPORTS))
    with pytest.raises(GroupByError):
        top(table, count=1, threshold=2)
    with pytest.raises(GroupByError):
        top(table, "bytes", count=1)


# --- SiLK's own rwuniq / rwstats output on the FCCX sample ------------------


def read_golden(name: str) -> tuple[list[str], list[list[str]]]:
    """Header lines (rwstats INPUT/OUTPUT) and the table cells of a SiLK text output."""
    lines = (SILK / "golden" / name).read_text().splitlines()
    header = [line for line in lines if line.startswith(("INPUT", "OUTPUT"))]
    table = [line for line in lines if not line.startswith(("INPUT", "OUTPUT"))]
    return header, [[cell.strip() for cell in line.split("|")[:-1]] for line in table[1:]]


def seconds_text(ms: int) -> str:
    return str(np.datetime64(ms // 1000, "s")).replace("-", "/")


@pytest.fixture(scope="module")
def fccx():
    from silkwatch.connectors.silk import read_batches

    return np.concatenate(list(read_batches(FCCX)))


def rendered(table: groupby.GroupTable) -> list[list[str]]:
    out = []
    for row in table_rows(table):
        cells = [str(cell) for cell in row[: len(table.fields)]]
        for value, cell in zip(table.values, row[len(table.fields) :], strict=True):
            cells.append(
                seconds_text(cell) if value.endswith(("earliest", "latest")) else str(cell)
            )
        out.append(cells)
    return out


@pytest.mark.parametrize(
    ("golden", "fields", "values"),
    [
        ("fccx-rwuniq-proto.txt", "protocol", ALL_VALUES),
        ("fccx-rwuniq-sip.txt", "sIP", "records,bytes,packets,dIP-Distinct"),
    ],
)
def test_matches_rwuniq(fccx, golden, fields, values):
    _, expected = read_golden(golden)
    assert rendered(result(update(empty(fields, values), fccx))) == expected
    # the same batch by batch, merged once
    parts = [
        update(empty(fields, values), fccx[i : i + 30_000]) for i in range(0, len(fccx), 30_000)
    ]
    assert rendered(result(merge(*parts))) == expected


RWSTATS = [
    ("fccx-rwstats-sip-bytes-top10.txt", "sIP", "bytes", {"count": 10}),
    ("fccx-rwstats-dport-records-top10.txt", "dPort", "records", {"count": 10}),
    ("fccx-rwstats-dip-packets-bottom5.txt", "dIP", "packets", {"count": 5, "bottom": True}),
    ("fccx-rwstats-proto-pct1.txt", "protocol", "records", {"percentage": 1}),
]


@pytest.mark.parametrize(("golden", "fields", "values", "limits"), RWSTATS)
def test_matches_rwstats(fccx, golden, fields, values, limits):
    header, expected = read_golden(golden)
    table = result(update(empty(fields, values), fccx))
    ranked = top(table, **limits)
    got = [
        [*row, f"{pct:.6f}", f"{cumul:.6f}"]
        for row, pct, cumul in zip(
            rendered(ranked.table), ranked.percent, ranked.cumulative_percent, strict=True
        )
    ]
    # values, percentages and running sums row by row
    assert [row[1:] for row in got] == [row[1:] for row in expected]
    # keys: ties may be in any order, so compare the key set of each value;
    # at the cut-off value any bin of the whole table with that value is fine
    by_value: dict[str, set[str]] = {}
    for row in expected:
        by_value.setdefault(row[1], set()).add(row[0])
    last = expected[-1][1]
    everyone_at_last = {row[0] for row in rendered(table) if row[1] == last}
    for value, keys in by_value.items():
        ours = {row[0] for row in got if row[1] == value}
        assert ours <= everyone_at_last if value == last else ours == keys
    title = groupby.value_title(ranked.value)
    assert header[0] == (
        f"INPUT: {len(fccx)} Records for {ranked.bins} Bins and {ranked.total} Total {title}"
    )
    if ranked.threshold is not None:
        assert f"== {ranked.threshold})" in header[1]
