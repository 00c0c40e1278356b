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

    def run(self, coroutine: Any) -> Any:
        """Run one protocol exchange to completion (the tests are synchronous)."""
        return self.loop.run_until_complete(coroutine)

    def open(self, path: Path, width_px: int = 1280, height_px: int = 900) -> Tab:
        """``path`` in a new tab, once the page says it has drawn (``body[data-rendered]``)."""
        target = self.run(self.send("Target.createTarget", url="about:blank"))["targetId"]
        reply = self.run(self.send("Target.attachToTarget", targetId=target, flatten=True))
        tab = Tab(self, target, reply["sessionId"], path.resolve().as_uri())
        for domain in ("Runtime", "Log", "Network", "Page"):
            tab.send(f"{domain}.enable")
        tab.send(
            "Emulation.setDeviceMetricsOverride",
            width=width_px,
            height=height_px,
            deviceScaleFactor=1,
            mobile=False,
        )
        tab.send("Page.navigate", url=tab.url)
        deadline = time.monotonic() + 30
        while tab.evaluate("document.body && document.body.dataset.rendered") is None:
            if time.monotonic() > deadline:
                tab.errors.append("page never set body[data-rendered]")
                break
            time.sleep(0.05)
        return tab

    def render(
        self,
        path: Path,
        readback_js: str = "null",
        screenshot: Path | None = None,
        width_px: int = 1280,
        height_px: int = 900,
    ) -> Rendered:
        """Open ``path`` in a new tab, wait until it has drawn, read the DOM back, screenshot."""
        tab = self.open(path, width_px, height_px)
        readback = tab.evaluate(readback_js)
        if screenshot is not None:
            tab.screenshot(screenshot)
        return tab.close(readback)

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


class Tab:
    """One page in the browser: evaluate script, send input, screenshot, then close and report."""

    def __init__(self, browser: Browser, target: str, session: str, url: str) -> None:
        self.browser, self.target, self.session, self.url = browser, target, session, url
        self.errors: list[str] = []

    def send(self, method: str, **params: Any) -> dict:
        """One protocol call in this tab (``Input.dispatchMouseEvent``...)."""
        return self.browser.run(self.browser.send(method, self.session, **params))

    def evaluate(self, expression: str) -> Any:
        """The value of a script expression in the page (JSON-able)."""
        reply = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(json.dumps(reply["exceptionDetails"])[:500])
        return reply["result"].get("value")

    def screenshot(self, path: Path) -> None:
        """The whole page (not only the viewport) as a PNG."""
        metrics = self.send("Page.getLayoutMetrics")
        size = metrics["cssContentSize"]
        shot = self.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self, readback: Any = None) -> Rendered:
        """Close the tab; what it logged as errors and every request it made besides the page."""
        self.browser.run(self.browser.send("Target.closeTarget", targetId=self.target))
        result = Rendered(url=self.url, readback=readback, errors=list(self.errors))
        for event in self.browser._events.pop(self.session, []):
            method, params = event["method"], event["params"]
            if method == "Network.requestWillBeSent" and params["request"]["url"] != self.url:
                result.requests.append(params["request"]["url"])
            elif method == "Runtime.exceptionThrown":
                result.errors.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                result.errors.append(json.dumps(params["args"])[:500])
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                result.errors.append(params["entry"]["text"])
        return result
