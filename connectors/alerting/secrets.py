"""Webhook URLs and tokens: read from the environment or a file, never printed.

A webhook URL *is* a credential (whoever has a Slack or Teams webhook URL can post
to the channel), so every sink keeps its URL in a :class:`Secret`, whose ``repr``
and ``str`` say where the value came from but not what it is. Sinks log and
count failures by sink name and reason only, never with the URL or the
exception text of the HTTP library (which often quotes the URL).
"""

from __future__ import annotations

import os
from pathlib import Path

from detectors.exceptions import SilkwatchError


class SecretError(SilkwatchError):
    """A secret that is named in the configuration but cannot be read."""

    reason = "secret_missing"


class Secret:
    """A string that does not show itself in logs, reprs or tracebacks.

    Examples
    --------
    >>> s = Secret("https://hooks.slack.com/services/T0/B0/XYZ", "$SLACK_URL")
    >>> s, str(s), s.reveal()[-3:]
    (Secret(<redacted> from $SLACK_URL), 'Secret(<redacted> from $SLACK_URL)', 'XYZ')
    """

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        """The value itself: call only where it is sent, never where it is logged."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret(<redacted> from {self.source})"

    __str__ = __repr__


def read_secret(*, env: str | None = None, file: Path | str | None = None) -> Secret:
    """Read a secret from environment variable ``env`` or from ``file`` (surrounding
    whitespace stripped, as Docker and Kubernetes secret files end in a newline).

    Exactly one of ``env`` and ``file`` must be given.
    """
    if (env is None) == (file is None):
        raise SecretError("secret: give exactly one of an environment variable or a file")
    if env is not None:
        value = os.environ.get(env, "").strip()
        if not value:
            raise SecretError(f"secret: environment variable {env} is unset or empty")
        return Secret(value, f"${env}")
    path = Path(file)
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise SecretError(f"secret: {path}: cannot read ({exc.strerror})") from exc
    if not value:
        raise SecretError(f"secret: {path}: file is empty")
    return Secret(value, str(path))
