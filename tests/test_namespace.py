"""silkwatch installs as one top-level package: pyproject.toml maps the repository's
folders under it (``silkwatch.streams`` <- ``streams/``), and a bare checkout finds them
through ``silkwatch/__init__.py``."""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import silkwatch

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def package_folders() -> list[str]:
    """Every folder to install, by installed name: the ones holding a module or a
    package-data file, and the folders above them."""
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["*"]
    found = set()
    for top in ("silkwatch", *silkwatch.MAPPED_FOLDERS):
        for dirpath, dirnames, filenames in os.walk(ROOT / top):
            dirnames[:] = [d for d in dirnames if d.isidentifier() and d != "__pycache__"]
            if not any(
                name.endswith(".py") or any(fnmatch.fnmatch(name, p) for p in patterns)
                for name in filenames
            ):
                continue
            parts = Path(dirpath).relative_to(ROOT).parts
            for depth in range(1, len(parts) + 1):
                named = parts[:depth]
                found.add(".".join(named if named[0] == "silkwatch" else ("silkwatch", *named)))
    return sorted(found)


def test_pyproject_maps_every_folder_under_silkwatch():
    setuptools = PYPROJECT["tool"]["setuptools"]
    mapped = {f"silkwatch.{folder}": folder for folder in silkwatch.MAPPED_FOLDERS}
    assert setuptools["package-dir"] == {"silkwatch": "silkwatch", **mapped}
    assert setuptools["packages"] == package_folders()
    assert all(ext["name"].startswith("silkwatch.") for ext in setuptools["ext-modules"])


def test_the_mapped_packages_are_the_checkout_folders():
    for folder in silkwatch.MAPPED_FOLDERS:
        origin = importlib.util.find_spec(f"silkwatch.{folder}").origin
        assert Path(origin).resolve() == ROOT / folder / "__init__.py"


def test_a_bare_checkout_finds_them():
    """No site-packages (``-S``: no install, no editable hook), run from the root."""
    code = "import importlib.util as u; print(u.find_spec('silkwatch.streams.app').origin)"
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert Path(done.stdout.strip()).resolve() == ROOT / "streams" / "app.py"
