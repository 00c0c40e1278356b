"""Errors of the text flow importers (rwcut, nfdump CSV, Zeek conn.log, Argus)."""

from __future__ import annotations

from silkwatch.detectors.exceptions import SilkwatchError


class FlowTextError(SilkwatchError):
    """A line of a text flow file that cannot become a flow, or a file of no known format.

    The message names the file and the 1-based line number, so a SOC analyst can
    open the file at that line: ``flowtext: conn.log line 17: bad field 'bytes': 'x'``.

    :param path: the file as the user named it (``-`` for stdin)
    :param line: 1-based line number; 0 when the problem is the file as a whole
    :param detail: what is wrong with it
    """

    reason = "malformed_line"

    def __init__(self, path: str, line: int, detail: str) -> None:
        self.path = path
        self.line = line
        self.detail = detail
        where = f"line {line}" if line else "header"
        super().__init__(f"flowtext: {path} {where}: {detail}")


class UnknownFormatError(FlowTextError):
    """The first lines match none of the text formats we read."""

    reason = "unknown_format"


class ToolMissingError(SilkwatchError):
    """An external program we drive (nfdump, nfcapd, softflowd) is not installed."""

    reason = "tool_missing"

    def __init__(self, tool: str, package: str) -> None:
        self.tool = tool
        super().__init__(
            f"flowtext: {tool} not found on PATH; install it (Debian: apt-get install -y {package})"
        )
