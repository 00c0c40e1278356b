"""The plot modules' docstring examples run (``testpaths`` does not reach ``silkwatch/``)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["page", "line", "timeline", "report", "summary", "country"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"silkwatch.plots.{name}")
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    failed, attempted = doctest.testmod(module, optionflags=flags)
    assert (failed, attempted > 0) == (0, True)
