"""Webhook URLs and tokens: read from the environment or a file, never printed.

A webhook URL *is* a credential (whoever has a Slack or Teams webhook URL can post
to the channel), so every sink keeps its URL in a :class:`Secret`, whose ``repr``
and ``str`` say where the value came from but not what it is. Sinks log and
count failures by sink name and reason only, never with the URL or the
exception text of the HTTP library (which often quotes the URL).

Libraries do log URLs, though: apprise logs every URL it handles at debug, and
one that does not parse in full as a warning. So every secret also registers
its value and the parts of it that carry the credential (path segments, query
values, user info; for apprise's own schemes every part after ``://`` that is
not a host name; lower-case words such as ``services`` are left alone), and
:func:`redact_logs` puts a filter on the log handlers that replaces them with
``<redacted>`` in every record, at any verbosity.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import urllib.parse
from pathlib import Path

from silkwatch.detectors.exceptions import SilkwatchError


class SecretError(SilkwatchError):
    """A secret that is named in the configuration but cannot be read."""

    reason = "secret_missing"


#: shortest text redacted (shorter parts only as part of the whole; a secret shorter
#: than this is no secret, and redacting "tok" would mangle every "token")
MIN_PART_CHARS = 6

REDACTED = "<redacted>"

#: every registered secret text, longest first when applied
_SECRETS: set[str] = set()
_SPLIT = re.compile(r"[/:@?&=#,;+]")
_WORD = re.compile(r"^[a-z-]+$")  # "services", "workflows": path words, not credentials
_HOST = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def secret_parts(value: str) -> set[str]:
    """The texts to redact for one secret: itself and its credential-bearing parts.

    Examples
    --------
    >>> sorted(secret_parts("https://hooks.slack.com/services/T0ABCDEF/B0ABCDEF/XYZsecret123"))
    ['/services/T0ABCDEF/B0ABCDEF/XYZsecret123', 'B0ABCDEF', 'T0ABCDEF', 'XYZsecret123',
     'https://hooks.slack.com/services/T0ABCDEF/B0ABCDEF/XYZsecret123']
    >>> sorted(secret_parts("tgram://123456:AAbotTOKEN/-100200300"))
    ['-100200300', '123456', '123456:AAbotTOKEN/-100200300', 'AAbotTOKEN',
     'tgram://123456:AAbotTOKEN/-100200300']
    """
    parts = {value}
    try:
        url = urllib.parse.urlsplit(value)
    except ValueError:
        url = None
    if url is None or not url.scheme:
        return {p for p in parts if len(p) >= MIN_PART_CHARS}
    if url.scheme in ("http", "https"):
        rest = url.path + (f"?{url.query}" if url.query else "")
        if url.username or url.password:
            parts.add(url.netloc.rsplit("@", 1)[0])
    else:  # apprise: the "host" is often the token itself
        rest = value.split("://", 1)[-1]
    if len(rest) > 1:
        parts.add(rest)
    for part in _SPLIT.split(rest):
        if len(part) >= MIN_PART_CHARS and not _is_host(part) and not _WORD.match(part):
            parts.add(part)
            parts.add(urllib.parse.unquote(part))
    return {p for p in parts if len(p) >= MIN_PART_CHARS}


def _is_host(part: str) -> bool:
    try:
        ipaddress.ip_address(part)
        return True
    except ValueError:
        return bool(_HOST.match(part)) and not any(c.isdigit() for c in part.split(".")[0])


def redact(text: str) -> str:
    """``text`` with every registered secret (and part of one) replaced by ``<redacted>``.

    Examples
    --------
    >>> _ = Secret("json://127.0.0.1:9/hook/TOPSECRET-42", "test")
    >>> redact("Loaded json://127.0.0.1:9/hook/TOPSECRET-42 URL; token TOPSECRET-42")
    'Loaded <redacted> URL; token <redacted>'
    """
    if not _SECRETS:
        return text
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter that redacts secrets from the message, arguments and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def redact_logs(logger: logging.Logger | None = None) -> RedactingFilter:
    """Put a :class:`RedactingFilter` on every handler of ``logger`` (default: the root
    logger, where the command line's handler is). Idempotent."""
    logger = logger or logging.getLogger()
    redacting = RedactingFilter()
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(redacting)
    return redacting


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
        _SECRETS.update(secret_parts(value))

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
