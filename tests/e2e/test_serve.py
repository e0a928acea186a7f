"""`ai-agents serve` as an operator runs it: migrations, the Serve app behind HAProxy on a
local Ray, ready over HTTP, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from pipeline.core.ports import free_port
from tests.e2e.serve_process import wait_until_ready

pytestmark = pytest.mark.ray


def test_serve_becomes_ready_and_stops_cleanly_on_sigterm() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="aas-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AI_AGENTS_", "RAY_"))}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        ["ai-agents", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = wait_until_ready(proc, base)
        components = ready.json()["components"]
        assert components["database"]["ok"] and components["dispatcher"]["ok"]
        assert {
            f"pool:{p}"
            for p in ("Ingress", "Dispatcher", "Enhancer", "ContextGatherer", "Synthesizer")
        } <= set(components)
        # an unsigned webhook is refused by the app itself, through HAProxy
        refused = httpx.post(f"{base}/webhook/servicedesk/nobody", content=b"{}", timeout=10)
        assert refused.status_code in (401, 403), refused.text
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr[-3000:]
        assert time.monotonic() - started < 60  # local HAProxy mode drains 5 s, not 30
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/health", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
