"""NetFlow v5, v9 and IPFIX datagrams → ``FLOW_DTYPE`` batches.

Decoding runs in two passes over a burst of datagrams:

1. Python walks each datagram's header and sets (a few µs a datagram): templates
   are learned, options data sets the sampling rates, sequence numbers are
   checked, and each data set is queued under its template with its context
   (export time, sysUptime, sampling rate).
2. Per template, the queued data sets are joined and decoded at once: one
   ``FieldMoves`` pass fills wide records, then whole-column numpy steps make
   times absolute, scale sampled counters, place ICMP type/code, and split
   biflows. No Python runs per record (except to cut variable-length IPFIX
   records, and for options data).

A malformed datagram raises ``NetflowDecodeError`` inside pass 1; ``decode``
counts it under its exporter, logs it (throttled) and goes on: the sets before
the fault are kept, the rest of that datagram is dropped.

Flows come out grouped by template, not in arrival order.
"""

from __future__ import annotations

import logging
import struct
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, fields

import numpy as np

from silkwatch.connectors.netflow.exceptions import NetflowDecodeError, UnsupportedVersionError
from silkwatch.connectors.netflow.fields import (
    TO_FLOW,
    VARLEN,
    WIDE_DTYPE,
    FieldSpec,
    Time,
    values_of,
)
from silkwatch.connectors.netflow.sampling import SAMPLING_ELEMENTS, rate_of, sampler_of
from silkwatch.connectors.netflow.sequence import SequenceTracker
from silkwatch.connectors.netflow.templates import Template, TemplateCache
from silkwatch.detectors.schema import FLOW_DTYPE, FlowBatch, empty_batch

logger = logging.getLogger(__name__)

_V5_HEADER = struct.Struct(">HHIIIIBBH")
_V9_HEADER = struct.Struct(">HHIIII")
_IPFIX_HEADER = struct.Struct(">HHIII")
_SET = struct.Struct(">HH")
_V5_RECORD_BYTES = 48
#: NTP era 0 starts 70 years before the UNIX epoch
_NTP_TO_UNIX_S = 2_208_988_800
#: a v9 options template's scope fields use their own numbering (RFC 3954 §6.1):
#: tagging them keeps "scope 1 = system" from reading as octetDeltaCount
_V9_SCOPE = 0xFFFF_FFFF
#: systemInitTimeMilliseconds: the zero of IPFIX flowStart/EndSysUpTime
_SYSTEM_INIT_MS = 160
#: a systemInitTimeMilliseconds past this (year 10889) is damage, not a time
_LATEST_MS = 1 << 48
#: options data elements the decoder reads
_OPTIONS_READ = SAMPLING_ELEMENTS | {_SYSTEM_INIT_MS}

#: the NetFlow v5 record as a template, in v9 element ids (paddingOctets = 210)
V5_TEMPLATE = Template(
    5,
    [
        FieldSpec(e, n)
        for e, n in (
            *[(8, 4), (12, 4), (15, 4), (10, 2), (14, 2), (2, 4), (1, 4), (22, 4), (21, 4)],
            *[(7, 2), (11, 2), (210, 1), (6, 1), (4, 1), (5, 1), (16, 2), (17, 2), (9, 1)],
            *[(13, 1), (210, 2)],
        )
    ],
)


@dataclass
class ExporterCounts:
    """What one (exporter, domain) has sent; the metrics read these."""

    packets: int = 0
    records: int = 0
    lost_records: int = 0  # from v5 and IPFIX sequence numbers
    lost_packets: int = 0  # from v9 sequence numbers
    template_misses: int = 0  # data sets that arrived before their template
    pending_dropped: int = 0  # of those, the sets whose template never came in time
    malformed: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class _DataSet:
    """A data set waiting for the vectorised pass (or for its template)."""

    body: bytes | memoryview  # a view into the datagram: no copy until the join
    records: int
    export_ms: int
    uptime_ms: int
    rate: int
    source: int  # index into the burst's (exporter, domain) list


