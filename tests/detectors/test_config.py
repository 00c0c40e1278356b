"""Detector configuration: the documented defaults file, overrides, and clear errors."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest

from detectors.beacon import BeaconConfig
from detectors.config import DEFAULTS_PATH, ConfigError, DetectorsConfig, load_config


def test_defaults_file_equals_the_code_defaults():
    assert load_config(DEFAULTS_PATH) == DetectorsConfig() == load_config(None)


def test_defaults_file_documents_every_setting_of_every_section():
    document = tomllib.loads(DEFAULTS_PATH.read_text())
    defaults = DetectorsConfig()
    expected = {
        section.name: sorted(f.name for f in dataclasses.fields(getattr(defaults, section.name)))
        for section in dataclasses.fields(defaults)
    }
    assert {name: sorted(values) for name, values in document.items()} == expected


def test_every_default_line_has_a_comment():
    lines = [line for line in DEFAULTS_PATH.read_text().splitlines() if "=" in line]
    undocumented = [line for line in lines if "#" not in line]
    assert undocumented == []


def test_overrides_keep_other_defaults_and_nest_tuples(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text(
        "[beacon]\nalert_score = 1\nallow_ports = [[17, 123], [6, 8443]]\n"
        "[dns]\nlong_query_bytes = 150\n[alerts]\nrescore_step = 0.2\n"
    )
    config = load_config(path)
    assert config.beacon == dataclasses.replace(
        BeaconConfig(), alert_score=1.0, allow_ports=((17, 123), (6, 8443))
    )
    assert (config.dns.long_query_bytes, config.alerts.rescore_step) == (150, 0.2)
    assert config.exfil == DetectorsConfig().exfil


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[beacons]\n", "unknown section(s) ['beacons']"),
        ("[beacon]\nalert_scor = 0.5\n", "[beacon] has unknown key(s) ['alert_scor']"),
        ('[beacon]\nmin_callbacks = "12"\n', "[beacon] min_callbacks = '12': expected int"),
        ("[beacon]\nmin_callbacks = 12.5\n", "[beacon] min_callbacks = 12.5: expected int"),
        ('[beacon]\nallow_ports = [["udp", 123]]\n', "[beacon] allow_ports = [['udp', 123]]"),
        ("[beacon]\nprotocols = 6\n", "[beacon] protocols = 6: expected tuple"),
        ("[beacon\n", "Expected ']'"),
    ],
)
def test_bad_files_are_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"detector config {path}: ")
    assert message in str(caught.value)
    assert caught.value.reason == "bad_config"


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(ConfigError, match=r"nothere\.toml"):
        load_config(tmp_path / "nothere.toml")
