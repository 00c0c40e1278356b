"""Reading a site's detector configuration file: the file side of :mod:`silkwatch.detectors.config`.

The detectors stay pure: :func:`silkwatch.detectors.config.from_mapping` checks a parsed
document; this module reads and parses the TOML, and turns a missing or
malformed file into the same one-line :class:`~silkwatch.detectors.config.ConfigError`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from silkwatch.detectors.config import ConfigError, DetectorsConfig, from_mapping


def load_config(path: Path | str | None = None) -> DetectorsConfig:
    """Defaults, overridden by the sections and keys of a TOML file when one is given.

    :param path: a TOML file laid out like ``detectors/defaults.toml``.
        Default - None (the built-in defaults, which that file documents)

    Examples
    --------
    >>> from silkwatch.detectors.beacon import BeaconConfig
    >>> from silkwatch.detectors.config import DEFAULTS_PATH
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
