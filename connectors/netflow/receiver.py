"""UDP (and IPFIX-over-TCP) sockets for exports, drained by a thread into bursts.

Kernel drops happen when the socket buffer fills while the process is busy, so
the sockets get a large ``SO_RCVBUF`` (``SO_RCVBUFFORCE`` when running as root,
which ignores ``net.core.rmem_max``) and a thread does nothing but read them into
a bounded queue; the decoder takes whole bursts from it. Python has no
``recvmmsg``; ``recvfrom`` per datagram costs about 1 µs, far below the decode
cost of the ~30 flows a datagram carries.

IPFIX over TCP (RFC 7011 §10.4) is the same messages on a stream: each
connection's bytes are cut at the message length of each header and queued like
datagrams. A stream that does not start a message with version 10 is closed
(after handing its bytes to the decoder, which counts them as malformed).
"""

from __future__ import annotations

import logging
import os
import queue
import selectors
import socket
import threading
from urllib.parse import urlsplit

from silkwatch.connectors.netflow.exceptions import CollectorConfigError

logger = logging.getLogger(__name__)

#: the largest UDP payload
_MAX_DATAGRAM = 65_535
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def parse_listen(url: str) -> tuple[str, str, int]:
    """``udp://HOST:PORT`` or ``tcp://HOST:PORT`` → (scheme, host, port).

    >>> parse_listen("udp://0.0.0.0:2055"), parse_listen("tcp://[::]:4739")
    (('udp', '0.0.0.0', 2055), ('tcp', '::', 4739))
    """
    parts = urlsplit(url if "://" in url else f"udp://{url}")
    try:
        port = parts.port
    except ValueError as exc:
        raise CollectorConfigError(f"--listen {url}: bad port") from exc
    if parts.scheme not in ("udp", "tcp") or port is None or not parts.hostname:
        raise CollectorConfigError(f"--listen {url}: expected udp://HOST:PORT or tcp://HOST:PORT")
    return parts.scheme, parts.hostname, port


def open_socket(host: str, port: int, rcvbuf_bytes: int, *, tcp: bool = False) -> socket.socket:
    """A bound, non-blocking socket with the biggest receive buffer we may have."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    for option in (_SO_RCVBUFFORCE, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, rcvbuf_bytes)
            break
        except OSError:
            continue
    try:
        if tcp:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        if tcp:
            sock.listen(64)
    except OSError as exc:
        sock.close()
        scheme = "tcp" if tcp else "udp"
        raise CollectorConfigError(f"--listen {scheme}://{host}:{port}: {exc.strerror}") from exc
    sock.setblocking(False)
    logger.info(
        "listen=%s://%s:%d rcvbuf_bytes=%d",
        "tcp" if tcp else "udp",
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
        (host, port) pairs to bind for UDP (port 0 picks a free one; see ``ports``).
    rcvbuf_bytes
        Kernel receive buffer per socket. Default - 64 MiB.
    max_queued
        Datagrams held between the thread and the decoder; beyond it new ones are
        dropped and counted in ``queue_dropped`` (memory stays bounded).
        Default - 262,144.
    tcp_addresses
        (host, port) pairs to listen on for IPFIX over TCP. Default - none.
    max_connections
        TCP connections open at once; more are refused. Default - 256.
    """

    def __init__(
        self,
        addresses: list[tuple[str, int]],
        *,
        rcvbuf_bytes: int = 64 << 20,
        max_queued: int = 262_144,
        tcp_addresses: list[tuple[str, int]] = (),
        max_connections: int = 256,
    ) -> None:
        self.sockets = [open_socket(host, port, rcvbuf_bytes) for host, port in addresses]
        self.listeners = [
            open_socket(host, port, rcvbuf_bytes, tcp=True) for host, port in tcp_addresses
        ]
        self.max_connections = max_connections
        self._streams: dict[socket.socket, tuple[bytearray, str]] = {}
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
        """The bound UDP ports, in the order of ``addresses``."""
        return [sock.getsockname()[1] for sock in self.sockets]

    @property
    def tcp_ports(self) -> list[int]:
        """The TCP ports listened on, in the order of ``tcp_addresses``."""
        return [sock.getsockname()[1] for sock in self.listeners]

    def start(self) -> UdpReceiver:
        """Start reading."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread and close the sockets."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for sock in [*self.sockets, *self.listeners, *self._streams]:
            sock.close()
        self._streams.clear()

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
            selector.register(sock, selectors.EVENT_READ, self._drain)
        for sock in self.listeners:
            selector.register(sock, selectors.EVENT_READ, self._accept)
        while not self._stop.is_set():
            for key, _ in selector.select(timeout=0.1):
                key.data(key.fileobj, selector)
        selector.close()

    def _accept(self, listener: socket.socket, selector: selectors.BaseSelector) -> None:
        try:
            connection, address = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if len(self._streams) >= self.max_connections:
            logger.warning("tcp refused=%s open=%d", address[0], len(self._streams))
            connection.close()
            return
        connection.setblocking(False)
        self._streams[connection] = (bytearray(), address[0])
        selector.register(connection, selectors.EVENT_READ, self._read_stream)

    def _read_stream(self, connection: socket.socket, selector: selectors.BaseSelector) -> None:
        """Cut a TCP stream into IPFIX messages by the length in each header."""
        pending, exporter = self._streams[connection]
        try:
            data = connection.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        pending += data
        messages = []
        while len(pending) >= 4:
            version, length = (
                int.from_bytes(pending[:2], "big"),
                int.from_bytes(pending[2:4], "big"),
            )
            if version != 10 or length < 16:  # not IPFIX: the decoder counts it, we hang up
                messages.append((bytes(pending), exporter))
                pending.clear()
                data = b""
                break
            if len(pending) < length:
                break
            messages.append((bytes(pending[:length]), exporter))
            del pending[:length]
        if messages:
            self._enqueue(messages)
        if not data:
            selector.unregister(connection)
            connection.close()
            del self._streams[connection]

    def _drain(self, sock: socket.socket, selector: selectors.BaseSelector | None = None) -> None:
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
        self._enqueue(chunk)

    def _enqueue(self, chunk: list[tuple[bytes, str]]) -> None:
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
