"""``silkwatch cut|count|uniq|stats|filter`` on 8 M flows, against SiLK's and nfdump's times.

SiLK cannot be installed from a package here, so its figures are FIXED reference
numbers: the rw tools' times from issue 13, measured on the same machine class
on 8 M records (``rwcut`` on an LZO1X file; the others on the same day). They
are not re-measured by this script; the ratios against them say how far we are
from the goal of <= 1.0x SiLK. nfdump runs in this same run wherever it has
the same query (print every record, aggregate by source address, top 10
sources by bytes, keep TCP), on the same flows exported to a loopback nfcapd
(see ``bench_stats_vs_nfdump.prepare``).

Every silkwatch command runs as an analyst runs it (a new process, output to
/dev/null) on the uncompressed SiLK file and on an LZO1X copy; the commands
run in interleaved rounds so load drifts hit them all alike. ``--baseline DIR``
also runs the same commands from another source tree (an earlier commit, its C
kernels built in place) in the same rounds: a before/after measured together.

    .venv/bin/python bench/bench_vs_silk.py [--flows 8000000] [--repeat 3] [--workdir DIR]
    git worktree add /tmp/before REV && cp connectors/*.so /tmp/before/connectors/ \
        && cp detectors/*.so /tmp/before/detectors/   # kernels of the same sources
    .venv/bin/python bench/bench_vs_silk.py --commands count --baseline /tmp/before
    .venv/bin/python bench/bench_vs_silk.py --commands count,uniq,stats --one-cpu
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_stats_vs_nfdump import flows_on_disk, nfdump_missing, timed_rounds

from silkwatch.connectors.silk import Compression, SilkWriter, read_batches, read_header

#: rw tool times (seconds) on 8 M records from issue 13, (low, high) of the runs reported;
#: None where the issue gives no figure
SILK_SECONDS: dict[str, tuple[float, float] | None] = {
    "cut": (17.3, 17.3),  # rwcut, LZO1X file
    "count": (0.30, 0.30),
    "uniq": (1.1, 1.2),
    "stats": (0.76, 0.85),
    "filter": None,
}

#: silkwatch arguments of each command (the input file is appended; outputs go to /dev/null)
QUERIES: dict[str, list[str]] = {
    "cut": ["cut"],
    "count": ["count"],
    "uniq": ["uniq", "--fields=sIP"],
    "stats": ["stats", "--fields=sIP", "--values=bytes", "--count=10"],
    "filter": ["filter", "--proto=6", "--pass=/dev/null"],
}

#: nfdump's run of the same query over the nfcapd folder (None: no equivalent)
NFDUMP: dict[str, list[str] | None] = {
    "cut": ["-o", "csv"],  # every record as text
    "count": None,  # nfdump has no time bins
    "uniq": ["-A", "srcip", "-o", "csv"],  # aggregate by source address
    "stats": ["-s", "srcip/bytes", "-n", "10"],
    "filter": ["-w", "/dev/null", "proto tcp"],
}


def lzo_copy(source: Path, target: Path) -> Path:
    """The same records as an LZO1X-compressed SiLK file (the compression SiLK sites use)."""
    header = read_header(source)
    with SilkWriter(
        target,
        file_format=header.file_format,
        rec_version=header.rec_version,
        compression=Compression.LZO1X,
    ) as writer:
        for batch in read_batches(source):
            writer.write(batch)
    return target


def _span(low: float, high: float, unit: str = "") -> str:
    return f"{low:.2f}{unit}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}-{high:.2f}{unit}"


#: ``python -m silkwatch`` for a source tree on PYTHONPATH: the editable install's import
#: hook comes before the tree's own (``silkwatch._CheckoutFinder``) and would map
#: ``silkwatch.detectors``, ``.connectors``... to the working tree, mixing the two trees
FROM_TREE = (
    "import sys; "
    "sys.meta_path[:] = [f for f in sys.meta_path if not f.__module__.startswith('__editable__')]; "
    "from silkwatch.cli import main; sys.exit(main())"
)


def run_quietly(
    argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> Callable[[], object]:
    """Run ``argv``, its output discarded."""
    return lambda: subprocess.run(argv, stdout=subprocess.DEVNULL, check=True, env=env, cwd=cwd)


def run_silkwatch(
    args: list[str], pycache: Path, tree: Path | None = None, one_cpu: bool = False
) -> Callable[[], object]:
    """Run ``silkwatch ARGS`` as installed, or all of it from source tree ``tree``.

    With ``one_cpu`` it runs on one core (``taskset``), as when the other core is busy:
    ``count``, ``uniq`` and ``stats`` read on a second thread, which then takes turns
    with the command's own work instead of running beside it.

    Its modules are compiled once into ``pycache``, as ``pip install`` compiles them:
    with ``PYTHONDONTWRITEBYTECODE`` set (or stale caches in a tree being edited) every
    run would compile each module again, ~0.1 s that no installed silkwatch pays.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    pinned = ["taskset", "--cpu-list", "0"] if one_cpu else []
    if tree is None:
        return run_quietly([*pinned, sys.executable, "-m", "silkwatch", *args], env)
    env["PYTHONPATH"] = str(tree)
    # from the tree's root: ``-c`` puts the working directory first on sys.path
    return run_quietly([*pinned, sys.executable, "-c", FROM_TREE, *args], env, cwd=tree)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--flows", type=int, default=8_000_000)
    parser.add_argument("--hosts", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep the data here (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="use the flows in --workdir")
    parser.add_argument(
        "--commands", default=",".join(QUERIES), help="subset to run (default: all five)"
    )
    parser.add_argument(
        "--baseline", type=Path, help="also run the commands from this source tree (before)"
    )
    parser.add_argument(
        "--one-cpu", action="store_true", help="run silkwatch on one core (the other one busy)"
    )
    options = parser.parse_args()
    if nfdump_missing():
        return 2
    commands = options.commands.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-silk-") as scratch:
        workdir = (options.workdir or Path(scratch)).resolve()  # the old tree runs from its root
        workdir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        plain, nf_dir = flows_on_disk(options, workdir, 1.0)
        lzo = workdir / "flows-lzo.rw"
        if not (options.reuse and lzo.exists()):
            lzo_copy(plain, lzo)
        print(
            f"prepared {options.flows:,} flows in {time.perf_counter() - started:.0f} s: "
            f"{plain.stat().st_size / 1e6:.0f} MB plain, {lzo.stat().st_size / 1e6:.0f} MB LZO1X"
        )
        actions: dict[str, Callable[[], object]] = {}
        pycache = Path(scratch) / "pycache"
        for command in commands:
            for label, path in (("plain", plain), ("lzo1x", lzo)):
                args = [*QUERIES[command], str(path)]
                actions[f"{command} {label}"] = run_silkwatch(args, pycache, None, options.one_cpu)
                if options.baseline:
                    before = run_silkwatch(args, pycache, options.baseline, options.one_cpu)
                    actions[f"{command} {label} before"] = before
            if NFDUMP[command] is not None:
                argv = ["nfdump", "-R", str(nf_dir), *NFDUMP[command]]
                actions[f"{command} nfdump"] = run_quietly(argv)
        timed_rounds(actions, 1)  # untimed: modules compiled, files in the page cache
        load_before = os.getloadavg()[0]
        results = timed_rounds(actions, options.repeat)
    print(
        f"\nmedian of {options.repeat} interleaved rounds, {options.flows:,} flows"
        f"{', silkwatch on one core' if options.one_cpu else ''} "
        f"(1-minute load {load_before:.2f} before the rounds, {os.getloadavg()[0]:.2f} after)"
    )
    print(f"  {'':16s} {'silkwatch':>9s}  {'SiLK (fixed)':>12s}  {'x SiLK':>11s}  {'nfdump':>7s}")
    for command in commands:
        nfdump = results.get(f"{command} nfdump")
        nfdump_s = statistics.median(nfdump) if nfdump else None
        for label in ("plain", "lzo1x"):
            median = statistics.median(results[f"{command} {label}"])
            silk = SILK_SECONDS[command]
            silk_text = "n/a" if silk is None else _span(*silk, unit=" s")
            ratio = "n/a" if silk is None else _span(median / silk[1], median / silk[0])
            versus = f"{nfdump_s:6.2f} s (x{median / nfdump_s:.2f})" if nfdump_s else "n/a"
            print(
                f"  {command + ' ' + label:16s} {median:7.2f} s  {silk_text:>12s}  {ratio:>11s}  "
                f"{versus}"
            )
            before = results.get(f"{command} {label} before")
            if before:
                was = statistics.median(before)
                print(f"  {'  before':16s} {was:7.2f} s  {'':26s}  now x{median / was:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
