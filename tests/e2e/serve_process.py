"""Waiting on a Serve process started by a test (`serve run`, `ai-agents serve`)."""

from __future__ import annotations

import subprocess
import time

import httpx


def wait_until_ready(
    process: subprocess.Popen[str], base_url: str, timeout_s: float = 180, token: str | None = None
) -> httpx.Response:
    """`/api/v1/ready` answering 200; fails with the process's stderr if it dies first. With
    the admin or metrics ``token`` the answer carries the components, else only the status."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + timeout_s
    ready: httpx.Response | None = None
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()[-3000:] if process.stderr else ""
        try:
            ready = httpx.get(f"{base_url}/api/v1/ready", timeout=5, headers=headers)
            if ready.status_code == 200:
                return ready
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"not ready after {timeout_s:.0f} s: {ready and ready.text}")
