"""Process settings applied by every command."""

from __future__ import annotations

import subprocess
import sys


def run_python(code: str, **env: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()


CODE = "import os; from silkwatch.runtime import tune_process; tune_process(); " + (
    "print(os.environ['OPENBLAS_NUM_THREADS'])"
)


def test_one_blas_thread_unless_the_user_says_otherwise():
    assert run_python(CODE) == "1"
    assert run_python(CODE, OPENBLAS_NUM_THREADS="4") == "4"


def test_objects_made_before_the_command_are_frozen():
    code = "import gc; from silkwatch.runtime import freeze_imports; " + (
        "before = gc.get_freeze_count(); freeze_imports(); print(before, gc.get_freeze_count() > 0)"
    )
    assert run_python(code) == "0 True"
