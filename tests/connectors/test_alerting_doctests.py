"""The examples in the docstrings of the output modules run (``testpaths`` collects
doctests from ``detectors/`` only, so these are run here)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "connectors.alerting.delivery",
    "connectors.alerting.grafana",
    "connectors.alerting.grouping",
    "connectors.alerting.secrets",
    "connectors.alerting.text",
    "connectors.geoip",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testmod(importlib.import_module(name), optionflags=flags)
    assert result.attempted > 0
    assert result.failed == 0
