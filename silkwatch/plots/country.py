"""Countries as group-by keys: FlowPlotter's ``scc`` / ``dcc`` fields for every chart.

The group-by keys on flow columns, and a country is not one. Each batch is
copied with the country code of ``sip`` (scc) or ``dip`` (dcc) written,
encoded, into the ``application`` column of the copy; grouping by that column
lets ``silkwatch uniq``'s own code count records, bytes and distinct addresses
per country, so a country chart cannot disagree with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from silkwatch.detectors.schema import FlowBatch

#: address column → country codes; ``CountryDB().country_codes`` by default
CountryLookup = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: country field → the address column it is looked up from
COUNTRY_FIELDS = {"scc": "sip", "dcc": "dip"}
#: the batch column that carries the country while the group-by runs
CARRIER = "application"


def encode(codes: np.ndarray) -> np.ndarray:
    """Two-letter codes → one ``uint16`` each (first letter × 256 + second).

    Examples
    --------
    >>> encode(np.array(["US", "--"])).tolist(), decode(encode(np.array(["US", "--"])))
    ([21843, 11565], ['US', '--'])
    """
    raw = np.char.encode(np.asarray(codes, dtype="<U2"), "ascii")
    pairs = np.frombuffer(raw.astype("S2").tobytes(), dtype=np.uint8).reshape(-1, 2)
    return pairs[:, 0].astype(np.uint16) * 256 + pairs[:, 1]


def decode(numbers: np.ndarray) -> list[str]:
    """The inverse of :func:`encode`."""
    return [chr(n >> 8) + chr(n & 0xFF) for n in np.asarray(numbers, dtype=np.int64).tolist()]


def with_country(
    batches: Iterable[FlowBatch], field: str, lookup: CountryLookup
) -> Iterator[FlowBatch]:
    """Copies of the batches whose :data:`CARRIER` column holds ``field``'s country, encoded."""
    address = COUNTRY_FIELDS[field]
    for batch in batches:
        copy = batch.copy()
        copy[CARRIER] = encode(lookup(batch[address], batch["ipv6"]))
        yield copy
