"""``python -m bench.evaluate``: the evaluation, as ``silkwatch -v eval`` runs it.

The harness is part of the product (:mod:`silkwatch.evaluation`); this entry
point stays for the habit of running it from the repository root::

    .venv/bin/python -m bench.evaluate                      # print the report
    .venv/bin/python -m bench.evaluate --write docs/evaluation.md
    .venv/bin/python -m bench.evaluate --no-sweep           # real files only
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from silkwatch.cli import main as silkwatch


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``silkwatch -v eval`` with these arguments (progress logged on stderr)."""
    return silkwatch(["-v", "eval", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
