"""rwcut text → flows: the default ``|`` table or ``--delimited=X``, any field subset.

Column titles are matched the way rwcut abbreviates them (``pro``, ``sen``,
``initialF``…). Sensor and type names follow the stock *twoway* ``silk.conf``
(``S3`` → 3, ``outweb`` → 3, ``?`` → unknown), which is what the FCCX data and
most sites use; a site with its own sensor names should dump with
``--integer-sensors``, or hand us the binary file.
Columns the dump lacks stay zero (sensor and type unknown).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from silkwatch.connectors.flowtext import columns as col
from silkwatch.connectors.flowtext.exceptions import FlowTextError
from silkwatch.connectors.flowtext.policy import ErrorPolicy, ReadSummary
from silkwatch.connectors.flowtext.table import Converted, Layout, iter_batches
from silkwatch.connectors.silk.site import FLOWTYPE_BY_TYPE, sensor_id
from silkwatch.detectors.schema import FLOWTYPE_UNKNOWN, SENSOR_UNKNOWN, FlowBatch, empty_batch

#: rwcut field titles (lower case, full length) → our canonical column name
TITLES = {
    "sip": "sip",
    "dip": "dip",
    "sport": "sport",
    "dport": "dport",
    "protocol": "proto",
    "packets": "packets",
    "bytes": "bytes",
    "flags": "flags",
    "stime": "stime",
    "duration": "duration",
    "etime": "etime",
    "sensor": "sensor",
    "class": "class",
    "type": "type",
    "in": "input",
    "out": "output",
    "nhip": "nhip",
    "initialflags": "init_flags",
    "sessionflags": "rest_flags",
    "attributes": "attributes",
    "application": "application",
    "stime+msec": "stime_msec",
    "etime+msec": "etime_msec",
    "dur+msec": "duration_msec",
    "itype": "itype",
    "icode": "icode",
}

SEPARATORS = "|,;\t"


def canonical_title(title: str) -> str | None:
    """An rwcut title, perhaps abbreviated to its column width, → canonical name."""
    key = title.strip().lower()
    if key in TITLES:
        return TITLES[key]
    matches = [name for name in TITLES if name.startswith(key)]
    return TITLES[matches[0]] if len(matches) == 1 and key else None


def sniff(lines: list[str]) -> bool:
    """An rwcut header names sIP and dIP (or sPort/dPort) between separators."""
    if not lines:
        return False
    titles = {canonical_title(t) for sep in SEPARATORS for t in lines[0].split(sep)}
    return {"sip", "dip"} <= titles or {"sport", "dport", "proto"} <= titles


def _sensor(text: str) -> int:
    """``S3``, ``?`` (rwcut's names) or ``3``, ``-1`` (``--integer-sensors``) → sensor id."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return SENSOR_UNKNOWN if text == "-1" else int(text)
    return sensor_id(text)


def _flowtype(text: str) -> int:
    """A twoway type name (``outweb``), ``?`` or a number → flowtype id."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    return FLOWTYPE_UNKNOWN if text == "?" else FLOWTYPE_BY_TYPE[text].flowtype_id


def convert(c: dict[str, list[str]]) -> Converted:
    """Named rwcut columns → flows; absent columns stay at their defaults."""
    n = len(next(iter(c.values())))
    batch = empty_batch(n)
    for name in ("sip", "dip", "nhip"):
        if name in c:
            batch[name], is_v6 = col.addresses(c[name])
            if name != "nhip":
                batch["ipv6"] |= is_v6
    for name, dtype in (
        ("sport", "<u2"),
        ("dport", "<u2"),
        ("packets", "<u8"),
        ("bytes", "<u8"),
        ("input", "<u4"),
        ("output", "<u4"),
        ("application", "<u2"),
    ):
        if name in c:
            batch[name] = col.uints(c[name], dtype)
    if "proto" in c:
        batch["proto"] = col.protocols(c["proto"])
    for name in ("flags", "init_flags", "rest_flags"):
        if name in c:
            batch[name] = col.silk_flags(c[name])
    start = c.get("stime", c.get("stime_msec"))
    if start is not None:
        batch["stime_ms"] = col.datetimes_to_ms(start)
    duration = c.get("duration", c.get("duration_msec"))
    if duration is not None:
        batch["elapsed_ms"] = col.elapsed_ms(col.seconds_to_ms(duration))
    elif start is not None and ("etime" in c or "etime_msec" in c):
        end_ms = col.datetimes_to_ms(c.get("etime", c.get("etime_msec")))
        batch["elapsed_ms"] = col.elapsed_ms(end_ms - batch["stime_ms"])
    if "sensor" in c:
        batch["sensor"] = col.map_distinct(c["sensor"], _sensor, "<u2")
    if "type" in c:
        batch["flowtype"] = col.map_distinct(c["type"], _flowtype, "u1")
    if "attributes" in c:
        batch["tcp_state"] = col.attributes(c["attributes"])
    # SiLK marks records whose initial/session flags are known as EXPANDED (0x01)
    expanded = (batch["proto"] == 6) & ((batch["init_flags"] | batch["rest_flags"]) != 0)
    batch["tcp_state"][expanded] |= 0x01
    return batch, 0


def read_rwcut(
    stream: Iterable[str], path: str, *, rows: int, summary: ReadSummary, on_error: ErrorPolicy
) -> Iterator[FlowBatch]:
    """Batches of the flows in an rwcut dump (header line required, as rwcut prints it)."""
    numbered = ((i, line) for i, line in enumerate(stream, 1) if line.strip())
    first = next(numbered, None)
    if first is None:
        return
    header = first[1].rstrip("\r\n")
    separator = next((sep for sep in SEPARATORS if sep in header), "|")
    titles = header.rstrip(separator).split(separator)
    used = {canonical_title(t): i for i, t in enumerate(titles)}
    used.pop(None, None)
    used.pop("class", None)
    if not used:
        raise FlowTextError(path, first[0], "no rwcut field titles in the first line")

    def trim(line: str) -> str:
        line = line.rstrip("\r\n")
        return line[:-1] if line.endswith(separator) else line

    layout = Layout(len(titles), used, separator, convert, trim)
    yield from iter_batches(
        numbered, layout, path=path, rows=rows, summary=summary, on_error=on_error
    )
