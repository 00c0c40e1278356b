"""Doctests of the folders mapped under ``silkwatch`` run under their installed names.

pyproject.toml installs ``detectors/`` as ``silkwatch.detectors`` (``connectors/``,
``streams/`` and ``grafana/`` likewise; see ``silkwatch/__init__.py``). For
``--doctest-modules`` pytest names a module by its folders (``detectors/site.py`` would
be ``detectors.site``): a second copy of the module, under a name that is not installed,
whose tracebacks print ``detectors.site.SuppressionError``. So the doctest collector of
those folders imports each module by its installed name instead.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from _pytest.doctest import DoctestModule  # pytest has no public name for it

MAPPED = ("detectors", "connectors", "streams", "grafana")
ROOT = Path(__file__).resolve().parent


def installed_name(path: Path) -> str | None:
    """``silkwatch.detectors.site`` for ``detectors/site.py``; None outside the folders.

    >>> installed_name(ROOT / "streams" / "__init__.py"), installed_name(ROOT / "bench" / "x.py")
    ('silkwatch.streams', None)
    """
    try:
        parts = path.resolve().relative_to(ROOT).with_suffix("").parts
    except ValueError:
        return None
    if len(parts) < 2 or parts[0] not in MAPPED:
        return None
    return ".".join(("silkwatch", *parts[: -1 if parts[-1] == "__init__" else None]))


class InstalledNameDoctestModule(DoctestModule):
    """A doctest module imported by its installed name (``silkwatch.detectors.site``)."""

    def _getobj(self):
        return importlib.import_module(installed_name(self.path))


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    collected = yield
    if installed_name(file_path) is None:
        return collected
    return [
        InstalledNameDoctestModule.from_parent(parent, path=file_path)
        if type(node) is DoctestModule
        else node
        for node in collected
    ]
