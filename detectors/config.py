"""Every detector's thresholds in one object, loadable from a documented TOML file.

``detectors/defaults.toml`` lists every setting with what it does and why its
default; a site copies it, edits what it needs and passes it with
``--config``. Sections a file leaves out keep their defaults, and an unknown
section or key is an error, so a typo never silently keeps a default.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectors.alerts import AlertConfig
from detectors.beacon import BeaconConfig
from detectors.dns import DnsConfig
from detectors.exceptions import SilkwatchError
from detectors.exfil import ExfilConfig
from detectors.pairs import PairConfig
from detectors.volume import VolumeConfig


class ConfigError(SilkwatchError):
    """A detector configuration file that cannot be used as written."""

    reason = "bad_config"

    def __init__(self, path: Path | str, detail: str) -> None:
        super().__init__(f"detector config {path}: {detail}")
        self.path = path


@dataclass(frozen=True)
class DetectorsConfig:
    """The thresholds of every detector, one section each."""

    beacon: BeaconConfig = field(default_factory=BeaconConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    exfil: ExfilConfig = field(default_factory=ExfilConfig)
    volume: VolumeConfig = field(default_factory=VolumeConfig)
    pairs: PairConfig = field(default_factory=PairConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)


#: the documented defaults file shipped with the package (a template for sites)
DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")


def load_config(path: Path | str | None = None) -> DetectorsConfig:
    """Defaults, overridden by the sections and keys of a TOML file when one is given.

    :param path: a TOML file laid out like ``detectors/defaults.toml``.
        Default - None (the built-in defaults, which that file documents)

    Examples
    --------
    >>> load_config().beacon == BeaconConfig()
    True
    >>> load_config(DEFAULTS_PATH) == DetectorsConfig()
    True
    """
    if path is None:
        return DetectorsConfig()
    try:
        document = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(path, str(exc)) from exc
    return from_mapping(document, source=str(path))


def from_mapping(document: dict[str, Any], *, source: str = "<mapping>") -> DetectorsConfig:
    """A config from nested dicts (a parsed TOML document); unknown names are errors.

    Examples
    --------
    >>> from_mapping({"alerts": {"rescore_step": 0.2}}).alerts.rescore_step
    0.2
    """
    defaults = DetectorsConfig()
    sections = {f.name: getattr(defaults, f.name) for f in dataclasses.fields(defaults)}
    unknown = set(document) - set(sections)
    if unknown:
        raise ConfigError(
            source, f"unknown section(s) {sorted(unknown)}; known: {sorted(sections)}"
        )
    chosen = {}
    for name, section in sections.items():
        values = document.get(name, {})
        known = {f.name for f in dataclasses.fields(section)}
        bad = set(values) - known
        if bad:
            raise ConfigError(source, f"[{name}] has unknown key(s) {sorted(bad)}")
        chosen[name] = dataclasses.replace(
            section, **_typed(section, values, source=source, name=name)
        )
    return DetectorsConfig(**chosen)


def _typed(section: Any, values: dict[str, Any], *, source: str, name: str) -> dict[str, Any]:
    """Check each value against its default's type; TOML arrays become (nested) tuples.

    Tuples keep configs hashable; an int is accepted where a float is expected.
    """
    typed = {}
    for key, value in values.items():
        default = getattr(section, key)
        converted = _like(default, value)
        if converted is None:
            raise ConfigError(
                source,
                f"[{name}] {key} = {value!r}: expected {type(default).__name__} "
                f"like the default {default!r}",
            )
        typed[key] = converted
    return typed


def _like(default: Any, value: Any) -> Any:
    """``value`` converted to the shape of ``default``, or None when it does not fit."""
    if isinstance(default, bool) or isinstance(value, bool):
        return value if isinstance(default, bool) and isinstance(value, bool) else None
    if isinstance(default, float):
        return float(value) if isinstance(value, (int, float)) else None
    if isinstance(default, int):
        return value if isinstance(value, int) else None
    if isinstance(default, str):
        return value if isinstance(value, str) else None
    if isinstance(default, tuple):
        if not isinstance(value, list):
            return None
        items = [_like(default[0], v) if default else _plain(v) for v in value]
        return None if any(item is None for item in items) else tuple(items)
    return value


def _plain(value: Any) -> Any:
    """A TOML value with arrays as tuples (for tuples whose default is empty)."""
    return tuple(_plain(v) for v in value) if isinstance(value, list) else value
