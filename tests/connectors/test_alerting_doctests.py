"""The examples in the docstrings of the output modules run (``testpaths`` collects
doctests from ``detectors/`` only, so these are run here)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "silkwatch.connectors.alerting.delivery",
    "silkwatch.connectors.alerting.grafana",
    "silkwatch.connectors.alerting.grouping",
    "silkwatch.connectors.alerting.secrets",
    "silkwatch.connectors.alerting.text",
    "silkwatch.connectors.geoip",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testmod(importlib.import_module(name), optionflags=flags)
    assert result.attempted > 0
    assert result.failed == 0
