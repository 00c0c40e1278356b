"""Which text flow format a file is, from its first lines."""

from __future__ import annotations

from silkwatch.connectors.flowtext import argus, nfdump, rwcut, zeek

#: checked in this order; the first whose ``sniff`` accepts the lines wins
SNIFFERS = (
    ("zeek", zeek.sniff),
    ("nfdump", nfdump.sniff),
    ("argus", argus.sniff),
    ("rwcut", rwcut.sniff),
)


def sniff_format(lines: list[str]) -> str | None:
    """The format name for these first lines (header included), or None if unknown.

    Examples
    --------
    >>> sniff_format(["#separator \\\\x09", "#set_separator\\t,"])
    'zeek'
    >>> sniff_format(["StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State"])
    'argus'
    >>> sniff_format(["  sIP|  dIP|sPort|dPort|pro|"])
    'rwcut'
    >>> sniff_format(["ts,te,td,sa,da,sp,dp,pr,flg"])
    'nfdump'
    >>> sniff_format(["hello"]) is None
    True
    """
    first = [line for line in lines if line.strip()][:1]
    return next((name for name, accepts in SNIFFERS if accepts(first)), None)
