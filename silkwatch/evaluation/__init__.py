"""The evaluation: what the detector finds in the team's real captures and in synthetic sweeps.

Part of the product (``silkwatch eval``) so that it runs from an installed copy
against any copy of the data folder; ``bench/`` keeps only benchmarks.
:mod:`~silkwatch.evaluation.harness` runs the parts and writes the report:
:mod:`~silkwatch.evaluation.real` (every file of ``real/`` against
:mod:`~silkwatch.evaluation.truth`), :mod:`~silkwatch.evaluation.cases` (the
FCCX hour and issue 12's synthetic cases), :mod:`~silkwatch.evaluation.rita`
(RITA's published beacon series) and :mod:`~silkwatch.evaluation.sweep`.
"""
