"""Start a server process, wait until it answers, stop it by pid, show its log when it fails.

One helper for every server a test needs (Kafka, Prometheus): the servers differ only
in their command line and in what "it answers" means, which the caller passes in.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
# Loaded here, not in the forked child, where dlopen could wait on a lock another thread held.
_LIBC = ctypes.CDLL(None, use_errno=True)


class ServiceStartError(RuntimeError):
    """A test server exited or did not answer in time; the message ends with its log tail."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports nothing listens on now (bound together, then released),
    so concurrent test runs don't clash."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def free_port() -> int:
    """One TCP port nothing listens on now."""
    return free_ports(1)[0]


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    """True once something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def url_answers(url: str) -> bool:
    """True once ``url`` answers an HTTP GET with status 200."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return response.status == 200
    except OSError:
        return False


def _die_with_parent() -> None:
    """Runs in the child: SIGTERM it when pytest dies, so no server outlives a killed run."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class ServiceProcess:
    """A running server: its pid (through ``popen``) and the file its output goes to."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of the server's output, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM (a clean shutdown), then SIGKILL after ``timeout_s``.

        Returns whether the process ended without the SIGKILL (or had ended already).
        """
        if self.popen.poll() is not None:
            return True
        self.popen.terminate()
        try:
            self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning(
                "%s (pid %d) ignored SIGTERM for %.0f s; killing it", self.name, self.pid, timeout_s
            )
            self.popen.kill()
            self.popen.wait()
            return False
        return True


def start_service(
    name: str,
    argv: Sequence[str | os.PathLike[str]],
    *,
    log_path: Path,
    ready: Callable[[], bool],
    timeout_s: float = 60.0,
    poll_s: float = 0.1,
) -> ServiceProcess:
    """Start ``argv`` with its output in ``log_path`` and return once ``ready()`` is true.

    :param ready: polled every ``poll_s`` seconds; must be cheap and must not raise.
    :raises ServiceStartError: the process exited, or ``ready()`` stayed false for
        ``timeout_s`` seconds (the process is stopped then); the message carries the log tail.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as out:
        popen = subprocess.Popen(
            [os.fspath(arg) for arg in argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    service = ServiceProcess(name, popen, log_path)
    started = time.monotonic()
    while not ready():
        if popen.poll() is not None:
            raise ServiceStartError(
                f"{name} exited with status {popen.returncode} during start-up; "
                f"log {log_path}:\n{service.log_tail()}"
            )
        if time.monotonic() - started > timeout_s:
            service.stop()
            raise ServiceStartError(
                f"{name} did not answer within {timeout_s:.0f} s; log {log_path}:\n"
                f"{service.log_tail()}"
            )
        time.sleep(poll_s)
    log.info("%s ready (pid %d) after %.1f s", name, popen.pid, time.monotonic() - started)
    return service
