"""The top-level command line: fast listing, --version, one import per command."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

from silkwatch.cli import COMMANDS, SUMMARIES, main, version


def registered_help(module: str) -> str:
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    importlib.import_module(module).register(subparsers)
    (choice,) = subparsers._choices_actions
    return choice.help


def test_listing_summaries_are_the_commands_own_help():
    """``silkwatch --help`` lists commands without importing them; the text must not drift."""
    for name, summary in SUMMARIES.items():
        assert summary == registered_help(COMMANDS[name]), name


def test_top_level_help_imports_no_command():
    code = (
        "import sys; from silkwatch.cli import build_parser; build_parser(None); "
        "print(sorted(m for m in sys.modules if m.startswith('silkwatch.commands.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    listed_by_import = sorted(f"{COMMANDS[name]}" for name in COMMANDS if name not in SUMMARIES)
    assert done.stdout.strip() == str(listed_by_import)


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert capsys.readouterr().out == f"silkwatch {version()}\n"
    assert version() == importlib.metadata.version("silkwatch")
