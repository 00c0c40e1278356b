"""What happens to malformed lines: counted, logged (throttled), reported at the end.

A SOC feed with one truncated line should not stop a day's detection, but a
dropped line must never go unnoticed: each skipped line is counted in a
:class:`ReadSummary`, the first few are logged with their line numbers, and
one summary line per file says how many were skipped.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from silkwatch.connectors.flowtext.exceptions import FlowTextError

logger = logging.getLogger(__name__)

#: how many malformed lines per file are logged one by one before only counting
LOGGED_ERRORS_MAX = 5

#: ``(error) -> bool``: True skips the line, False stops the read with the error
ErrorPolicy = Callable[[FlowTextError], bool]


@dataclass
class ReadSummary:
    """Counts for one text file, filled while its batches are read.

    :param path: the file as named by the user
    :param format: the text format name (``rwcut``, ``nfdump``, ``zeek``, ``argus``)
    """

    path: str
    format: str
    lines: int = 0  # data lines seen (headers, comments and footers excluded)
    records: int = 0  # source records turned into flows
    flows: int = 0  # flows yielded (a bidirectional record may give two)
    skipped: int = 0  # malformed lines skipped
    non_ip: int = 0  # well-formed records that are not IP flows (Argus ARP)
    errors: list[FlowTextError] = field(default_factory=list)

    def log(self) -> None:
        """One ``key=value`` line; the count of skipped lines also goes to stderr, always."""
        if self.skipped:
            print(
                f"silkwatch: {self.path}: skipped {self.skipped} malformed "
                f"line{'s' if self.skipped != 1 else ''} ({self.format})",
                file=sys.stderr,
                flush=True,
            )
        logger.log(
            logging.INFO,
            "flowtext summary path=%s format=%s lines=%d records=%d flows=%d skipped=%d non_ip=%d",
            self.path,
            self.format,
            self.lines,
            self.records,
            self.flows,
            self.skipped,
            self.non_ip,
        )


def skip_malformed(error: FlowTextError) -> bool:
    """Default policy: skip the line (the summary counts it)."""
    return True


def stop_on_malformed(error: FlowTextError) -> bool:
    """Strict policy: the first malformed line ends the read with its error."""
    return False


def allow_bad_lines(limit: int) -> ErrorPolicy:
    """Skip up to ``limit`` malformed lines per file, then stop at the next (``--skip-bad-lines``).

    >>> policy = allow_bad_lines(1)
    >>> error = FlowTextError("conn.log", 3, "bad field")
    >>> policy(error), policy(FlowTextError("conn.log", 9, "bad field"))
    (True, False)
    >>> allow_bad_lines(5)(FlowTextError("other.log", 1, "x"))  # each file counts anew
    True
    """
    if limit <= 0:
        return stop_on_malformed
    skipped: dict[str, int] = {}

    def policy(error: FlowTextError) -> bool:
        skipped[error.path] = skipped.get(error.path, 0) + 1
        return skipped[error.path] <= limit

    return policy


def handle_malformed(error: FlowTextError, summary: ReadSummary, on_error: ErrorPolicy) -> None:
    """Count and log one bad line, then apply the policy (raise when it says stop)."""
    if not on_error(error):
        raise error
    summary.skipped += 1
    if len(summary.errors) < LOGGED_ERRORS_MAX:
        summary.errors.append(error)
        logger.warning("flowtext skipped %s", error)
    elif summary.skipped == LOGGED_ERRORS_MAX + 1:
        logger.warning(
            "flowtext path=%s: more malformed lines; only counting them now", summary.path
        )
