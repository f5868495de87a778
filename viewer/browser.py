"""Headless Chromium over its DevTools protocol, for checking a written site: open a page, wait
until app.js has rendered it, read values out of the DOM, take a screenshot. Used by the viewer's
render test and ``benchmarks/view_scale.py``; needs ``websockets`` (the ``dev`` extra) and a
``chromium`` binary (Debian's, installed by ``scripts/test-setup.sh``)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0", "--window-size=1280,1000",
]  # fmt: skip
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class Browser:
    """One headless Chromium with one page; ``with Browser() as b: b.open(url)``."""

    def __init__(self, binary: str | None = None, start_timeout_s: float = 60.0):
        binary = binary or find_chromium()
        if binary is None:
            raise FileNotFoundError(
                "expected a chromium binary on PATH, found none; run scripts/test-setup.sh"
            )
        self._profile = tempfile.mkdtemp(prefix="apigen-view-chromium-")
        self._process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = self._devtools_url(start_timeout_s)
        from websockets.sync.client import connect

        self._socket = connect(url, max_size=None, open_timeout=start_timeout_s)
        self._next_id = 0
        self._watched: set[str] = set()
        self.events: list[dict[str, Any]] = []  # the watched events seen so far (see ``watch``)
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.call("Page.enable")
        self.call("Runtime.enable")

    def _devtools_url(self, timeout_s: float) -> str:
        assert self._process.stderr is not None
        deadline = time.monotonic() + timeout_s
        seen = []
        while time.monotonic() < deadline:
            line = self._process.stderr.readline()
            if not line:
                if self._process.poll() is not None:
                    break
                continue
            seen.append(line)
            match = _LISTENING.search(line)
            if match:
                return match.group(1)
        self.close()
        raise RuntimeError("chromium did not open its DevTools port; its output:\n" + "".join(seen[-20:]))

    def _call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._socket.send(json.dumps(message))
        while True:
            reply = json.loads(self._socket.recv(timeout=120))
            if reply.get("method") in self._watched:
                self.events.append(reply)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._call(method, params, self._session)

    def watch(self, *methods: str) -> None:
        """Keeps every event of these DevTools methods in ``events`` (read as replies arrive)."""
        self._watched.update(methods)

    def on_every_document(self, source: str) -> None:
        """Runs ``source`` in every document this page opens, before the document's own scripts."""
        self.call("Page.addScriptToEvaluateOnNewDocument", {"source": source})

    def add_binding(self, name: str) -> None:
        """Defines ``window.<name>(text)`` in every document; each call is a ``Runtime.bindingCalled``
        event (watch it to keep them)."""
        self.call("Runtime.addBinding", {"name": name})

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} raised: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def open(self, url: str, timeout_s: float = 60.0, rendered: bool = True) -> float | None:
        """Loads ``url``; with ``rendered``, waits for app.js's mark and returns it (ms after
        navigation start). A page that reports an error raises with it."""
        self.call("Page.navigate", {"url": "about:blank"})
        self.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.evaluate(
                "({ready: document.readyState, url: location.href, "
                "rendered: document.body && document.body.dataset.rendered, error: document.body && document.body.dataset.error})"
            )
            if state and state["url"] != "about:blank" and state["ready"] == "complete":
                if state.get("error"):
                    raise RuntimeError(f"{url}: the page failed: {state['error']}")
                if not rendered:
                    return None
                if state.get("rendered"):
                    return float(state["rendered"])
            time.sleep(0.02)
        raise TimeoutError(f"{url} did not finish rendering within {timeout_s:.0f}s")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        socket = getattr(self, "_socket", None)
        if socket is not None:
            socket.close()
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
