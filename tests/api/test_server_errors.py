"""Issue 14 item 1, the part about real bugs: a 500's JSON log line carries the traceback, and
the keep-alive connection that got the 500 still serves the next request under uvicorn."""

from __future__ import annotations

import io
import json
import logging
import socket

import pytest

from pipeline.observability.logging_setup import configure_logging
from pipeline.tenancy.credential_cipher import new_secret
from serve_app.api import create_api
from serve_app.api_state import ApiState
from simulators.serving import run_in_thread
from tests.ray_free_api import ray_free_settings


class DeliberateBug(RuntimeError):
    pass


@pytest.fixture
def buggy_server(database, encryption_keys, data_dir):
    """The real app plus one route with a bug (nothing else can produce a 500 any more)."""
    settings = ray_free_settings(database, encryption_keys, data_dir, admin_token=new_secret("a_"))
    app = create_api(ApiState.from_settings(settings))

    @app.get("/deliberate-bug")
    async def deliberate_bug() -> None:
        raise DeliberateBug("the bug under test")

    @app.get("/unchecked-value")
    async def unchecked_value() -> None:
        """A value no input rule caught reaching PostgreSQL (the safety net's case)."""
        pool = await app.state.api.pool()
        await pool.fetchval("SELECT $1::text", "a\x00b")

    with run_in_thread(app, lifespan="off") as handle:
        yield handle


@pytest.fixture
def json_log():
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def _exchange(sock: socket.socket, path: str) -> tuple[int, bytes]:
    """One HTTP/1.1 request on an open connection; reads exactly the response."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: keep-alive\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    assert b"connection: close" not in head.lower()
    return int(head.split(b" ")[1]), body


def test_500_logs_traceback_and_keeps_the_connection(buggy_server, json_log) -> None:
    with socket.create_connection((buggy_server.host, buggy_server.port), timeout=10) as sock:
        status, body = _exchange(sock, "/deliberate-bug")
        assert status == 500 and json.loads(body) == {"detail": "Internal server error"}
        status, body = _exchange(sock, "/health")  # same connection
        assert status == 200 and json.loads(body) == {"status": "healthy"}
        status, _ = _exchange(sock, "/deliberate-bug")
        assert status == 500
        status, _ = _exchange(sock, "/health")
        assert status == 200
    errors = [
        line
        for line in json_log()
        if line["level"] == "ERROR" and line["logger"] == "serve_app.guards.request_guard"
    ]
    assert len(errors) == 2, errors
    assert errors[0]["message"] == "unhandled error on GET /deliberate-bug"
    assert "Traceback (most recent call last)" in errors[0]["exc"]
    assert "DeliberateBug: the bug under test" in errors[0]["exc"]


def test_a_value_the_database_refuses_is_422_not_500(buggy_server, json_log) -> None:
    with socket.create_connection((buggy_server.host, buggy_server.port), timeout=10) as sock:
        status, body = _exchange(sock, "/unchecked-value")
    assert status == 422, body
    assert "cannot be stored" in json.loads(body)["detail"]
    warnings = [line for line in json_log() if line["logger"] == "serve_app.api"]
    assert any("value refused by the database" in line["message"] for line in warnings)
