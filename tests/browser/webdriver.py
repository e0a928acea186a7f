"""A tiny W3C WebDriver client for headless Chromium (Debian's ``chromium`` and
``chromium-driver``): enough to open a page, click, type and read text, without a new
dependency. Everything stays on loopback."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from types import TracebackType
from typing import Any

import httpx

from core.ports import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
_ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def browser_available() -> bool:
    return bool(shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER))


class Browser:
    def __init__(self) -> None:
        self._profile = tempfile.mkdtemp(prefix="aab-")
        port = free_port()
        self._driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self._http.get("/status").json()["value"]["ready"]:
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromedriver did not become ready")
            time.sleep(0.1)
        options = {
            "binary": CHROMIUM,
            "args": [*CHROMIUM_FLAGS, f"--user-data-dir={self._profile}"],
        }
        session = self._call(
            "POST",
            "/session",
            {
                "capabilities": {
                    "alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}
                }
            },
        )
        self._session = f"/session/{session['sessionId']}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=body if body is not None else None)
        value = response.json().get("value")
        if response.status_code >= 400:
            raise RuntimeError(f"WebDriver {method} {path}: {value}")
        return value

    def open(self, url: str) -> None:
        self._call("POST", f"{self._session}/url", {"url": url})

    @property
    def url(self) -> str:
        return str(self._call("GET", f"{self._session}/url"))

    def find(self, value: str, using: str = "css selector") -> str:
        found = self._call("POST", f"{self._session}/element", {"using": using, "value": value})
        return str(found[_ELEMENT])

    def click(self, element: str) -> None:
        self._call("POST", f"{self._session}/element/{element}/click", {})

    def type(self, element: str, text: str) -> None:
        self._call("POST", f"{self._session}/element/{element}/value", {"text": text})

    def text(self, element: str) -> str:
        return str(self._call("GET", f"{self._session}/element/{element}/text"))

    def execute(self, script: str) -> Any:
        """Run ``script`` (a function body: ``return ...``) in the page; its result."""
        return self._call("POST", f"{self._session}/execute/sync", {"script": script, "args": []})

    def wait_for(self, css: str, timeout_s: float = 15.0) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.find(css)
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        try:
            if hasattr(self, "_session"):
                self._call("DELETE", self._session)
        except (httpx.HTTPError, RuntimeError):
            pass
        self._http.close()
        self._driver.terminate()
        try:
            self._driver.wait(10)
        except subprocess.TimeoutExpired:
            self._driver.kill()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
