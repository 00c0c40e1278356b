"""A real HTTP receiver on 127.0.0.1 for alert-delivery tests: records each POST,
answers 503 while told to fail, answers late when told to (after recording, as a
receiver that did the work but was slow to say so), and can start late (on a
port reserved up front) to play a receiver that is down."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.fail_next = 0
        self.status = 200
        #: extra response headers (e.g. Retry-After)
        self.reply_headers: dict[str, str] = {}
        #: answer 503 to any body for which this returns True
        self.refuse: Callable[[Any], bool] = lambda body: False
        #: seconds to wait, after recording a request, before answering it
        self.delay_s: Callable[[Any], float] = lambda body: 0.0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bodies(self, path: str | None = None) -> list[Any]:
        return [body for p, _, body in self.requests if path is None or p == path]

    def keys(self) -> list[str]:
        """Every per-alert idempotency key received, one per alert per request."""
        return [
            key
            for _, headers, _ in self.requests
            for key in headers.get("Idempotency-Key", "").split(",")
            if key
        ]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                body = json.loads(raw) if raw else None
                if receiver.fail_next > 0 or receiver.refuse(body):
                    receiver.fail_next = max(0, receiver.fail_next - 1)
                    status = 503
                else:
                    receiver.requests.append((self.path, dict(self.headers), body))
                    status = receiver.status
                    time.sleep(receiver.delay_s(body))
                self.send_response(status)
                for name, value in receiver.reply_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
