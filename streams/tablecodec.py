"""The codec of the bins side's Faust tables: tagged JSON that only reads what it writes.

Faust would pickle tuples and arrays, and a pickled changelog record runs code
when a worker reads it back: a Kafka topic is no trust boundary. This codec
writes the few shapes the tables hold (tuples, dicts with tuple keys, float
arrays, :class:`silkwatch.streams.processing.Stamped`,
:class:`silkwatch.streams.processing.Progress`)
as JSON with a one-letter tag, and reading accepts exactly those shapes. A
record that does not parse is logged, counted (:data:`rejected`) and read as
an absent value, so the table recovers without it instead of crashing.

Examples
--------
>>> from silkwatch.streams.processing import Progress, Stamped
>>> codec = TableCodec()
>>> value = Stamped(7, {("total", 0): np.array([2.0, 150.0, 2.0])})
>>> back = codec.loads(codec.dumps(value))
>>> back.offset, back.value[("total", 0)].tolist()
(7, [2.0, 150.0, 2.0])
>>> codec.loads(codec.dumps(Stamped(3, Progress(watermark_ms=9)))).value.watermark_ms
9
>>> codec.loads(b"\\x80\\x04cos\\nsystem\\n") is None  # a pickle: refused, counted
True
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import numpy as np
from faust.serializers import codecs

from silkwatch.streams.processing import Progress, Stamped

logger = logging.getLogger(__name__)

NAME = "silkwatch-table"

#: records refused since the worker started (for the logs and tests)
rejected = 0


def _encode(value: Any) -> Any:
    if isinstance(value, Stamped):
        return {"s": [value.offset, _encode(value.value)]}
    if isinstance(value, Progress):
        return {"p": dataclasses.asdict(value)}
    if isinstance(value, tuple):
        return {"t": [_encode(v) for v in value]}
    if isinstance(value, dict):
        return {"d": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, np.ndarray):
        return {"f": value.astype(np.float64).tolist()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"the table codec cannot write {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise ValueError(f"unexpected {type(value).__name__}")
    if len(value) != 1:
        raise ValueError(f"unexpected object with keys {sorted(value)[:5]}")
    ((tag, body),) = value.items()
    if tag == "s":
        offset, inner = body
        return Stamped(int(offset), _decode(inner))
    if tag == "p":
        fields = {f.name for f in dataclasses.fields(Progress)}
        if not isinstance(body, dict) or not set(body) <= fields:
            raise ValueError("not a Progress")
        return Progress(**body)
    if tag == "t":
        return tuple(_decode(v) for v in body)
    if tag == "d":
        return {_hashable(_decode(k)): _decode(v) for k, v in body}
    if tag == "f":
        return np.array(body, dtype=np.float64)
    raise ValueError(f"unknown tag {tag!r}")


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        raise ValueError("a list cannot be a key")
    return key


class TableCodec(codecs.Codec):
    """Faust codec for the bins, progress and network tables (keys and values)."""

    def _dumps(self, obj: Any) -> bytes:
        return json.dumps(_encode(obj), separators=(",", ":")).encode()

    def _loads(self, s: bytes) -> Any:
        global rejected
        try:
            return _decode(json.loads(s))
        except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
            rejected += 1
            logger.error("ignoring a table record that is not silkwatch's: %s", exc)
            return None


def register_codecs() -> None:
    """Make ``silkwatch-table`` known to Faust (idempotent)."""
    codecs.register(NAME, TableCodec())
