"""A real headless Chromium (Debian's package) driven through the DevTools protocol.

Only what the UI test needs: set the login cookie, open a page, wait for a condition
in the page, take a PNG screenshot and read the rendered DOM. The browser runs in
its own process group with a fresh profile and is always stopped.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import requests
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars",
)


def chromium_binary() -> str:
    """Path of Debian's chromium; ``scripts/install-chromium`` installs it when missing."""
    out = subprocess.run(["bash", str(REPO / "scripts" / "install-chromium")], check=True,
                         capture_output=True, text=True, timeout=900)
    return out.stdout.strip().splitlines()[-1]


class Chromium:
    def __init__(self, binary: str, profile_dir: Path, width: int = 1600, height: int = 1000):
        self.binary = binary
        self.profile_dir = profile_dir
        self.width = width
        self.height = height
        self.proc: subprocess.Popen[bytes] | None = None
        self._ws: Any = None
        self._next_id = 0

    def __enter__(self) -> Chromium:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self, timeout: float = 60) -> None:
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.profile_dir.parent / "chromium.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile_dir}", "--remote-debugging-port=0",
             "--remote-debugging-address=127.0.0.1", f"--window-size={self.width},{self.height}", "about:blank"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        port_file = self.profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with rc={self.proc.returncode}; see chromium.log")
            if time.monotonic() > deadline:
                raise TimeoutError(f"chromium did not open its DevTools port within {timeout:.0f}s")
            time.sleep(0.2)
        port = int(port_file.read_text().splitlines()[0])
        targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t.get("type") == "page")
        self._ws = connect(page["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024, open_timeout=30)
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)

    def stop(self) -> None:
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception:
                pass
            self._ws = None
        if self.proc is not None and self.proc.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.proc = None

    def send(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        """One DevTools command; events that arrive meanwhile are skipped."""
        self._next_id += 1
        msg_id = self._next_id
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            raw = self._ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            msg = json.loads(raw)
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"DevTools {method} failed: {msg['error']}")
                return dict(msg.get("result", {}))

    def set_cookie(self, name: str, value: str, url: str) -> None:
        self.send("Network.enable")
        ok = self.send("Network.setCookie", name=name, value=value, url=url)
        if not ok.get("success", True):
            raise RuntimeError(f"chromium refused cookie {name} for {url}")

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        got = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return got.get("result", {}).get("value")

    def wait_until(self, what: str, expression: str, timeout: float = 60) -> None:
        """Wait until the JS ``expression`` is truthy in the page; the error names ``what``."""
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                text = (self.evaluate("document.body ? document.body.innerText : ''") or "")[:500]
                raise TimeoutError(f"page did not show {what} within {timeout:.0f}s; page text: {text!r}")
            time.sleep(0.5)

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def dom(self) -> str:
        return str(self.evaluate("document.documentElement.outerHTML") or "")
