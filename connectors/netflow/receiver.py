"""UDP sockets for exports, drained by a thread into bursts of datagrams.

Kernel drops happen when the socket buffer fills while the process is busy, so
the sockets get a large ``SO_RCVBUF`` (``SO_RCVBUFFORCE`` when running as root,
which ignores ``net.core.rmem_max``) and a thread does nothing but read them into
a bounded queue; the decoder takes whole bursts from it. Python has no
``recvmmsg``; ``recvfrom`` per datagram costs about 1 µs, far below the decode
cost of the ~30 flows a datagram carries.
"""

from __future__ import annotations

import logging
import queue
import selectors
import socket
import threading
from urllib.parse import urlsplit

from connectors.netflow.exceptions import CollectorConfigError

logger = logging.getLogger(__name__)

#: the largest UDP payload
_MAX_DATAGRAM = 65_535
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def parse_listen(url: str) -> tuple[str, int]:
    """``udp://HOST:PORT`` → (host, port); IPv6 hosts in brackets.

    >>> parse_listen("udp://0.0.0.0:2055"), parse_listen("udp://[::]:4739")
    (('0.0.0.0', 2055), ('::', 4739))
    """
    parts = urlsplit(url if "://" in url else f"udp://{url}")
    try:
        port = parts.port
    except ValueError as exc:
        raise CollectorConfigError(f"--listen {url}: bad port") from exc
    if parts.scheme != "udp" or port is None or not parts.hostname:
        raise CollectorConfigError(f"--listen {url}: expected udp://HOST:PORT")
    return parts.hostname, port


def open_socket(host: str, port: int, rcvbuf_bytes: int) -> socket.socket:
    """A bound, non-blocking UDP socket with the biggest receive buffer we may have."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    for option in (_SO_RCVBUFFORCE, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, rcvbuf_bytes)
            break
        except OSError:
            continue
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CollectorConfigError(f"--listen udp://{host}:{port}: {exc.strerror}") from exc
    sock.setblocking(False)
    logger.info(
        "listen=udp://%s:%d rcvbuf_bytes=%d",
        host,
        sock.getsockname()[1],
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
    )
    return sock


class UdpReceiver:
    """Reads datagrams from sockets on a thread; ``bursts`` hands them out in lists.

    Parameters
    ----------
    addresses
        (host, port) pairs to bind (port 0 picks a free one; see ``ports``).
    rcvbuf_bytes
        Kernel receive buffer per socket. Default - 64 MiB.
    max_queued
        Datagrams held between the thread and the decoder; beyond it new ones are
        dropped and counted in ``queue_dropped`` (memory stays bounded).
        Default - 262,144.
    """

    def __init__(
        self,
        addresses: list[tuple[str, int]],
        *,
        rcvbuf_bytes: int = 64 << 20,
        max_queued: int = 262_144,
    ) -> None:
        self.sockets = [open_socket(host, port, rcvbuf_bytes) for host, port in addresses]
        self.max_queued = max_queued
        self.received = 0
        self.queue_dropped = 0
        self._queue: queue.Queue[list[tuple[bytes, str]]] = queue.Queue()
        self._queued = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="netflow-receiver", daemon=True)

    @property
    def ports(self) -> list[int]:
        """The bound ports, in the order of ``addresses``."""
        return [sock.getsockname()[1] for sock in self.sockets]

    def start(self) -> UdpReceiver:
        """Start reading."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread and close the sockets."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for sock in self.sockets:
            sock.close()

    def __enter__(self) -> UdpReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def burst(self, timeout_s: float) -> list[tuple[bytes, str]]:
        """Every datagram queued now (waiting up to ``timeout_s`` for the first)."""
        try:
            chunks = [self._queue.get(timeout=timeout_s)]
        except queue.Empty:
            return []
        while True:
            try:
                chunks.append(self._queue.get_nowait())
            except queue.Empty:
                break
        burst = [datagram for chunk in chunks for datagram in chunk]
        with self._lock:
            self._queued -= len(burst)
        return burst

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        for sock in self.sockets:
            selector.register(sock, selectors.EVENT_READ)
        while not self._stop.is_set():
            for key, _ in selector.select(timeout=0.1):
                self._drain(key.fileobj)
        selector.close()

    def _drain(self, sock: socket.socket) -> None:
        chunk: list[tuple[bytes, str]] = []
        receive = sock.recvfrom
        for _ in range(4096):
            try:
                payload, address = receive(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ICMP errors reported on the socket
                logger.debug("recv error=%s", exc)
                break
            chunk.append((payload, address[0]))
        if not chunk:
            return
        self.received += len(chunk)
        with self._lock:
            room = self.max_queued - self._queued
            if room < len(chunk):
                self.queue_dropped += len(chunk) - max(room, 0)
                chunk = chunk[: max(room, 0)]
            self._queued += len(chunk)
        if chunk:
            self._queue.put(chunk)


def kernel_drops(sockets: list[socket.socket]) -> int:
    """Datagrams the kernel dropped on these sockets (``/proc/net/udp*``, Linux)."""
    inodes = set()
    for sock in sockets:
        try:
            import os

            inodes.add(os.fstat(sock.fileno()).st_ino)
        except OSError:
            continue
    drops = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = open(table).read().splitlines()[1:]  # noqa: SIM115
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 12 and int(fields[9]) in inodes:
                drops += int(fields[12])
    return drops
