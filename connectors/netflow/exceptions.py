"""Errors of the NetFlow/IPFIX collector.

A malformed datagram is one ``NetflowDecodeError``: it names the exporter, the byte
offset in the datagram and what is wrong, and its ``reason`` is the metrics label.
The collector counts and logs it and goes on with the next datagram.
"""

from __future__ import annotations

from silkwatch.detectors.exceptions import SilkwatchError


class NetflowDecodeError(SilkwatchError):
    """A datagram that is not a well-formed NetFlow v5/v9 or IPFIX message.

    Reads ``netflow 192.0.2.1 offset 24: set length 3 is shorter than its header``.
    """

    reason = "malformed"

    def __init__(self, exporter: str, offset: int, detail: str) -> None:
        self.exporter = exporter
        self.offset = offset
        self.detail = detail
        super().__init__(f"netflow {exporter} offset {offset}: {detail}")


class UnsupportedVersionError(NetflowDecodeError):
    """The version field is not 5, 9 or 10."""

    reason = "bad_version"


class CollectorConfigError(SilkwatchError):
    """A ``--listen`` address, state file or output the collector cannot use."""

    reason = "bad_config"
