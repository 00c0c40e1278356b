"""The chunk driver every text format shares: lines → fields → columns → batches.

A format module turns its header into a :class:`Layout` (which source field
holds which column, how to split a line, how to convert the columns), then
hands its data lines to :func:`iter_batches`. Conversion runs on a whole chunk
of ``rows`` lines at once; only when a chunk fails is it converted again line
by line, so the bad line can be named, counted and skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from operator import itemgetter

import numpy as np

from connectors.flowtext.exceptions import FlowTextError
from connectors.flowtext.policy import ErrorPolicy, ReadSummary, handle_malformed
from detectors.schema import FlowBatch, empty_batch

#: one converted chunk: the flows and how many source records were not IP flows
Converted = tuple[FlowBatch, int]

#: named text columns of a chunk → flows
Converter = Callable[[dict[str, np.ndarray]], Converted]

#: what a failing conversion may raise on bad text
CONVERSION_ERRORS = (ValueError, KeyError, IndexError, OverflowError)

ICMP_PROTOCOLS = (1, 58)


@dataclass(frozen=True)
class Layout:
    """How one file's data lines become flows.

    :param width: fields per data line (from the header)
    :param columns: canonical column name → field index, only the columns used
    :param split: one line → its fields
    :param convert: named string columns of a chunk → (flows, non-IP record count)
    """

    width: int
    columns: dict[str, int]
    split: Callable[[str], list[str]]
    convert: Converter


def iter_batches(
    lines: Iterable[tuple[int, str]],
    layout: Layout,
    *,
    path: str,
    rows: int,
    summary: ReadSummary,
    on_error: ErrorPolicy,
) -> Iterator[FlowBatch]:
    """Numbered data lines → batches of at most ``rows`` flows."""
    names = list(layout.columns)
    pick = itemgetter(*layout.columns.values())
    chunk: list[tuple] = []
    numbers: list[int] = []
    for number, line in lines:
        summary.lines += 1
        fields = layout.split(line)
        if len(fields) != layout.width:
            if chunk:  # the lines before it first, so errors come out in line order
                yield from _split_rows(
                    _convert(chunk, numbers, names, layout, path, summary, on_error), rows
                )
                chunk, numbers = [], []
            detail = f"{len(fields)} fields, expected {layout.width}"
            handle_malformed(FlowTextError(path, number, detail), summary, on_error)
            continue
        picked = pick(fields)
        chunk.append(picked if len(names) > 1 else (picked,))
        numbers.append(number)
        if len(chunk) == rows:
            yield from _split_rows(
                _convert(chunk, numbers, names, layout, path, summary, on_error), rows
            )
            chunk, numbers = [], []
    if chunk:
        yield from _split_rows(
            _convert(chunk, numbers, names, layout, path, summary, on_error), rows
        )


def _convert(chunk, numbers, names, layout, path, summary, on_error) -> FlowBatch:
    """Convert a chunk at once; on failure line by line, reporting each bad line."""
    table = np.array(chunk, dtype=str)
    try:
        parts = [layout.convert(_named(table, names))]
        converted = len(table)
    except CONVERSION_ERRORS:
        parts = []
        for index, number in enumerate(numbers):
            try:
                parts.append(layout.convert(_named(table[index : index + 1], names)))
            except CONVERSION_ERRORS as exc:
                detail = str(exc) or type(exc).__name__
                handle_malformed(FlowTextError(path, number, detail), summary, on_error)
        converted = len(parts)
    non_ip = sum(count for _, count in parts)
    batch = np.concatenate([flows for flows, _ in parts]) if parts else empty_batch()
    summary.non_ip += non_ip
    summary.records += converted - non_ip
    summary.flows += len(batch)
    return batch


def _named(table: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    return {name: table[:, i] for i, name in enumerate(names)}


def _split_rows(batch: FlowBatch, rows: int) -> Iterator[FlowBatch]:
    """Keep batches within ``rows`` even when bidirectional records doubled them."""
    for start in range(0, len(batch), rows):
        yield batch[start : start + rows]


def split_csv(line: str) -> list[str]:
    """One comma-separated line → its fields (no quoting: these formats never quote)."""
    return line.rstrip("\r\n").split(",")


def csv_header(
    numbered: Iterator[tuple[int, str]],
    path: str,
    columns: Mapping[str, str],
    required: set[str],
    what: str,
) -> tuple[int, dict[str, int]] | None:
    """The first line's comma-separated titles → (fields per line, {column name: index}).

    None for an empty file; an error naming the missing columns otherwise.
    """
    first = next(numbered, None)
    if first is None:
        return None
    titles = [title.strip() for title in split_csv(first[1])]
    used = {columns[t]: i for i, t in enumerate(titles) if t in columns}
    missing = required - used.keys()
    if missing:
        raise FlowTextError(path, first[0], f"{what} header lacks {', '.join(sorted(missing))}")
    return len(titles), used


def with_reverse(
    forward: FlowBatch, packets: np.ndarray, bytes_: np.ndarray, flags: np.ndarray | None = None
) -> FlowBatch:
    """Add the responder → originator flow after each bidirectional record.

    Why two flows: every detector reasons on unidirectional SiLK-style flows
    (bytes out per host, bytes/packet per direction). A record with reverse
    traffic becomes its forward flow followed by a reverse flow with addresses
    and ports swapped and the reverse counters; both keep the record's start
    time and duration, exactly as softflowd splits a connection into two
    NetFlow records. Records with no reverse packets give no reverse flow.
    ICMP reverse flows get dPort 0: the reply's type/code is not recorded.
    """
    reverse = forward.copy()
    for a, b in (("sip", "dip"), ("sport", "dport")):
        reverse[a], reverse[b] = forward[b], forward[a]
    reverse["packets"] = packets
    reverse["bytes"] = bytes_
    reverse["flags"] = 0 if flags is None else flags
    reverse["init_flags"] = reverse["rest_flags"] = 0
    icmp = np.isin(forward["proto"], ICMP_PROTOCOLS)
    reverse["sport"][icmp] = 0
    reverse["dport"][icmp] = 0
    both = np.empty(2 * len(forward), dtype=forward.dtype)
    both[0::2] = forward
    both[1::2] = reverse
    keep = np.ones(len(both), dtype=bool)
    keep[1::2] = np.asarray(packets) > 0
    return both[keep]
