"""The chunk driver every text format shares: lines → columns → batches.

A format module turns its header into a :class:`Layout` (separator, which
field holds which column, how to convert the columns), then hands its data
lines to :func:`iter_batches`. A chunk of ``rows`` lines is split in one
``str.split`` over the joined chunk, each column is a slice of that list, and
the converters parse whole columns in C; only when a chunk fails is it
converted again in halves down to the bad lines, so each can be named,
counted and skipped. Errors are reported in line order, so the strict policy stops at the
first bad line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from silkwatch.connectors.flowtext.exceptions import FlowTextError
from silkwatch.connectors.flowtext.policy import ErrorPolicy, ReadSummary, handle_malformed
from silkwatch.detectors.schema import FlowBatch, empty_batch

#: one converted chunk: the flows and how many source records were not IP flows
Converted = tuple[FlowBatch, int]

#: named text columns of a chunk (one string per line) → flows
Converter = Callable[[dict[str, list[str]]], Converted]

#: what a failing conversion may raise on bad text
CONVERSION_ERRORS = (ValueError, KeyError, IndexError, OverflowError)

ICMP_PROTOCOLS = (1, 58)


def trim_newline(line: str) -> str:
    """The line without its end-of-line characters."""
    return line.rstrip("\r\n")


@dataclass(frozen=True)
class Layout:
    """How one file's data lines become flows.

    :param width: fields per data line (from the header)
    :param columns: canonical column name → field index, only the columns used
    :param separator: the field separator
    :param convert: named string columns of a chunk → (flows, non-IP record count)
    :param trim: one line → the text to split (e.g. without a trailing separator)
    """

    width: int
    columns: dict[str, int]
    separator: str
    convert: Converter
    trim: Callable[[str], str] = trim_newline


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
    chunk: list[str] = []
    numbers: list[int] = []
    for number, line in lines:
        chunk.append(line)
        numbers.append(number)
        if len(chunk) == rows:
            yield from _split_rows(_convert(chunk, numbers, layout, path, summary, on_error), rows)
            chunk, numbers = [], []
    if chunk:
        yield from _split_rows(_convert(chunk, numbers, layout, path, summary, on_error), rows)


def _columns(texts: list[str], layout: Layout) -> dict[str, list[str]]:
    """Lines that all have ``width`` fields → one list of strings per used column."""
    fields = layout.separator.join(texts).split(layout.separator)
    return {name: fields[index :: layout.width] for name, index in layout.columns.items()}


def _convert(
    chunk: list[str],
    numbers: list[int],
    layout: Layout,
    path: str,
    summary: ReadSummary,
    on_error: ErrorPolicy,
) -> FlowBatch:
    """Convert a chunk at once (bisecting on failure); bad lines are reported in line order."""
    summary.lines += len(chunk)
    texts = [layout.trim(line) for line in chunk]
    separators = layout.width - 1
    errors: list[tuple[int, str]] = []
    good: list[int] = []
    for index, text in enumerate(texts):
        found = text.count(layout.separator)
        if found == separators:
            good.append(index)
        else:
            errors.append((numbers[index], f"{found + 1} fields, expected {layout.width}"))
    if len(good) < len(texts):
        texts = [texts[i] for i in good]
    parts: list[Converted] = []
    _bisect(texts, [numbers[i] for i in good], layout, parts, errors)
    for number, detail in sorted(errors):
        handle_malformed(FlowTextError(path, number, detail), summary, on_error)
    non_ip = sum(count for _, count in parts)
    batch = np.concatenate([flows for flows, _ in parts]) if parts else empty_batch()
    summary.non_ip += non_ip
    summary.records += len(chunk) - len(errors) - non_ip
    summary.flows += len(batch)
    return batch


def _bisect(
    texts: list[str],
    numbers: list[int],
    layout: Layout,
    parts: list[Converted],
    errors: list[tuple[int, str]],
) -> None:
    """Convert the lines; if that fails, each half again, down to the single bad lines.

    One bad line in a chunk of 65,536 costs about 32 conversions of shrinking
    halves instead of 65,536 one-line conversions; the good lines keep their order.
    """
    if not texts:
        return
    try:
        parts.append(layout.convert(_columns(texts, layout)))
    except CONVERSION_ERRORS as exc:
        if len(texts) == 1:
            errors.append((numbers[0], str(exc) or type(exc).__name__))
            return
        half = len(texts) // 2
        _bisect(texts[:half], numbers[:half], layout, parts, errors)
        _bisect(texts[half:], numbers[half:], layout, parts, errors)


def _split_rows(batch: FlowBatch, rows: int) -> Iterator[FlowBatch]:
    """Keep batches within ``rows`` even when bidirectional records doubled them."""
    for start in range(0, len(batch), rows):
        yield batch[start : start + rows]


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
    titles = [title.strip() for title in trim_newline(first[1]).split(",")]
    used = {columns[t]: i for i, t in enumerate(titles) if t in columns}
    missing = required - used.keys()
    if missing:
        title_of = {name: title for title, name in columns.items()}
        detail = f"{what} header lacks {', '.join(sorted(title_of[m] for m in missing))}"
        unknown = [title for title in titles if title not in columns]
        if unknown:
            detail += f" (columns not known: {', '.join(unknown)})"
        raise FlowTextError(path, first[0], detail)
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
