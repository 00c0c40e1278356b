"""Sensor, class and type names from a SiLK site configuration (``silk.conf``).

SiLK's tools name sensors and flowtypes from the file that ``--site-config-file``
or the ``SILK_CONFIG_FILE`` environment variable names (``silk.conf(5)``); without
one, the stock "twoway" site (:mod:`silkwatch.connectors.silk.site`) is used. Names are
printed as SiLK's ``sksite`` does: an unknown flowtype prints its number as the
type and ``?`` as the class, the invalid sensor 65535 prints ``?`` and any other
unknown sensor its number.

Examples
--------
>>> site = parse_site_config('''
... sensor 0 S0
... sensor 3 beta
... class all
...     type 0 in in
...     type 1 out out
... end class
... ''')
>>> site.sensor_names(np.array([3, 7, 65535])).tolist()
[b'beta', b'7', b'?']
>>> site.type_names(np.array([1, 255])).tolist(), site.class_names(np.array([1, 255])).tolist()
([b'out', b'255'], [b'all', b'?'])
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from silkwatch.connectors.silk.site import TWOWAY_FLOWTYPES
from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.schema import SENSOR_UNKNOWN

#: SiLK's label for an invalid sensor or class
INVALID_LABEL = "?"


class SiteConfigError(SilkwatchError):
    """A site configuration file that cannot be read or parsed."""

    reason = "bad_site_config"


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one per file read
class SiteConfig:
    """Sensor names by id, and (class, type) names by flowtype id."""

    sensors: dict[int, str] = field(default_factory=dict)
    flowtypes: dict[int, tuple[str, str]] = field(default_factory=dict)
    #: how sensors missing from ``sensors`` are named: ``""`` by number (SiLK), ``"S"`` as S<id>
    sensor_prefix: str = ""
    #: id → name tables, built on first use (see ``_table``)
    _tables: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    @property
    def sensor_width(self) -> int:
        """SiLK's sensor column width: the longest sensor name."""
        return max((len(name) for name in self.sensors.values()), default=1)

    def sensor_names(self, ids: np.ndarray) -> np.ndarray:
        """Sensor ids → names (``S``), vectorised through a 65,536-entry table."""
        return _table(self, "sensor")[np.asarray(ids, dtype=np.uint16)]

    def class_names(self, flowtypes: np.ndarray) -> np.ndarray:
        """Flowtype ids → class names."""
        return _table(self, "class")[np.asarray(flowtypes, dtype=np.uint8)]

    def type_names(self, flowtypes: np.ndarray) -> np.ndarray:
        """Flowtype ids → type names."""
        return _table(self, "type")[np.asarray(flowtypes, dtype=np.uint8)]


def _table(site: SiteConfig, kind: str) -> np.ndarray:
    """All 65,536 sensor names (or 256 class/type names) as one ``S`` array to index."""
    if kind not in site._tables:
        if kind == "sensor":
            names = [
                site.sensors.get(
                    i, INVALID_LABEL if i == SENSOR_UNKNOWN else f"{site.sensor_prefix}{i}"
                )
                for i in range(1 << 16)
            ]
        else:
            part = 0 if kind == "class" else 1
            names = [
                site.flowtypes[i][part] if i in site.flowtypes else ("?" if part == 0 else str(i))
                for i in range(256)
            ]
        site._tables[kind] = np.array([n.encode() for n in names], dtype=np.bytes_)
    return site._tables[kind]


def parse_site_config(text: str, path: str = "silk.conf") -> SiteConfig:
    """The ``sensor``, ``class`` and ``type`` lines of a ``silk.conf`` text."""
    sensors: dict[int, str] = {}
    flowtypes: dict[int, tuple[str, str]] = {}
    current_class: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise SiteConfigError(f"site config {path} line {number}: {exc}") from exc
        if not words:
            continue
        try:
            if words[0] == "sensor" and len(words) >= 3:
                sensors[int(words[1])] = words[2]
            elif words[0] == "class" and len(words) >= 2:
                current_class = words[1]
            elif words[0] == "end" and words[1:2] == ["class"]:
                current_class = None
            elif words[0] == "type" and current_class is not None and len(words) >= 3:
                flowtypes[int(words[1])] = (current_class, words[2])
        except ValueError as exc:
            raise SiteConfigError(f"site config {path} line {number}: bad id in {line!r}") from exc
    return SiteConfig(sensors, flowtypes)


#: the stock twoway site, whose sensors S0-S14 are named ``S<id>`` (and so is any other id)
TWOWAY = SiteConfig(
    {i: f"S{i}" for i in range(15)},
    {i: (ft.class_name, ft.type_name) for i, ft in TWOWAY_FLOWTYPES.items()},
    sensor_prefix="S",
)


@cache
def _load(path: str) -> SiteConfig:
    try:
        return parse_site_config(Path(path).read_text(), path)
    except OSError as exc:
        raise SiteConfigError(f"site config {path}: {exc.strerror or exc}") from exc


def load_site_config(path: str | None = None) -> SiteConfig:
    """``path``, else ``$SILK_CONFIG_FILE``, else the twoway site.

    ``$SILK_DATA_ROOTDIR/silk.conf`` is used when it exists, as SiLK does.
    """
    path = path or os.environ.get("SILK_CONFIG_FILE")
    if not path:
        root = os.environ.get("SILK_DATA_ROOTDIR")
        if root and (Path(root) / "silk.conf").is_file():
            path = str(Path(root) / "silk.conf")
    return _load(str(Path(path).resolve())) if path else TWOWAY
