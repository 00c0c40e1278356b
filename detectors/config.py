"""Every detector's thresholds in one object, built from a parsed, documented TOML file.

``detectors/defaults.toml`` lists every setting with what it does and why its
default; a site copies it, edits what it needs and passes it with
``--config``. Sections a file leaves out keep their defaults, and an unknown
section or key is an error, so a typo never silently keeps a default. Reading
the file is :func:`silkwatch.connectors.config.load_config`'s job; this module only
checks the document it parsed (:func:`from_mapping`).

List settings (``allow_networks``, ``allow_ports``, ``internal_networks``, ...)
*extend* the defaults, so a site adding its own SCOM server does not drop the
cloud metadata services; ``key = { replace = [...] }`` replaces the list. Every
value is checked (type, range, order, CIDR syntax, weights not all zero) and a
bad one is one error line naming the file, section and key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from silkwatch.detectors.alerts import Alert, AlertConfig
from silkwatch.detectors.beacon import BeaconConfig
from silkwatch.detectors.dns import DnsConfig
from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.exfil import ExfilConfig
from silkwatch.detectors.pairs import PairConfig
from silkwatch.detectors.site import SiteConfig
from silkwatch.detectors.strobe import StrobeConfig
from silkwatch.detectors.upload import UploadConfig
from silkwatch.detectors.volume import VolumeConfig


class ConfigError(SilkwatchError):
    """A detector configuration file that cannot be used as written."""

    reason = "bad_config"

    def __init__(self, path: Path | str, detail: str) -> None:
        super().__init__(f"detector config {path}: {detail}")
        self.path = path


@dataclass(frozen=True)
class DetectorsConfig:
    """The thresholds of every detector, one section each."""

    site: SiteConfig = field(default_factory=SiteConfig)
    beacon: BeaconConfig = field(default_factory=BeaconConfig)
    strobe: StrobeConfig = field(default_factory=StrobeConfig)
    upload: UploadConfig = field(default_factory=UploadConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    exfil: ExfilConfig = field(default_factory=ExfilConfig)
    volume: VolumeConfig = field(default_factory=VolumeConfig)
    pairs: PairConfig = field(default_factory=PairConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)


#: the documented defaults file shipped with the package (a template for sites)
DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")


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
        problem = validate_section(name, chosen[name])
        if problem:
            raise ConfigError(source, f"[{name}] {problem}")
    return DetectorsConfig(**chosen)


def _typed(section: Any, values: dict[str, Any], *, source: str, name: str) -> dict[str, Any]:
    """Check each value against its default's type; TOML arrays become (nested) tuples.

    Tuples keep configs hashable; an int is accepted where a float is expected.
    """
    typed = {}
    for key, value in values.items():
        default = getattr(section, key)
        replace = isinstance(default, tuple) and isinstance(value, dict)
        if replace:
            if set(value) != {"replace"}:
                raise ConfigError(
                    source,
                    f"[{name}] {key} = {value!r}: a table here must be {{ replace = [...] }}",
                )
            value = value["replace"]
        converted = _like(default, value)
        if converted is None:
            raise ConfigError(
                source,
                f"[{name}] {key} = {value!r}: expected {type(default).__name__} "
                f"like the default {default!r}",
            )
        if isinstance(default, tuple) and not replace:
            converted = tuple(dict.fromkeys(default + converted))  # extend, keeping order
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


def _cidrs(values: tuple[str, ...]) -> str | None:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"{value!r} is not an address or CIDR"
    return None


def _ports(values: tuple, top: int = 65_535) -> str | None:
    bad = [v for v in values if not 0 <= v <= top]
    return f"{bad[0]} is outside 0-{top}" if bad else None


def _proto_ports(values: tuple) -> str | None:
    for pair in values:
        if len(pair) != 2 or not 0 <= pair[0] <= 255 or not 0 <= pair[1] <= 65_535:
            return f"{list(pair)} is not [protocol 0-255, port 0-65535]"
    return None


#: settings whose values are shares, scores or damping factors: in [0, 1]
_UNIT = (
    "alert_score", "session_alert_score", "medium_at", "high_at", "critical_at", "rescore_step",
    "max_duty_cycle", "prevalence_full_share", "prevalence_weight", "fanout_weight",
    "session_fanout_weight", "min_new_share", "min_ratio_shift", "max_regular_rel_mad",
    "max_zero_payload_share", "max_size_rel_mad", "max_interval_rel_mad", "fanout_min_raw",
)  # fmt: skip
#: list settings with their own check
_LISTS: dict[str, Callable[[tuple], str | None]] = {
    "allow_networks": _cidrs,
    "internal_networks": _cidrs,
    "allow_ports": _proto_ports,
    "protocols": lambda values: _ports(values, 255),
    "skip_dports": _ports,
    "session_skip_dports": _ports,
}
#: (smaller, larger): pairs of settings that must keep this order
_ORDER = (
    ("medium_at", "high_at"), ("high_at", "critical_at"), ("min_callbacks", "full_callbacks"),
    ("low_bytes_per_packet", "high_bytes_per_packet"),
    ("session_min_duration_ms", "session_full_duration_ms"),
    ("min_long_queries", "full_long_queries"), ("min_session_packets", "full_session_packets"),
    ("min_regular_period_ms", "max_regular_period_ms"), ("min_baseline_ratio", "full_ratio"),
    ("min_ratio", "full_ratio"), ("min_history_hours", "baseline_hours"),
    ("min_attempts", "full_attempts"), ("min_uploads", "full_uploads"),
    ("min_upload_bytes", "full_upload_bytes"),
)  # fmt: skip
#: settings that must be at least 1 (counts, sizes and windows that cannot be empty)
_POSITIVE = (
    "window_ms", "max_events", "max_pairs", "baseline_hours", "max_destinations",
    "min_callbacks", "full_callbacks", "full_long_queries", "full_session_packets",
    "full_ratio", "session_full_duration_ms", "resolver_min_clients", "min_attempts",
    "full_attempts", "min_uploads", "full_uploads", "forget_after_ms",
)  # fmt: skip


def validate_section(name: str, section: object) -> str | None:
    """What is wrong with one section's values, as ``key = value: why``; None when all is well.

    Examples
    --------
    >>> validate_section("alerts", AlertConfig(high_at=0.95))
    'high_at = 0.95: must not be above critical_at = 0.9'
    >>> validate_section("beacon", BeaconConfig(weight_timing=0, weight_skew=0, weight_size=0,
    ...                  weight_bytes_per_packet=0, weight_count=0))
    'weight_* are all 0: at least one score part must count'
    >>> validate_section("site", SiteConfig(internal_networks=("10.0.0.0/33",)))
    "internal_networks = ('10.0.0.0/33',): '10.0.0.0/33' is not an address or CIDR"
    >>> validate_section("beacon", BeaconConfig()) is None
    True
    """
    values = {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}  # type: ignore[arg-type]
    for key, value in values.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            if value < 0:
                return f"{key} = {value!r}: must not be negative"
            if key in _UNIT and value > 1:
                return f"{key} = {value!r}: must be in [0, 1]"
            if key in _POSITIVE and value <= 0:
                return f"{key} = {value!r}: must be at least 1"
        elif key in _LISTS:
            problem = _LISTS[key](value)
            if problem:
                return f"{key} = {value!r}: {problem}"
    for low, high in _ORDER:
        if low in values and high in values and values[low] > values[high]:
            return f"{low} = {values[low]!r}: must not be above {high} = {values[high]!r}"
    for prefix, top in (("site_prefix_v4", 32), ("site_prefix_v6", 128)):
        if prefix in values and values[prefix] > top:
            return f"{prefix} = {values[prefix]!r}: must be in [0, {top}]"
    weights = [v for k, v in values.items() if k.startswith("weight_")]
    if weights and not any(weights):
        return "weight_* are all 0: at least one score part must count"
    return None


#: kind of alert → (section, attribute) holding the score it must reach to be an alert
ALERT_THRESHOLDS: dict[str, tuple[str, str]] = {
    "beacon": ("beacon", "alert_score"),
    "c2_long_session": ("beacon", "session_alert_score"),
    "dns_tunnel": ("dns", "alert_score"),
    "strobe": ("strobe", "alert_score"),
    "periodic_upload": ("upload", "alert_score"),
}


def explain_config(config: DetectorsConfig, min_score: float) -> DetectorsConfig:
    """The same detectors, asked to report every scored candidate down to ``min_score``.

    The near-miss API of the scorers: each one drops candidates below its own
    ``alert_score`` (see :data:`ALERT_THRESHOLDS`); lowering those to the floor
    makes it return them too, with unchanged scores (nothing else depends on
    them: beacon fan-out counts peers from ``fanout_min_raw``). Exfiltration,
    whose gate is a count of signs, reports hosts that passed the volume and
    asymmetry gates with any number of signs. :func:`is_alert` tells the real
    alerts from the near misses afterwards.

    Examples
    --------
    >>> c = explain_config(DetectorsConfig(), 0.3)
    >>> c.beacon.alert_score, c.beacon.session_alert_score, c.exfil.min_evidence
    (0.3, 0.3, 0)
    >>> explain_config(DetectorsConfig(), 0.9).beacon.alert_score  # never above the real one
    0.65
    """
    sections = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    for section, attribute in ALERT_THRESHOLDS.values():
        current = getattr(sections[section], attribute)
        sections[section] = dataclasses.replace(
            sections[section], **{attribute: min(current, min_score)}
        )
    sections["exfil"] = dataclasses.replace(sections["exfil"], min_evidence=0)
    return DetectorsConfig(**sections)


def is_alert(config: DetectorsConfig, alert: Alert) -> bool:
    """True when ``alert`` would be reported under ``config``; False for a near miss.

    Examples
    --------
    >>> near = Alert("beacon", "low", 0.4, "10.0.0.1", "192.0.2.1", 443, 6, 0, 1)
    >>> is_alert(DetectorsConfig(), near), is_alert(explain_config(DetectorsConfig(), 0.3), near)
    (False, True)
    """
    if alert.kind == "exfil":
        return alert.evidence.get("signs", 0) >= config.exfil.min_evidence
    if alert.kind not in ALERT_THRESHOLDS:
        return True
    section, attribute = ALERT_THRESHOLDS[alert.kind]
    return alert.score >= getattr(getattr(config, section), attribute)
