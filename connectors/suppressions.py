"""The analyst's suppression file: read it, and read it again when it changes.

A site keeps its accepted noise in one TOML file that every runner (``detect``,
the embedded stream, the worker) applies to its alerts before they are sent::

    [[suppress]]
    dip = "10.0.40.54"
    dport = 5723
    kind = "beacon"
    expires = 2026-03-31          # optional: the rule stops applying then (UTC)
    comment = "SCOM agent heartbeat, ticket 4711"

Matching is pure and lives in :mod:`silkwatch.detectors.site` (:class:`Suppression`);
this module only touches the file. A long-running worker calls
:meth:`SuppressionFile.apply` per batch of alerts: the file is re-read when its
modification time or size changes, so an analyst's edit takes effect without
a restart. A broken edit keeps the previous rules and logs one line; a file
broken from the start is an error, like a bad ``--config``.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path

from silkwatch.detectors.alerts import Alert
from silkwatch.detectors.site import Suppression, SuppressionError, parse_suppressions, suppress

logger = logging.getLogger(__name__)


def read_suppressions(path: Path | str) -> tuple[Suppression, ...]:
    """The rules of a suppression file; one clear error line when it cannot be used.

    An empty file, or one without ``[[suppress]]`` tables, has no rules.
    """
    try:
        document = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SuppressionError(str(path), str(exc)) from exc
    unknown = set(document) - {"suppress"}
    if unknown:
        raise SuppressionError(
            str(path), f"unknown key(s) {sorted(unknown)}; rules are [[suppress]] tables"
        )
    rules = document.get("suppress", [])
    if not isinstance(rules, list):
        raise SuppressionError(str(path), "suppress must be an array of tables ([[suppress]])")
    return parse_suppressions(rules, source=str(path))


class SuppressionFile:
    """A suppression file kept current: re-read whenever it changes on disk.

    :param path: the TOML file. It must be readable and valid when this
        object is made; later broken edits or a removed file keep the last
        good rules (logged once per change).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._stamp = self._stat()
        self._rules = read_suppressions(self.path)
        self.suppressed = 0

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    @property
    def rules(self) -> tuple[Suppression, ...]:
        """The current rules, re-read first if the file changed since the last look."""
        stamp = self._stat()
        if stamp != self._stamp:
            self._stamp = stamp
            if stamp is None:
                logger.warning(
                    "suppressions path=%s missing: keeping %d rules", self.path, len(self._rules)
                )
            else:
                try:
                    self._rules = read_suppressions(self.path)
                    logger.info(
                        "suppressions path=%s reloaded rules=%d", self.path, len(self._rules)
                    )
                except SuppressionError as exc:
                    logger.warning("%s; keeping the %d previous rules", exc, len(self._rules))
        return self._rules

    def apply(self, alerts: Iterable[Alert]) -> list[Alert]:
        """The alerts no current rule covers; counts the rest in :attr:`suppressed`."""
        kept, dropped = suppress(alerts, self.rules)
        self.suppressed += dropped
        return kept
