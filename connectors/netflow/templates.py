"""The template cache: bounded, keyed by (exporter, domain, template id), persisted.

"Template not found" after a restart is the complaint users of goflow2, Akvorado
and pmacct share: an exporter resends templates only every few minutes, and
until then its data cannot be decoded. The cache is written to a JSON state file
(never pickle: the file may be read by another version), with the sampling
rates, so a restarted collector decodes the first data set it receives.

Bounds: ``max_exporters`` exporters and ``max_templates`` templates per exporter,
least recently used evicted first; an evicted template is a template miss, never
unbounded memory.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from silkwatch.connectors.netflow.exceptions import CollectorConfigError
from silkwatch.connectors.netflow.fields import FieldSpec, Plan, compile_plan
from silkwatch.connectors.netflow.sampling import SamplingTable

logger = logging.getLogger(__name__)

STATE_VERSION = 1


@dataclass
class Template:
    """One (options) template as the exporter sent it, and its compiled plan."""

    version: int  # 9 or 10 (v5 has a fixed layout)
    fields: list[FieldSpec]
    scope_fields: int = 0  # > 0: an options template
    #: the template record as it came on the wire: a resent template that matches it
    #: byte for byte is recognised without parsing (exporters resend them constantly)
    wire: bytes = field(default=b"", repr=False, compare=False)
    plan: Plan = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.plan = compile_plan(self.fields)

    def to_json(self) -> dict:
        """The template as the state file stores it."""
        return {
            "version": self.version,
            "scope_fields": self.scope_fields,
            "fields": [[f.element, f.length, f.enterprise] for f in self.fields],
        }

    @classmethod
    def from_json(cls, data: dict) -> Template:
        """Inverse of ``to_json``."""
        specs = [FieldSpec(int(e), int(n), int(p)) for e, n, p in data["fields"]]
        return cls(int(data["version"]), specs, int(data.get("scope_fields", 0)))


class TemplateCache:
    """Templates by (exporter, domain, template id), LRU-bounded on both levels.

    Examples
    --------
    >>> cache = TemplateCache(max_templates=1)
    >>> cache.put("192.0.2.1", 0, 256, Template(9, [FieldSpec(1, 4)]))
    True
    >>> cache.put("192.0.2.1", 0, 257, Template(9, [FieldSpec(2, 4)]))  # evicts 256
    True
    >>> cache.get("192.0.2.1", 0, 256) is None, cache.get("192.0.2.1", 0, 257).fields
    (True, [FieldSpec(element=2, length=4, enterprise=0)])
    """

    def __init__(self, *, max_exporters: int = 1024, max_templates: int = 1024) -> None:
        self.max_exporters = max_exporters
        self.max_templates = max_templates
        self._by_exporter: OrderedDict[str, OrderedDict[tuple[int, int], Template]] = OrderedDict()
        self.sampling = SamplingTable()
        #: templates changed since the last save
        self.dirty = False
        self.evicted = 0

    def __len__(self) -> int:
        return sum(len(templates) for templates in self._by_exporter.values())

    def get(self, exporter: str, domain: int, template_id: int) -> Template | None:
        """The template in force, or None (a template miss)."""
        templates = self._by_exporter.get(exporter)
        if templates is None:
            return None
        return templates.get((domain, template_id))

    def put(self, exporter: str, domain: int, template_id: int, template: Template) -> bool:
        """Learn or redefine a template; returns True if it changed anything."""
        templates = self._by_exporter.pop(exporter, None)
        if templates is None:
            templates = OrderedDict()
        self._by_exporter[exporter] = templates
        while len(self._by_exporter) > self.max_exporters:
            _, gone = self._by_exporter.popitem(last=False)
            self.evicted += len(gone)
        key = (domain, template_id)
        old = templates.pop(key, None)
        templates[key] = template
        while len(templates) > self.max_templates:
            templates.popitem(last=False)
            self.evicted += 1
        changed = old is None or old.fields != template.fields or old.version != template.version
        self.dirty |= changed
        return changed

    def withdraw(self, exporter: str, domain: int, template_id: int | None) -> list[int]:
        """Forget one template, or all of a domain's (IPFIX withdrawal, RFC 7011 §8.1).

        Returns the template ids forgotten.
        """
        templates = self._by_exporter.get(exporter, {})
        gone = [key for key in templates if key[0] == domain and template_id in (None, key[1])]
        for key in gone:
            del templates[key]
            self.dirty = True
        return [tid for _, tid in gone]

    def save(self, path: Path) -> None:
        """Write templates and sampling rates to ``path`` atomically (write, then rename)."""
        state = {
            "silkwatch_collector_state": STATE_VERSION,
            "templates": [
                {"exporter": exporter, "domain": domain, "id": tid, **template.to_json()}
                for exporter, templates in self._by_exporter.items()
                for (domain, tid), template in templates.items()
            ],
            "sampling": [[*key, rate] for key, rate in self.sampling.rates.items()],
        }
        temporary = path.with_name(path.name + ".tmp")
        try:
            temporary.write_text(json.dumps(state, separators=(",", ":")))
            os.replace(temporary, path)
        except OSError as exc:
            raise CollectorConfigError(f"collector state {path}: cannot write ({exc})") from exc
        self.dirty = False

    def load(self, path: Path) -> int:
        """Read a state file written by ``save``; returns the number of templates loaded.

        A missing file is a first start (0). A damaged one is an error: starting
        silently without its templates is the failure this file exists to prevent.
        """
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            raise CollectorConfigError(f"collector state {path}: unreadable ({exc})") from exc
        if not isinstance(state, dict) or state.get("silkwatch_collector_state") != STATE_VERSION:
            raise CollectorConfigError(f"collector state {path}: not a collector state file")
        try:
            for entry in state["templates"]:
                self.put(entry["exporter"], int(entry["domain"]), int(entry["id"]),
                         Template.from_json(entry))  # fmt: skip
            for exporter, domain, sampler, rate in state.get("sampling", []):
                self.sampling.set((str(exporter), int(domain), int(sampler)), int(rate))
        except (KeyError, TypeError, ValueError) as exc:
            raise CollectorConfigError(f"collector state {path}: damaged entry ({exc})") from exc
        self.dirty = False
        logger.info("state=%s templates=%d", path, len(self))
        return len(self)