class LogThrottle:
    """At most ``limit`` log lines per ``interval_s``, then one line with the count skipped.

    >>> throttle = LogThrottle(limit=1, interval_s=60.0)
    >>> throttle.allow(0.0), throttle.allow(1.0), throttle.skipped
    (True, False, 1)
    """

    def __init__(self, limit: int = 10, interval_s: float = 60.0) -> None:
        self.limit, self.interval_s = limit, interval_s
        self._window_start_s = float("-inf")
        self._logged = 0
        self.skipped = 0

    def allow(self, now_s: float) -> bool:
        """True if a line may be logged now."""
        if now_s - self._window_start_s >= self.interval_s:
            if self.skipped:
                logger.warning("netflow malformed datagrams not logged=%d", self.skipped)
            self._window_start_s, self._logged, self.skipped = now_s, 0, 0
        if self._logged < self.limit:
            self._logged += 1
            return True
        self.skipped += 1
        return False


class Decoder:
    """Decodes bursts of datagrams from many exporters into flow batches.

    Parameters
    ----------
    cache
        Templates and sampling rates (load it from the state file first to decode
        at once after a restart). Default - an empty cache.
    pending_bytes
        Memory for data sets that arrived before their template. Default - 8 MiB.
    pending_s
        How long such a set waits for its template before it is dropped and
        counted. Default - 10 s.
    max_sources
        (exporter, domain) pairs with counters; the oldest are forgotten past it.

    Examples
    --------
    A NetFlow v5 packet (sysUptime 10 s) with one flow that began at uptime 9 s:

    >>> header = struct.pack(">HHIIIIBBH", 5, 1, 10_000, 1_700_000_000, 0, 0, 0, 0, 0)
    >>> record = bytes([10, 0, 0, 1, 10, 0, 0, 2]) + bytes(8)  # addresses; next hop, ifIndexes
    >>> record += struct.pack(">IIIIHHBBBB", 3, 180, 9_000, 9_500, 1234, 53, 0, 0, 17, 0)
    >>> record += bytes(8)  # AS numbers, masks, padding
    >>> decoder = Decoder()
    >>> batch = decoder.decode([(header + record, "192.0.2.1")])
    >>> batch["bytes"].tolist(), batch["stime_ms"].tolist(), batch["elapsed_ms"].tolist()
    ([180], [1699999999000], [500])
    >>> decoder.counts[("192.0.2.1", 0)].records
    1
    """

    def __init__(
        self,
        cache: TemplateCache | None = None,
        *,
        pending_bytes: int = 8 << 20,
        pending_s: float = 10.0,
        max_sources: int = 4096,
    ) -> None:
        self.cache = cache if cache is not None else TemplateCache()
        self.pending_bytes = pending_bytes
        self.pending_s = pending_s
        self.max_sources = max_sources
        self.counts: OrderedDict[tuple[str, int], ExporterCounts] = OrderedDict()
        self.sequences = SequenceTracker()
        self.system_init_ms: OrderedDict[tuple[str, int], int] = OrderedDict()
        self._pending: OrderedDict[tuple, list[tuple[float, int, _DataSet, str, int]]] = (
            OrderedDict()
        )
        self._pending_size = 0
        self._throttle = LogThrottle()
        # per burst
        self._groups: dict[int, tuple[Template, list[_DataSet]]] = {}
        self._sources: dict[tuple[str, int], int] = {}
        self._now_s = 0.0
        self._options_records = 0  # in the IPFIX message being read
        self._withdrawn: set[tuple[str, int, int]] = set()

    def counts_of(self, exporter: str, domain: int) -> ExporterCounts:
        """The counters of one (exporter, domain), created on first use."""
        key = (exporter, domain)
        found = self.counts.get(key)
        if found is None:
            found = self.counts[key] = ExporterCounts()
            while len(self.counts) > self.max_sources:
                self.counts.popitem(last=False)
        return found

    def decode(
        self, datagrams: Iterable[tuple[bytes, str]], now_s: float | None = None
    ) -> FlowBatch:
        """Decode (payload, exporter address) pairs into one batch.

        ``now_s`` (a monotonic clock; default ``time.monotonic()``) only ages the
        data held for a missing template.
        """
        self._now_s = time.monotonic() if now_s is None else now_s
        self._groups, self._sources = {}, {}
        self._expire_pending()
        for payload, exporter in datagrams:
            try:
                self._datagram(memoryview(payload), exporter)
            except NetflowDecodeError as exc:
                self.counts_of(exporter, _domain_of(payload)).malformed += 1
                if self._throttle.allow(self._now_s):
                    logger.warning("netflow malformed reason=%s %s", exc.reason, exc)
            except (ValueError, IndexError, OverflowError, struct.error):
                # damage no check above foresaw: a bug to fix, but one datagram must not
                # stop a collector; counted, and logged with its traceback
                self.counts_of(exporter, _domain_of(payload)).malformed += 1
                if self._throttle.allow(self._now_s):
                    logger.warning("netflow malformed reason=unexpected exporter=%s", exporter,
                                   exc_info=True)  # fmt: skip
        sources = list(self._sources)
        parts = [self._finish(template, sets, sources) for template, sets in self._groups.values()]
        self._groups, self._sources = {}, {}
        parts = [part for part in parts if part.size]
        if not parts:
            return empty_batch(0)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    # -- pass 1: headers and sets ------------------------------------------------------

    def _datagram(self, data: memoryview, exporter: str) -> None:
        if len(data) < 4:
            raise NetflowDecodeError(exporter, 0, f"datagram of {len(data)} bytes")
        version = int.from_bytes(data[:2], "big")
        if version == 5:
            self._v5(data, exporter)
        elif version == 9:
            self._v9(data, exporter)
        elif version == 10:
            self._ipfix(data, exporter)
        else:
            raise UnsupportedVersionError(exporter, 0, f"version {version} is not 5, 9 or 10")

    def _v5(self, data: memoryview, exporter: str) -> None:
        if len(data) < _V5_HEADER.size:
            raise NetflowDecodeError(exporter, 0, f"v5 header needs 24 bytes, got {len(data)}")
        _, count, uptime, secs, nsecs, sequence, engine_type, engine_id, sampling = (
            _V5_HEADER.unpack_from(data)
        )
        end = _V5_HEADER.size + count * _V5_RECORD_BYTES
        if not 1 <= count <= 30 or end > len(data):
            raise NetflowDecodeError(
                exporter, 2, f"v5 count {count} does not fit {len(data)} bytes (1-30 records)"
            )
        domain = engine_type << 8 | engine_id
        counts = self.counts_of(exporter, domain)
        counts.packets += 1
        counts.records += count
        counts.lost_records += self.sequences.update((5, exporter, domain), sequence, count)
        rate = sampling & 0x3FFF or 1
        export_ms = secs * 1000 + nsecs // 1_000_000
        body = bytes(data[_V5_HEADER.size : end])
        self._queue(
            V5_TEMPLATE, _DataSet(body, count, export_ms, uptime, rate, 0), exporter, domain
        )

    def _v9(self, data: memoryview, exporter: str) -> None:
        if len(data) < _V9_HEADER.size:
            raise NetflowDecodeError(exporter, 0, f"v9 header needs 20 bytes, got {len(data)}")
        _, _, uptime, secs, sequence, domain = _V9_HEADER.unpack_from(data)
        counts = self.counts_of(exporter, domain)
        counts.packets += 1
        counts.lost_packets += self.sequences.update((9, exporter, domain), sequence, 1)
        context = (secs * 1000, uptime)
        for offset, set_id, body in self._sets(data, _V9_HEADER.size, exporter, v9=True):
            if set_id == 0:
                self._templates(body, offset, exporter, domain, 9, options=False)
            elif set_id == 1:
                self._v9_options_templates(body, offset, exporter, domain)
            elif set_id >= 256:
                self._data(body, set_id, exporter, domain, context)

    def _ipfix(self, data: memoryview, exporter: str) -> None:
        if len(data) < _IPFIX_HEADER.size:
            raise NetflowDecodeError(exporter, 0, f"IPFIX header needs 16 bytes, got {len(data)}")
        _, length, export_s, sequence, domain = _IPFIX_HEADER.unpack_from(data)
        if not _IPFIX_HEADER.size <= length <= len(data):
            raise NetflowDecodeError(
                exporter, 2, f"IPFIX message length {length} but {len(data)} bytes arrived"
            )
        counts = self.counts_of(exporter, domain)
        counts.packets += 1
        export_ms = export_s * 1000
        records: int | None = 0
        self._options_records = 0
        for offset, set_id, body in self._sets(data[:length], _IPFIX_HEADER.size, exporter):
            if set_id in (2, 3):
                self._templates(body, offset, exporter, domain, 10, options=set_id == 3)
            elif set_id >= 256:
                # flowStart/EndSysUpTime count from systemInitTimeMilliseconds (options
                # data): as "sysUptime at export" that is export time - init time
                init_ms = self.system_init_ms.get((exporter, domain))
                context = (export_ms, export_ms - init_ms if init_ms else 0)
                found = self._data(body, set_id, exporter, domain, context)
                records = None if found is None or records is None else records + found
        flows = None if records is None else records - self._options_records
        key = (10, exporter, domain)
        counts.lost_records += self.sequences.update(key, sequence, records, flows)

    def _sets(self, data: memoryview, offset: int, exporter: str, *, v9: bool = False):
        """(offset, set id, body) of each set; a v9 packet may end in zero padding."""
        end = len(data)
        while offset < end:
            if end - offset < 4:
                if v9 and not any(data[offset:]):
                    return
                raise NetflowDecodeError(exporter, offset, f"{end - offset} bytes after the sets")
            set_id, length = _SET.unpack_from(data, offset)
            if length < 4:
                if v9 and not any(data[offset:]):
                    return  # zero fill (Palo Alto pads to a fixed size)
                raise NetflowDecodeError(exporter, offset, f"set length {length} is below 4")
            if offset + length > end:
                raise NetflowDecodeError(
                    exporter, offset, f"set {set_id} of {length} bytes overruns the datagram"
                )
            yield offset, set_id, data[offset + 4 : offset + length]
            offset += length

    def _templates(
        self, body: memoryview, offset: int, exporter: str, domain: int, version: int, *, options
    ) -> None:
        """Template or options template records (v9 set 0, IPFIX sets 2 and 3)."""
        at = 0
        header = 6 if options else 4
        while len(body) - at >= header:
            start = at
            template_id, count = _SET.unpack_from(body, at)
            scope = int.from_bytes(body[at + 4 : at + 6], "big") if options else 0
            at += header
            if template_id < 256:
                if count == 0 and version == 10 and template_id in (2, 3):
                    self._withdraw(exporter, domain, None)  # all of the domain's
                    continue
                if template_id == 0 and count == 0:
                    return  # padding
                raise NetflowDecodeError(exporter, offset + 4 + at, f"template id {template_id}")
            if count == 0:  # IPFIX withdrawal
                self._withdraw(exporter, domain, template_id)
                continue
            known = self.cache.get(exporter, domain, template_id)
            if known is not None and body[start : start + len(known.wire)] == known.wire:
                at = start + len(known.wire)  # the template in force, resent
                continue
            specs = []
            for _ in range(count):
                if len(body) - at < 4:
                    raise NetflowDecodeError(exporter, offset + 4 + at, "truncated template")
                element, length = _SET.unpack_from(body, at)
                at += 4
                enterprise = 0
                if version == 10 and element & 0x8000:
                    if len(body) - at < 4:
                        raise NetflowDecodeError(exporter, offset + 4 + at, "truncated template")
                    enterprise = int.from_bytes(body[at : at + 4], "big")
                    element &= 0x7FFF
                    at += 4
                specs.append(FieldSpec(element, length, enterprise))
            if scope > count:
                raise NetflowDecodeError(exporter, offset + 4 + at, f"scope count {scope}")
            _check_record_length(specs, exporter, offset + 4 + start)
            template = Template(version, specs, scope, wire=bytes(body[start:at]))
            self._learn(exporter, domain, template_id, template)

    def _v9_options_templates(
        self, body: memoryview, offset: int, exporter: str, domain: int
    ) -> None:
        at = 0
        while len(body) - at >= 6:
            start = at
            template_id, scope_bytes, option_bytes = struct.unpack_from(">HHH", body, at)
            if template_id < 256:
                return  # padding
            at += 6
            if scope_bytes % 4 or option_bytes % 4 or at + scope_bytes + option_bytes > len(body):
                raise NetflowDecodeError(exporter, offset + 4 + at, "bad options template lengths")
            known = self.cache.get(exporter, domain, template_id)
            if known is not None and body[start : start + len(known.wire)] == known.wire:
                at = start + len(known.wire)  # the template in force, resent
                continue
            specs = []
            for i in range((scope_bytes + option_bytes) // 4):
                element, length = _SET.unpack_from(body, at)
                at += 4
                scoped = i < scope_bytes // 4
                specs.append(FieldSpec(element, length, _V9_SCOPE if scoped else 0))
            _check_record_length(specs, exporter, offset + 4 + start)
            template = Template(9, specs, scope_bytes // 4 or 1, wire=bytes(body[start:at]))
            self._learn(exporter, domain, template_id, template)

    def _withdraw(self, exporter: str, domain: int, template_id: int | None) -> None:
        """Forget templates; data for them is dropped, not held, until they are redefined.

        Held data could otherwise be decoded with a later, different template of the
        same id.
        """
        for gone in self.cache.withdraw(exporter, domain, template_id):
            self._withdrawn.add((exporter, domain, gone))
        if len(self._withdrawn) > 65_536:
            self._withdrawn.clear()

    def _learn(self, exporter: str, domain: int, template_id: int, template: Template) -> None:
        self._withdrawn.discard((exporter, domain, template_id))
        self.cache.put(exporter, domain, template_id, template)
        waiting = self._pending.pop((exporter, domain, template_id), None)
        for _, size, data_set, _, _ in waiting or ():
            self._pending_size -= size
            self._data(data_set.body, template_id, exporter, domain, (data_set.export_ms,
                       data_set.uptime_ms))  # fmt: skip

    def _data(
        self,
        body: memoryview | bytes,
        template_id: int,
        exporter: str,
        domain: int,
        context: tuple[int, int],
    ) -> int | None:
        """Queue one data set; returns its record count (None: template unknown)."""
        template = self.cache.get(exporter, domain, template_id)
        counts = self.counts_of(exporter, domain)
        if template is None:
            counts.template_misses += 1
            if (exporter, domain, template_id) in self._withdrawn:
                counts.pending_dropped += 1
            else:
                self._hold(bytes(body), template_id, exporter, domain, context)
            return None
        plan = template.plan
        if plan.record_bytes:
            records = len(body) // plan.record_bytes
            body = body[: records * plan.record_bytes]
        elif plan.fixed_bytes or VARLEN in plan.lengths:
            body, records = _cut_variable(body, plan.lengths, exporter)
        else:
            return 0  # every field zero-length: nothing to read
        if template.scope_fields:
            self._options(template, body, records, exporter, domain)
            self._options_records += records
            return records
        if not records or plan.moves is None:
            return records
        counts.records += records
        rate = self.cache.sampling.rate((exporter, domain, 0))
        self._queue(template, _DataSet(body, records, *context, rate, 0), exporter, domain)
        return records

    def _queue(self, template: Template, data_set: _DataSet, exporter: str, domain: int) -> None:
        data_set.source = self._sources.setdefault((exporter, domain), len(self._sources))
        group = self._groups.get(id(template))
        if group is None:
            group = self._groups[id(template)] = (template, [])
        group[1].append(data_set)

    def _options(
        self, template: Template, body: bytes, records: int, exporter: str, domain: int
    ) -> None:
        """Options data: only sampling records are read (one record at a time)."""
        if not _OPTIONS_READ.intersection(template.plan.fixed_keys):
            return
        size = template.plan.fixed_bytes
        for i in range(records):
            values = values_of(template.plan, body[i * size : (i + 1) * size])
            if 0 < values.get(_SYSTEM_INIT_MS, 0) < _LATEST_MS:
                self.system_init_ms[(exporter, domain)] = values[_SYSTEM_INIT_MS]
                while len(self.system_init_ms) > self.max_sources:
                    self.system_init_ms.popitem(last=False)
            rate = rate_of(values)
            if rate:
                self.cache.sampling.set((exporter, domain, sampler_of(values)), rate)
                self.cache.dirty = True

    def _hold(
        self, body: bytes, template_id: int, exporter: str, domain: int, context: tuple[int, int]
    ) -> None:
        """Keep a data set until its template arrives (bounded in bytes and time)."""
        size = len(body) + 200
        if size > self.pending_bytes:
            self.counts_of(exporter, domain).pending_dropped += 1
            return
        while self._pending_size + size > self.pending_bytes:
            self._drop_oldest()
        entry = (self._now_s, size, _DataSet(body, 0, *context, 1, 0), exporter, domain)
        self._pending.setdefault((exporter, domain, template_id), []).append(entry)
        self._pending_size += size

    def _drop_oldest(self) -> None:
        key = next(iter(self._pending))
        entries = self._pending[key]
        _, size, _, exporter, domain = entries.pop(0)
        self._pending_size -= size
        self.counts_of(exporter, domain).pending_dropped += 1
        if not entries:
            del self._pending[key]

    def _expire_pending(self) -> None:
        for key in list(self._pending):
            entries = self._pending[key]
            while entries and self._now_s - entries[0][0] > self.pending_s:
                _, size, _, exporter, domain = entries.pop(0)
                self._pending_size -= size
                self.counts_of(exporter, domain).pending_dropped += 1
            if not entries:
                del self._pending[key]

    @property
    def pending_sets(self) -> int:
        """Data sets now waiting for a template."""
        return sum(len(entries) for entries in self._pending.values())

    # -- pass 2: one vectorised decode per template -----------------------------------

    def _finish(
        self, template: Template, sets: list[_DataSet], sources: list[tuple[str, int]]
    ) -> FlowBatch:
        plan = template.plan
        per_set = np.array([s.records for s in sets], dtype=np.int64)
        total = int(per_set.sum())
        wide = np.empty(total, WIDE_DTYPE)
        body = sets[0].body if len(sets) == 1 else b"".join(s.body for s in sets)
        plan.moves.apply(body, wide, plan.template_record)

        def per_record(values: list[int]) -> np.ndarray:
            if len(set(values)) == 1:
                return np.full(total, values[0], dtype=np.int64)
            return np.repeat(np.array(values, dtype=np.int64), per_set)

        export_ms = per_record([s.export_ms for s in sets])
        start_ms = self._time(plan.start, wide["t_start"], wide, export_ms, sets, per_record)
        if plan.end in (Time.DURATION_MS, Time.DURATION_US):
            duration = wide["t_dur"].astype(np.int64)
            end_ms = start_ms + (duration if plan.end == Time.DURATION_MS else duration // 1000)
        elif plan.end == Time.NONE:
            end_ms = start_ms
        else:
            end_ms = self._time(plan.end, wide["t_end"], wide, export_ms, sets, per_record)
        if plan.start == Time.NONE:
            start_ms = end_ms
        wide["stime_ms"] = start_ms
        wide["elapsed_ms"] = np.clip(end_ms - start_ms, 0, 0xFFFF_FFFF)
        self._scale(plan, wide, sets, sources, per_record)
        if plan.has_icmp:
            icmp = np.isin(wide["proto"], (1, 58)) & (wide["icmp"] != 0)
            wide["dport"][icmp] = wide["icmp"][icmp]
            wide["sport"][icmp] = 0
        if plan.has_reverse:
            wide = _split_biflows(wide)
        out = np.empty(len(wide), FLOW_DTYPE)
        TO_FLOW.apply(wide, out)
        return out

    @staticmethod
    def _time(kind: Time, raw: np.ndarray, wide, export_ms, sets, per_record) -> np.ndarray:
        """Raw start/end values → ms since the epoch."""
        if kind == Time.UPTIME_MS:
            uptime = per_record([s.uptime_ms for s in sets])
            since = raw.astype(np.int64) - uptime
            since[since > 1 << 31] -= 1 << 32  # sysUptime wrapped after the flow began
            return export_ms + since
        if kind == Time.SECONDS:
            return raw.astype(np.int64) * 1000
        if kind == Time.MILLISECONDS:
            return raw.astype(np.int64)
        if kind == Time.NTP:
            seconds = (raw >> np.uint64(32)).astype(np.int64) - _NTP_TO_UNIX_S
            fraction = ((raw & np.uint64(0xFFFF_FFFF)) * np.uint64(1000)) >> np.uint64(32)
            return seconds * 1000 + fraction.astype(np.int64)
        if kind == Time.DELTA_US:
            return export_ms - raw.astype(np.int64) // 1000
        if kind == Time.SYSINIT_MS:
            return wide["init_ms"].astype(np.int64) + raw.astype(np.int64)
        return export_ms

    def _scale(self, plan, wide: np.ndarray, sets, sources, per_record) -> None:
        """Multiply packets and bytes by the sampling rate in force for each record."""
        if plan.has_sampler:
            source = per_record([s.source for s in sets])
            keys = source << 32 | wide["sampler"].astype(np.int64)
            unique, inverse = np.unique(keys, return_inverse=True)
            rates = [
                self.cache.sampling.rate((*sources[int(k) >> 32], int(k) & 0xFFFF_FFFF))
                for k in unique
            ]
            rate = np.array(rates, dtype=np.uint64)[inverse]
        else:
            rate = per_record([s.rate for s in sets]).astype(np.uint64)
        if plan.has_interval:
            interval = wide["interval"].astype(np.uint64)
            rate = np.where(interval > 0, interval, rate)
        if (rate != 1).any():
            for column in ("packets", "bytes", "rev_packets", "rev_bytes"):
                wide[column] *= rate


def _split_biflows(wide: np.ndarray) -> np.ndarray:
    """RFC 5103 biflows → two one-way records, as SiLK's rwflowpack does.

    The reverse record swaps addresses, ports and ifIndexes, takes the reverse
    counters and flags, and starts ``reverseFlowDeltaMilliseconds`` later (as SiLK's
    rwipfix2silk); only biflows that saw reverse packets get one.
    """
    forward = wide[(wide["rev_packets"] > 0) | (wide["rev_bytes"] > 0)]
    if not forward.size:
        return wide
    both = np.empty(len(wide) + len(forward), WIDE_DTYPE)  # concatenate would repack the dtype
    both[: len(wide)] = wide
    reverse = both[len(wide) :]
    reverse[:] = forward
    for a, b in (("sip", "dip"), ("sport", "dport"), ("input", "output")):
        reverse[a], reverse[b] = forward[b], forward[a]
    reverse["packets"] = forward["rev_packets"]
    reverse["bytes"] = forward["rev_bytes"]
    reverse["flags"] = forward["rev_flags"]
    # the reverse direction starts reverseFlowDeltaMilliseconds later and ends with the flow
    delta = np.minimum(forward["rev_delta_ms"], forward["elapsed_ms"])
    reverse["stime_ms"] = forward["stime_ms"] + delta
    reverse["elapsed_ms"] = forward["elapsed_ms"] - delta
    return both


def _cut_variable(body: memoryview | bytes, lengths: tuple[int, ...], exporter: str):
    """Records with variable-length fields → fixed records of their fixed fields.

    RFC 7011 §7: a length byte (255 → the next two bytes give it). Stops at
    trailing padding (fewer bytes than the shortest record).
    """
    data = bytes(body)
    pieces = []
    records = 0
    at = 0
    shortest = sum(1 if n == VARLEN else n for n in lengths)
    if shortest == 0:
        return b"", 0
    while len(data) - at >= shortest:
        start = at
        record = []
        for length in lengths:
            if length == VARLEN:
                if at >= len(data):
                    raise NetflowDecodeError(exporter, start, "record overruns its set")
                size = data[at]
                at += 1
                if size == 255:
                    if at + 2 > len(data):
                        raise NetflowDecodeError(exporter, at, "truncated variable length")
                    size = int.from_bytes(data[at : at + 2], "big")
                    at += 2
                at += size
            else:
                record.append(data[at : at + length])
                at += length
            if at > len(data):
                raise NetflowDecodeError(exporter, start, "record overruns its set")
        pieces.append(b"".join(record))
        records += 1
    return b"".join(pieces), records


#: the longest data record a message can hold (65,535 bytes less the headers)
_MAX_RECORD_BYTES = 65_535 - 16 - 4


def _check_record_length(specs: list[FieldSpec], exporter: str, offset: int) -> None:
    """A template whose records could not fit in any message is malformed."""
    fixed = sum(spec.length for spec in specs if spec.length != VARLEN)
    if fixed > _MAX_RECORD_BYTES:
        raise NetflowDecodeError(exporter, offset, f"template records of {fixed} bytes")


def _domain_of(payload: bytes) -> int:
    """The source id / observation domain of a datagram, if its header has one."""
    version = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 0
    if version == 9 and len(payload) >= 20:
        return int.from_bytes(payload[16:20], "big")
    if version == 10 and len(payload) >= 16:
        return int.from_bytes(payload[12:16], "big")
    if version == 5 and len(payload) >= 24:
        return payload[20] << 8 | payload[21]
    return 0
