"""`silkwatch grafana push` against a stand-in Grafana HTTP API on 127.0.0.1.

No Grafana server is packaged for this machine, so the stand-in answers the five
endpoints push uses, as Grafana 11 documents them, and records every request.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from silkwatch.cli import main
from silkwatch.grafana.build import build_json


class FakeGrafana(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, str, str, dict]]] = []
    datasource_exists = False

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        self.requests.append((self.command, self.path, self.headers["Authorization"], body))

    def do_GET(self):
        self._record()
        if self.datasource_exists:
            self._reply(200, {"uid": "silkwatch-prometheus", "id": 1})
        else:
            self._reply(404, {"message": "Data source not found"})

    def do_POST(self):
        self._record()
        self._reply(200, {"status": "success"})

    do_PUT = do_PATCH = do_POST

    def log_message(self, *args):
        pass


@pytest.fixture
def grafana():
    FakeGrafana.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGrafana)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", FakeGrafana
    server.shutdown()


def test_push_creates_datasource_uploads_dashboards_sets_dark_theme(grafana, tmp_path):
    url, handler = grafana
    token_file = tmp_path / "token"
    token_file.write_text("glsa_secret\n")
    assert main(["grafana", "push", "--url", url, "--token-file", str(token_file)]) == 0
    calls = [(method, path) for method, path, _, _ in handler.requests]
    assert calls == [
        ("GET", "/api/datasources/uid/silkwatch-prometheus"),
        ("POST", "/api/datasources"),
        ("POST", "/api/dashboards/db"),
        ("POST", "/api/dashboards/db"),
        ("PATCH", "/api/org/preferences"),
    ]
    assert {auth for _, _, auth, _ in handler.requests} == {"Bearer glsa_secret"}
    _, _, _, datasource = handler.requests[1]
    assert datasource["uid"] == "silkwatch-prometheus"
    assert datasource["url"] == "http://prometheus:9090" and datasource["type"] == "prometheus"
    assert handler.requests[2][3] == {"dashboard": build_json("wall"), "overwrite": True}
    assert handler.requests[3][3]["dashboard"]["uid"] == "silkwatch-analyst"
    assert handler.requests[4][3] == {"theme": "dark", "homeDashboardUID": "silkwatch-wall"}


def test_push_updates_an_existing_datasource(grafana, monkeypatch):
    url, handler = grafana
    handler.datasource_exists = True
    monkeypatch.setenv("GRAFANA_TOKEN", "from-env")
    try:
        code = main(["grafana", "push", "--url", url, "--prometheus-url", "http://p:9090"])
    finally:
        handler.datasource_exists = False
    assert code == 0
    method, path, auth, body = handler.requests[1]
    assert (method, path, auth, body["url"]) == (
        "PUT",
        "/api/datasources/uid/silkwatch-prometheus",
        "Bearer from-env",
        "http://p:9090",
    )


def test_push_unreachable_is_one_line_without_the_token(capsys, monkeypatch):
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    assert main(["grafana", "push", "--url", "http://127.0.0.1:9", "--token", "sekrit"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "silkwatch: error: grafana push: http://127.0.0.1:9: datasource: cannot connect "
        "(ConnectionError)\n"
    )


def test_push_without_token(capsys, monkeypatch):
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    assert main(["grafana", "push", "--url", "http://127.0.0.1:9"]) == 1
    assert "give --token, --token-file or $GRAFANA_TOKEN" in capsys.readouterr().err
