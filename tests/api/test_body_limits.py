"""Issue 14 item 2: every route refuses an oversized body with 413 before authentication and
before parsing, for a declared Content-Length and for a chunked stream, without the process
ever holding the body. Run against the app under bare uvicorn in its own process, so its
resident memory can be watched while five clients each push 100 MiB unauthenticated."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from core.ports import free_port
from pipeline.tenancy.credential_cipher import new_secret

MIB = 1024 * 1024
PUSH = 100 * MIB


@pytest.fixture(scope="module")
def server_process(database, encryption_keys, data_dir) -> Iterator[tuple[str, int, int]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_AGENTS_")}
    env.update(
        {
            "AI_AGENTS_DATABASE_URL": database.service_url,
            "AI_AGENTS_ENCRYPTION_KEYS": encryption_keys,
            "AI_AGENTS_ADMIN_TOKEN": new_secret("adm_"),
            "AI_AGENTS_DATA_DIR": str(data_dir),
            "AI_AGENTS_LOG_LEVEL": "WARNING",
        }
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.intake.bare_server", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "bare server did not start"
        time.sleep(0.2)
    yield "127.0.0.1", port, process.pid
    process.terminate()
    process.wait(10)


def _push(host: str, port: int, path: str, chunked: bool, outcome: dict[str, object]) -> None:
    """Send up to 100 MiB while reading the answer; record the status and how much was sent
    before it came (the server must answer long before the body is complete)."""
    sent = 0
    sock = socket.create_connection((host, port), timeout=30)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {PUSH}"
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"{framing}\r\n\r\n".encode()
    )
    stop = threading.Event()
    block = b"[" + b"1," * (32 * 1024 - 1)

    def sender() -> None:
        nonlocal sent
        piece = (f"{len(block):x}\r\n".encode() + block + b"\r\n") if chunked else block
        try:
            while sent < PUSH and not stop.is_set():
                sock.sendall(piece)
                sent += len(block)
        except OSError:
            pass  # the server closed the connection: expected after its 413

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    answer = b""
    try:
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    except OSError as exc:
        outcome["error"] = repr(exc)
    outcome["sent_before_answer"] = sent
    stop.set()
    thread.join(30)
    sock.close()
    outcome["status"] = int(answer.split(b" ")[1]) if answer.startswith(b"HTTP/1.1") else None


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_100_mib_unauthenticated_is_413_without_reading_it(server_process, chunked: bool) -> None:
    host, port, pid = server_process
    server = psutil.Process(pid)
    before = server.memory_info().rss
    peak = before
    outcomes: list[dict[str, object]] = [{} for _ in range(5)]
    paths = [
        "/api/v1/feedback",
        "/admin/tenants",
        "/api/v1/feedback",
        "/admin/tenants",
        "/webhook/servicedesk/acme",
    ]
    threads = [
        threading.Thread(target=_push, args=(host, port, path, chunked, outcome))
        for path, outcome in zip(paths, outcomes, strict=True)
    ]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, server.memory_info().rss)
        time.sleep(0.02)
    after = server.memory_info().rss
    print(
        f"RSS before {before / MIB:.1f} MiB, peak {peak / MIB:.1f}, after {after / MIB:.1f}; "
        f"sent before the 413: {[o.get('sent_before_answer') for o in outcomes]}"
    )
    for path, outcome in zip(paths, outcomes, strict=True):
        assert outcome.get("status") == 413, (path, outcome)
        sent = int(outcome["sent_before_answer"])  # type: ignore[call-overload]
        assert sent < PUSH // 2, (path, outcome)
    # the whole point: five 100 MiB bodies never sit in memory (limit 1 MiB each)
    assert peak - before < 40 * MIB, (before, peak)
    assert after - before < 40 * MIB, (before, after)
    assert httpx.get(f"http://{host}:{port}/health").status_code == 200


def test_small_unauthenticated_body_still_gets_401(server_process) -> None:
    host, port, _ = server_process
    answer = httpx.post(f"http://{host}:{port}/api/v1/feedback", json={"ticket_id": "1"})
    assert answer.status_code == 401
    too_big = httpx.post(
        f"http://{host}:{port}/api/v1/feedback",
        content=b"x" * (MIB + 1),
        headers={"Content-Type": "text/plain"},
    )
    assert too_big.status_code == 413
    assert too_big.json() == {"detail": f"Request body larger than {MIB} bytes"}
