"""Run an ASGI app with uvicorn on a background thread, for tests, the demo and benchmarks.

Both simulators (ServiceDesk Plus and the LLM) must be reachable over real loopback HTTP so
that the code under test exercises its real transport, retries and timeouts; mocking httpx
would hide exactly the bugs the simulators exist to find. The socket is bound here, before
uvicorn starts, so callers can ask for port 0 and still learn the real port without races.

Ports for *other* processes (Ray's dashboard, the Serve HTTP port, HAProxy's stats port) cannot
be bound here and handed over, so `free_port` picks them race-free instead; see its docstring.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Literal

import uvicorn

from core.ports import PORT_RANGE, free_port

__all__ = ["PORT_RANGE", "ServerHandle", "free_port", "run_in_thread"]


class ServerHandle:
    """A running uvicorn server; `stop()` (or leaving the `with` block) shuts it down."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, host: str, port: int):
        self.server = server
        self.thread = thread
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask uvicorn to exit; force it if in-flight requests (e.g. a hang fault) keep it up."""
        self.server.should_exit = True
        self.thread.join(timeout_s)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout_s)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ServerHandle(url={self.url!r}, running={self.running})"


def run_in_thread(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    log_level: str = "warning",
    startup_timeout_s: float = 10.0,
    graceful_shutdown_s: float = 1.0,
    lifespan: Literal["auto", "on", "off"] = "auto",
) -> ServerHandle:
    """Start `app` on `host:port` (0 = any free port) and return once it accepts connections.

    The graceful-shutdown bound matters: a simulator fault that deliberately hangs requests
    would otherwise keep `stop()` waiting for as long as the hang lasts.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        log_level=log_level,
        lifespan=lifespan,
        access_log=False,
        # uvicorn hands it to asyncio.wait_for, which takes seconds as a float (1.0 by default);
        # its annotation says int
        timeout_graceful_shutdown=graceful_shutdown_s,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run,
        kwargs={"sockets": [sock]},
        name=f"uvicorn-{host}:{bound_port}",
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive():
            sock.close()
            raise RuntimeError(f"server on {host}:{bound_port} exited during start-up")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"server on {host}:{bound_port} did not start in time")
        time.sleep(0.01)
    return ServerHandle(server, thread, host, bound_port)
