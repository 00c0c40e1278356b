"""The whole evaluation: run every part, and put the markdown report into its document.

The data folder is the team's shared ``data`` (``real/`` with the captures and
flow files the ground truth describes, ``silk/fccx`` for the FCCX hour). From
a checkout it defaults to ``../shared/data`` beside the repository; an
installed copy is told where it is with ``--data``.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from pathlib import Path

from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.evaluation.cases import report_cases, report_fccx, run_cases, run_fccx
from silkwatch.evaluation.real import alert_text, evaluate_real, report_real
from silkwatch.evaluation.rita import report_rita
from silkwatch.evaluation.sweep import SweepResult, beacon_sweep, exfil_sweep, report_sweep

#: the source checkout this package sits in (when it is one: see :func:`commit_id`)
REPO = Path(__file__).resolve().parents[2]


class EvalDataError(SilkwatchError):
    """The data folder (or its ``real/``) is not where the evaluation looks for it."""

    reason = "eval_data_missing"


def data_folder(given: Path | None) -> Path:
    """The data folder to evaluate on: ``given``, else the checkout's ``../shared/data``.

    >>> data_folder(Path("/nonexistent/data"))
    Traceback (most recent call last):
    ...
    silkwatch.evaluation.harness.EvalDataError: eval: no folder /nonexistent/data/real (the data...
    """
    data = given if given is not None else (REPO / ".." / "shared" / "data").resolve()
    if not (data / "real").is_dir():
        raise EvalDataError(
            f"eval: no folder {data / 'real'} (the data folder holds real/ and silk/; "
            "give it with --data DIR)"
        )
    return data


def commit_id() -> str:
    """The commit the run was made on, ``+dirty`` when the code it ran differs from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return done.stdout.strip()

    if not (REPO / ".git").exists():
        return "unknown (not run from a checkout)"
    changed = git("status", "--porcelain", "--", "detectors", "streams", "connectors")
    return git("rev-parse", "HEAD") + ("+dirty" if changed else "")


BEGIN = "<!-- BEGIN bench/evaluate.py output: everything up to END is regenerated -->"
END = "<!-- END bench/evaluate.py output -->"


def write_report(path: Path, text: str) -> None:
    """Replace the generated part of ``path`` (between the markers), keeping the prose."""
    current = path.read_text() if path.exists() else f"{BEGIN}\n{END}\n"
    head, _, rest = current.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")


def evaluate(data: Path, *, sweep: bool = True, seeds: int = 2, hosts: int = 60) -> str:
    """Run the whole evaluation; the markdown report.

    :param data: the data folder (see :func:`data_folder`)
    :param sweep: also run the synthetic sweeps (minutes). Default - True
    :param seeds: synthetic days per sweep cell. Default - 2
    :param hosts: hosts per synthetic day. Default - 60
    """
    from silkwatch.streams.embedded import detect

    started = time.perf_counter()
    results = evaluate_real(data / "real", detect)
    lines = [
        f"Run on commit `{commit_id()}` at {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC "
        f"with `python -m bench.evaluate`.",
        "",
        *report_real(results),
    ]
    for r in results:
        if r.alerts:
            lines += ["", f"Alerts on `{r.capture.path}`:", ""]
            lines += [f"* {alert_text(a)}" for a in r.alerts]
    if (data / "silk").is_dir():
        lines += ["", *report_fccx(*run_fccx(detect, data))]
    lines += ["", *report_rita()]
    if sweep:
        lines += ["", *report_cases(run_cases(detect, hosts=hosts), 1, hosts)]
        seed_list = list(range(1, seeds + 1))
        result = SweepResult()
        beacon_sweep(detect, seed_list, hosts, result)
        exfil_sweep(detect, seed_list, hosts, result)
        lines += ["", *report_sweep(result, seed_list, hosts)]
    lines += ["", f"Harness wall time: {time.perf_counter() - started:.0f} s."]
    return "\n".join(lines) + "\n"
