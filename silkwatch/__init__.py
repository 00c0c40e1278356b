"""silkwatch: continuous anomaly detection on SiLK / NetFlow flow records."""

import os as _os
import sys as _sys

__version__ = "0.1.0"


#: the repository's top-level folders that install as ``silkwatch.<folder>``
MAPPED_FOLDERS = ("detectors", "connectors", "streams", "grafana")


class _CheckoutFinder:
    """Finds ``silkwatch.detectors``, ``.connectors``, ``.streams`` and ``.grafana`` in a
    source checkout that is not installed, where they are the folders beside this one.

    silkwatch installs as one top-level package: pyproject.toml maps the repository's
    top-level folders under it (``package-dir``: ``silkwatch.streams`` <- ``streams/``),
    so site-packages gains only ``silkwatch`` and a ``streams`` or ``grafana`` of another
    distribution can sit beside it. ``pip install .`` copies the folders into
    ``silkwatch/``; an editable install (``pip install -e .``, as ``make test`` does)
    maps them with setuptools' own import hook. A bare checkout (``python -m silkwatch``
    from the root, a bench script that puts the root on ``sys.path``) has neither, so
    this finder maps exactly these four names to the folders beside ``silkwatch/``. It is
    installed only in a checkout (``pyproject.toml`` beside this package's folder, and the
    four folders not inside it), never from site-packages, where a top-level ``streams``
    belongs to another distribution. Adding the root itself to ``__path__`` would work
    too, but would make ``silkwatch.tests``, ``silkwatch.docs``, ... importable as well.
    """

    def __init__(self, root: str) -> None:
        self.root = root

    def find_spec(self, fullname: str, path: object = None, target: object = None):
        parent, _, name = fullname.rpartition(".")
        if parent != __name__ or name not in MAPPED_FOLDERS:
            return None
        from importlib.machinery import PathFinder

        return PathFinder.find_spec(fullname, [self.root])


def _install_checkout_finder() -> None:
    here = _os.path.dirname(_os.path.abspath(__file__))
    root = _os.path.dirname(here)
    in_checkout = _os.path.isfile(_os.path.join(root, "pyproject.toml"))
    if not in_checkout or _os.path.isdir(_os.path.join(here, MAPPED_FOLDERS[0])):
        return
    if not any(type(finder).__name__ == "_CheckoutFinder" for finder in _sys.meta_path):
        _sys.meta_path.append(_CheckoutFinder(root))


_install_checkout_finder()
