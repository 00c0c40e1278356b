"""Text flow formats → flow batches: rwcut, ``nfdump -o csv``, Zeek conn.log, Argus binetflow.

One module per format (header → :class:`~silkwatch.connectors.flowtext.table.Layout`),
one shared chunk driver (:mod:`silkwatch.connectors.flowtext.table`), one sniffer
(:mod:`silkwatch.connectors.flowtext.sniff`). Callers normally use
:func:`silkwatch.connectors.flows.read_flows`, which also handles SiLK and nfcapd files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from silkwatch.connectors.flowtext.argus import read_argus
from silkwatch.connectors.flowtext.exceptions import (
    FlowTextError,
    ToolMissingError,
    UnknownFormatError,
)
from silkwatch.connectors.flowtext.nfdump import read_nfdump_csv
from silkwatch.connectors.flowtext.policy import (
    ErrorPolicy,
    ReadSummary,
    skip_malformed,
    stop_on_malformed,
)
from silkwatch.connectors.flowtext.rwcut import read_rwcut
from silkwatch.connectors.flowtext.sniff import sniff_format
from silkwatch.connectors.flowtext.zeek import read_zeek
from silkwatch.detectors.schema import FlowBatch

TextReader = Callable[..., Iterator[FlowBatch]]

#: text format name → reader ``(stream, path, *, rows, summary, on_error)``
READERS: dict[str, TextReader] = {
    "rwcut": read_rwcut,
    "nfdump": read_nfdump_csv,
    "zeek": read_zeek,
    "argus": read_argus,
}

__all__ = [
    "READERS",
    "ErrorPolicy",
    "FlowTextError",
    "ReadSummary",
    "ToolMissingError",
    "UnknownFormatError",
    "skip_malformed",
    "sniff_format",
    "stop_on_malformed",
]
