"""SiLK's own test suite (rwcut, rwcount, rwuniq, rwstats of SiLK 3.19.1), run with silkwatch.

Each case of ``shared/data/silk/silk-suite/cases.json`` runs with ``silkwatch
cut|count|uniq|stats|filter|sort`` in place of the rw tools, in the suite's
folder with the case's environment, and the MD5 of its whole standard output
must be SiLK's. The commands run in this process (their ``main`` with stdin and
stdout swapped), a pipeline stage after stage, so 180 cases cost no process
start-ups. Cases still failing are listed in :data:`EXPECTED_FAILURES` with the
reason (the same list as ``docs/silk-compatibility.md``): a listed case that
starts passing fails too, so the list stays true. The pass count is printed in
the pytest summary (``tests/conftest.py``).
"""

from __future__ import annotations

import hashlib
import io
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from silkwatch.cli import COMMANDS, main
from tests.conftest import SILK_SUITE_RESULTS

SUITE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "silk" / "silk-suite"
CASES = json.loads((SUITE / "cases.json").read_text()) if (SUITE / "cases.json").is_file() else []
TOOLS = {
    "rwcut": "cut",
    "rwcount": "count",
    "rwuniq": "uniq",
    "rwstats": "stats",
    "rwfilter": "filter",
    "rwsort": "sort",
}

_SKPLUGIN = "skplugin-test.so is SiLK's C test plug-in (its fields exist only there)"
#: case → why it still fails (docs/silk-compatibility.md lists the same)
EXPECTED_FAILURES: dict[str, str] = {
    "rwcut-skplugin-test": _SKPLUGIN,
    "rwstats-skplugin-test": _SKPLUGIN,
    "rwuniq-skplugin-test": _SKPLUGIN,
}


@dataclass
class Outcome:
    md5: str
    size: int
    head: bytes
    status: int


class _HashingSink(io.RawIOBase):
    """A stdout that keeps the MD5, the size and the first MiB of what is written."""

    def __init__(self, keep_all: bool) -> None:
        self.md5 = hashlib.md5()
        self.size = 0
        self.keep_all = keep_all
        self.kept = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        self.md5.update(data)
        self.size += len(data)
        if self.keep_all or len(self.kept) < 1 << 20:
            self.kept += data
        return len(data)


def _stage(argv: list[str], stdin: bytes, *, keep_all: bool) -> tuple[_HashingSink, int]:
    """Run one silkwatch command in this process with ``stdin`` as its standard input."""
    sink = _HashingSink(keep_all)
    saved = sys.stdin, sys.stdout
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO(stdin)))
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(sink), write_through=True)
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse refused a switch: the case fails, it is no test error
        status = exc.code if isinstance(exc.code, int) else 2
    try:
        sys.stdout.flush()
    finally:
        sys.stdin, sys.stdout = saved
    return sink, status


def run_case(case: dict) -> Outcome:
    """Run a case's pipeline with silkwatch; the MD5 of the last stage's output."""
    stages = [shlex.split(part) for part in case["command"].split("|")]
    stdin = b""
    sort_lines = False
    if stages[0][0] == "cat":
        stdin = Path(stages.pop(0)[1]).read_bytes()
    if stages[-1] == ["sort"]:
        stages.pop()
        sort_lines = True
    sink, status = None, 0
    for number, words in enumerate(stages):
        argv: list[str] = []
        skip = False
        for word in words:
            if skip:
                skip = False
            elif word == "<":
                skip = True
                stdin = Path(words[words.index("<") + 1]).read_bytes()
            elif word.startswith("2>"):
                continue
            else:
                argv.append(word)
        tool = TOOLS.get(argv[0])
        if tool not in COMMANDS:
            return Outcome("", 0, b"", 127)
        last = number == len(stages) - 1
        sink, status = _stage([tool, *argv[1:]], stdin, keep_all=not last or sort_lines)
        stdin = bytes(sink.kept)
    assert sink is not None
    if sort_lines:
        lines = bytes(sink.kept).splitlines(keepends=True)
        data = b"".join(sorted(lines))
        return Outcome(hashlib.md5(data).hexdigest(), len(data), data[: 1 << 20], status)
    return Outcome(sink.md5.hexdigest(), sink.size, bytes(sink.kept), status)


def _first_difference(case: dict, head: bytes) -> str:
    expected = (SUITE / case["expected"]).read_bytes().splitlines()
    for number, (got, want) in enumerate(zip(head.splitlines(), expected, strict=False), 1):
        if got != want:
            return f"line {number}: got {got[:120]!r}, SiLK {want[:120]!r}"
    return f"the first lines agree ({len(expected)} compared)"


@pytest.fixture
def suite_env(monkeypatch: pytest.MonkeyPatch):
    """The suite's folder as working directory; SiLK's variables unset unless a case sets them."""
    for name in ("SILK_CONFIG_FILE", "SILK_IPV6_POLICY", "SILK_TIMESTAMP_FORMAT", "SILK_CLOBBER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(SUITE)
    return monkeypatch


@pytest.mark.skipif(not CASES, reason=f"SiLK suite missing: {SUITE}")
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_silk_suite_case(case: dict, suite_env: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    for name, value in case["env"].items():
        suite_env.setenv(name, value)
    results = request.config.stash.setdefault(SILK_SUITE_RESULTS, {})
    results[case["name"]] = False
    outcome = run_case(case)
    passed = results[case["name"]] = outcome.md5 == case["md5"]
    reason = EXPECTED_FAILURES.get(case["name"])
    if reason is not None:
        assert not passed, f"{case['name']} passes now: remove it from EXPECTED_FAILURES ({reason})"
        return
    assert passed, (
        f"{case['command']}: MD5 {outcome.md5} (exit {outcome.status}, {outcome.size} bytes), "
        f"SiLK {case['md5']} ({case['bytes']} bytes); {_first_difference(case, outcome.head)}"
    )


def test_expected_failures_name_real_cases():
    assert set(EXPECTED_FAILURES) <= {case["name"] for case in CASES}
