"""A minimal DevTools-protocol driver for Debian's headless Chromium (tests only).

Why not Playwright or Selenium: neither ships for this machine's Chromium
without downloading a browser of its own; aiohttp (a Faust dependency) already
speaks WebSocket, and the five protocol calls we need fit in a page of code.
One browser serves the whole test session; each page gets a fresh tab.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)


@dataclass
class Rendered:
    """What one page did in the browser."""

    url: str
    readback: Any
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


class Browser:
    """One headless Chromium process and one DevTools WebSocket to it."""

    def __init__(self, executable: str = "chromium") -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="silkwatch-chromium-")
        self.process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.loop = asyncio.new_event_loop()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._events: dict[str, list[dict]] = {}
        self.loop.run_until_complete(self._connect(Path(self._profile.name) / "DevToolsActivePort"))

    async def _connect(self, port_file: Path, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            await asyncio.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0)
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for message in self._ws:
            payload = json.loads(message.data)
            if "id" in payload:
                future = self._pending.pop(payload["id"])
                if "error" in payload:
                    future.set_exception(RuntimeError(str(payload["error"])))
                else:
                    future.set_result(payload.get("result", {}))
            elif "sessionId" in payload:
                self._events.setdefault(payload["sessionId"], []).append(payload)

    async def send(self, method: str, session: str | None = None, **params: Any) -> dict:
        """One protocol call; returns its result."""
        call_id = next(self._ids)
        message: dict[str, Any] = {"id": call_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        future = self.loop.create_future()
        self._pending[call_id] = future
        await self._ws.send_str(json.dumps(message))
        return await asyncio.wait_for(future, 30)

    async def _render(
        self, path: Path, readback_js: str, screenshot: Path | None, width_px: int, height_px: int
    ) -> Rendered:
        target = (await self.send("Target.createTarget", url="about:blank"))["targetId"]
        session = (await self.send("Target.attachToTarget", targetId=target, flatten=True))[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Network", "Page"):
            await self.send(f"{domain}.enable", session)
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width_px,
            height=height_px,
            deviceScaleFactor=1,
            mobile=False,
        )
        url = path.resolve().as_uri()
        await self.send("Page.navigate", session, url=url)
        done_js = "document.body && document.body.dataset.rendered"
        rendered = await self._evaluate(session, done_js)
        deadline = time.monotonic() + 30
        while rendered is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            rendered = await self._evaluate(session, done_js)
        result = Rendered(url=url, readback=await self._evaluate(session, readback_js))
        if screenshot is not None:
            metrics = await self.send("Page.getLayoutMetrics", session)
            full_height = int(metrics["cssContentSize"]["height"])
            shot = await self.send(
                "Page.captureScreenshot",
                session,
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": width_px, "height": full_height, "scale": 1},
            )
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        await self.send("Target.closeTarget", targetId=target)
        for event in self._events.pop(session, []):
            method, params = event["method"], event["params"]
            if method == "Network.requestWillBeSent" and params["request"]["url"] != url:
                result.requests.append(params["request"]["url"])
            elif method == "Runtime.exceptionThrown":
                result.errors.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                result.errors.append(json.dumps(params["args"])[:500])
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                result.errors.append(params["entry"]["text"])
        if rendered is None:
            result.errors.append("page never set body[data-rendered]")
        return result

    async def _evaluate(self, session: str, expression: str) -> Any:
        reply = await self.send(
            "Runtime.evaluate", session, expression=expression, returnByValue=True
        )
        if "exceptionDetails" in reply:
            raise RuntimeError(json.dumps(reply["exceptionDetails"])[:500])
        return reply["result"].get("value")

    def render(
        self,
        path: Path,
        readback_js: str = "null",
        screenshot: Path | None = None,
        width_px: int = 1280,
        height_px: int = 900,
    ) -> Rendered:
        """Open ``path`` in a new tab, wait until it has drawn, read the DOM back, screenshot."""
        return self.loop.run_until_complete(
            self._render(path, readback_js, screenshot, width_px, height_px)
        )

    def close(self) -> None:
        """End the browser and its profile folder."""

        async def shutdown() -> None:
            await self._ws.close()
            await self._http.close()
            await self._reader

        self.loop.run_until_complete(shutdown())
        self.loop.close()
        self.process.terminate()
        self.process.wait(10)
        self._profile.cleanup()
