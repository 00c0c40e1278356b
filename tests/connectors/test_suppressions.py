"""The suppression file: read, applied, re-read on change, broken edits keep the last rules."""

from __future__ import annotations

import logging
import os

import pytest

from silkwatch.connectors.suppressions import SuppressionFile, read_suppressions
from silkwatch.detectors.alerts import Alert
from silkwatch.detectors.site import SuppressionError

SCOM = Alert("beacon", "medium", 0.67, "192.168.40.20", "10.0.40.54", 5723, 6, 0, 1_434_553_200_000)
C2 = Alert("beacon", "high", 0.85, "192.168.1.115", "41.108.179.197", 1177, 6, 0, 1_434_553_200_000)

RULES = """
[[suppress]]
dip = "10.0.40.54"
dport = 5723
kind = "beacon"
expires = 2026-03-31
comment = "SCOM agent heartbeat"
"""


def _bump(path, text):
    """Rewrite the file and move its mtime on, so a change is seen whatever the clock."""
    before = os.stat(path).st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_rules_are_read_and_applied(tmp_path):
    path = tmp_path / "suppress.toml"
    path.write_text(RULES)
    [rule] = read_suppressions(path)
    assert (rule.dip, rule.dport, rule.kind, rule.expires_ms, rule.comment) == (
        "10.0.40.54", 5723, "beacon", 1_774_915_200_000, "SCOM agent heartbeat",
    )  # fmt: skip
    rules = SuppressionFile(path)
    assert rules.apply([SCOM, C2]) == [C2]
    assert rules.suppressed == 1


def test_an_edit_is_picked_up_and_a_broken_edit_keeps_the_last_rules(tmp_path, caplog):
    path = tmp_path / "suppress.toml"
    path.write_text(RULES)
    rules = SuppressionFile(path)
    _bump(path, RULES + '\n[[suppress]]\ndip = "41.108.179.0/24"\n')
    assert rules.apply([SCOM, C2]) == []
    with caplog.at_level(logging.WARNING):
        _bump(path, "[[suppress]]\ndport = 99999\n")
        assert rules.apply([SCOM, C2]) == []
    assert (
        "rule 1: dport = 99999: expected a port 0-65535; keeping the 2 previous rules"
        in caplog.text
    )
    _bump(path, "")
    assert rules.apply([SCOM, C2]) == [SCOM, C2]
    path.unlink()
    assert rules.apply([SCOM]) == [SCOM]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[suppress]\ndport = 1\n", "suppress must be an array of tables"),
        ("[[suppres]]\ndport = 1\n", "unknown key(s) ['suppres']"),
        ("[[suppress]\n", "Expected ']]'"),
        ('[[suppress]]\nexpires = "2026-13-01"\ndport = 1\n', "rule 1: expires = '2026-13-01'"),
    ],
)
def test_a_bad_file_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SuppressionError) as caught:
        SuppressionFile(path)
    assert str(caught.value).startswith(f"suppressions {path}: ")
    assert message in str(caught.value)


def test_a_missing_file_names_its_path(tmp_path):
    with pytest.raises(SuppressionError, match=r"nothere\.toml"):
        read_suppressions(tmp_path / "nothere.toml")
