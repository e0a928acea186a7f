"""Slow clients through the product's ingress: how long each holds a connection.

``python -m benchmarks.intake.slow_clients [--checkout DIR] [--watch 30]`` starts
``ai-agents serve`` (HAProxy ingress, the default) on a fresh data directory with the code of
``--checkout`` (default: this one; give an older checkout to measure before a change), then
sends, at once and each on its own loopback connection:

- ``headers``: a request line, then one header byte a second;
- ``body``: complete headers with ``Content-Length: 200``, then one body byte a second;
- ``huge``: ``Content-Length: 104857600`` (100 MiB) and no body, as an upload would start.

For each: the first bytes of the answer, seconds until they came, and seconds until the server
closed the connection (or "open" when it was still open after ``--watch`` seconds). Bounded:
nothing runs longer than the watch, and the service is stopped after.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from core.ports import free_port
from local_stack.database import remove_data_dir

REPO = Path(__file__).resolve().parents[2]
POST = b"POST /webhook/servicedesk/slow HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
PROBES: dict[str, tuple[bytes, bytes]] = {
    "headers": (b"GET /health HTTP/1.1\r\nHost: t\r\n", b"X-Slow: " + b"a" * 200),
    "body": (POST + b"Content-Length: 200\r\n\r\n{", b" " * 199),
    "huge": (POST + b"Content-Length: 104857600\r\n\r\n", b""),
}


def watch_slow_client(
    port: int, head: bytes, drip: bytes, watch_s: float
) -> tuple[float | None, float | None, bytes]:
    """Send ``head``, then ``drip`` a byte a second, for at most ``watch_s``: seconds until the
    server's first bytes and until it closed the connection (None: it did not) and what it
    answered. The red-team tests use it too."""
    started = time.monotonic()
    answered_s: float | None = None
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=watch_s) as conn:
        conn.settimeout(0.2)
        conn.sendall(head)
        sent, next_byte = 0, started
        while time.monotonic() - started < watch_s:
            if sent < len(drip) and time.monotonic() >= next_byte:
                try:
                    conn.sendall(drip[sent : sent + 1])
                except OSError:
                    break
                sent, next_byte = sent + 1, next_byte + 1.0
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                return answered_s, time.monotonic() - started, answer
            if answered_s is None:
                answered_s = time.monotonic() - started
            answer += chunk
    return answered_s, None, answer


def probe(port: int, head: bytes, drip: bytes, watch_s: float) -> dict[str, Any]:
    return _result(*watch_slow_client(port, head, drip, watch_s))


def _result(answered_s: float | None, closed_s: float | None, answer: bytes) -> dict[str, Any]:
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace") if answer else "(nothing)"
    return {
        "answer": status,
        "answered_s": None if answered_s is None else round(answered_s, 3),
        "closed_s": None if closed_s is None else round(closed_s, 3),
    }


def serve(checkout: Path, data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ["HOME"], "PYTHONPATH": str(checkout)}
    return subprocess.Popen(
        ["ai-agents", "serve", "--port", str(port), "--dashboard-port", str(free_port())]
        + ["--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def wait_ready(process: subprocess.Popen[str], url: str, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"ai-agents serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/api/v1/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit("ai-agents serve not ready in time")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.intake.slow_clients")
    parser.add_argument("--checkout", type=Path, default=REPO, help="the code to serve")
    parser.add_argument("--watch", type=float, default=30.0, help="seconds to watch each probe")
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="aasc-", dir="/tmp"))
    port = free_port()
    process = serve(args.checkout.resolve(), data_dir, port)
    try:
        wait_ready(process, f"http://127.0.0.1:{port}")
        load = os.getloadavg()[0]
        results: dict[str, dict[str, Any]] = {}

        def run(name: str) -> None:
            results[name] = probe(port, *PROBES[name], watch_s=args.watch)

        threads = [threading.Thread(target=run, args=(name,)) for name in PROBES]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        report = {
            "checkout": str(args.checkout),
            "utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "load_1min": round(load, 2),
            "watch_s": args.watch,
            "probes": results,
        }
        json.dump(report, sys.stdout, indent=2)
        print()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
        remove_data_dir(data_dir)


if __name__ == "__main__":
    main()
