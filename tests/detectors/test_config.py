"""Detector configuration: the documented defaults file, overrides, and clear errors."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest

from silkwatch.connectors.config import load_config
from silkwatch.detectors.beacon import BeaconConfig
from silkwatch.detectors.config import DEFAULTS_PATH, ConfigError, DetectorsConfig


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


def test_list_settings_extend_the_defaults_and_a_table_replaces_them(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text(
        '[beacon]\nallow_networks = ["10.9.0.0/16", "168.63.129.16/32"]\n'
        "skip_dports = { replace = [53, 5723] }\n"
        '[site]\ninternal_networks = ["198.18.0.0/15"]\nscore_internal = true\n'
    )
    config = load_config(path)
    assert config.beacon.allow_networks == (
        "168.63.129.16/32", "169.254.169.254/32", "fd00:ec2::254/128", "10.9.0.0/16",
    )  # fmt: skip
    assert config.beacon.skip_dports == (53, 5723)
    assert config.site.internal_networks[-1] == "198.18.0.0/15"
    assert len(config.site.internal_networks) == 8
    assert config.site.score_internal is True


BAD_VALUES = [  # (section, the file's lines, what the one error line says)
    ("alerts", "high_at = 0.95", "high_at = 0.95: must not be above critical_at = 0.9"),
    ("alerts", "medium_at = -0.1", "medium_at = -0.1: must not be negative"),
    ("alerts", "critical_at = 1.5", "critical_at = 1.5: must be in [0, 1]"),
    ("beacon", "alert_score = 2", "alert_score = 2.0: must be in [0, 1]"),
    ("beacon", "min_callbacks = 0", "min_callbacks = 0: must be at least 1"),
    ("beacon", "min_callbacks = 30", "min_callbacks = 30: must not be above full_callbacks = 24"),
    ("exfil", "min_sent_bytes = -1", "min_sent_bytes = -1: must not be negative"),
    ("exfil", "weight_volume = 0\nweight_evidence = 0", "weight_* are all 0"),
    (
        "beacon",
        "weight_timing = 0\nweight_skew = 0\nweight_size = 0\n"
        "weight_bytes_per_packet = 0\nweight_count = 0",
        "weight_* are all 0: at least one score part must count",
    ),
    ("beacon", 'allow_networks = ["10.0.0.300/8"]', "'10.0.0.300/8' is not an address or CIDR"),
    ("site", 'internal_networks = { replace = ["nope"] }', "internal_networks = ('nope',)"),
    ("beacon", "allow_ports = [[6, 70000]]", "[6, 70000] is not [protocol 0-255, port 0-65535]"),
    ("beacon", "skip_dports = [-1]", "skip_dports = (53, -1): -1 is outside 0-65535"),
    ("beacon", "protocols = [300]", "protocols = (6, 17, 300): 300 is outside 0-255"),
    ("site", "site_prefix_v4 = 40", "site_prefix_v4 = 40: must be in [0, 32]"),
    ("site", "score_internal = 1", "score_internal = 1: expected bool"),
    ("beacon", "allow_ports = { add = [] }", "a table here must be { replace = [...] }"),
    ("strobe", "min_attempts = 5000", "min_attempts = 5000: must not be above full_attempts"),
    ("pairs", "max_pairs = 0", "max_pairs = 0: must be at least 1"),
]


@pytest.mark.parametrize(("section", "lines", "message"), BAD_VALUES)
def test_every_setting_is_validated_with_one_line(tmp_path, section, lines, message):
    path = tmp_path / "bad.toml"
    path.write_text(f"[{section}]\n{lines}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"detector config {path}: [{section}] ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
