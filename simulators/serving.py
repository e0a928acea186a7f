"""Run an ASGI app with uvicorn on a background thread, for tests, the demo and benchmarks.

Both simulators (ServiceDesk Plus and the LLM) must be reachable over real loopback HTTP so
that the code under test exercises its real transport, retries and timeouts; mocking httpx
would hide exactly the bugs the simulators exist to find. The socket is bound here, before
uvicorn starts, so callers can ask for port 0 and still learn the real port without races.

Ports for *other* processes (Ray's dashboard, the Serve HTTP port, HAProxy's stats port) cannot
be bound here and handed over, so `free_port` picks them race-free instead; see its docstring.
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

__all__ = ["PORT_RANGE", "ServerHandle", "free_port", "run_in_thread"]


# Nobody else draws from this range: Linux hands out ephemeral ports (what `bind(0)` and every
# outgoing connection get, and what Ray's GCS, raylet and agents take) from 32768-60999, Ray's
# workers listen on 10002-19999 and Serve's direct-ingress replicas on 30000-31000.
PORT_RANGE = range(20000, 30000)
PORT_LOCK_DIR = Path(tempfile.gettempdir()) / "ai-agents-ports"
_held_locks: dict[int, int] = {}  # port -> fd of its lock file, held until this process exits
_cursor: list[int] = []


def _ephemeral_range() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def _claim(port: int) -> bool:
    """Lock `port` for this process (a lock file, released by the kernel when the process
    exits, even on SIGKILL), then check nothing is bound to it on any address."""
    if not PORT_LOCK_DIR.is_dir():
        PORT_LOCK_DIR.mkdir(exist_ok=True)
        os.chmod(PORT_LOCK_DIR, 0o1777)  # shared like /tmp: every user's runs reserve here
    fd = os.open(PORT_LOCK_DIR / f"{port}.lock", os.O_RDONLY | os.O_CREAT, 0o444)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("0.0.0.0", port))  # no SO_REUSEADDR: a port in TIME_WAIT is skipped too
    except OSError:
        os.close(fd)
        return False
    _held_locks[port] = fd
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port for a process that must bind it itself (Ray's dashboard, Serve's HTTP port).

    Handing out `bind(0)`'s answer is racy: the kernel gives the same ephemeral range to every
    process on the machine, and Ray's own processes bind random ephemeral ports while they
    start, so one of them could take the port before the intended server binds it (the demo
    test once failed on exactly that). Instead the port comes from `PORT_RANGE`, which neither
    the kernel nor Ray draws from, and is reserved across our processes with a lock file
    (`PORT_LOCK_DIR/<port>.lock`, held until this process exits) so parallel test runs never
    pick the same port; a bind probe on every address skips ports something already holds.
    Each process starts at its own pid-derived offset so parallel runs rarely even contend.
    `host` is kept for callers' readability; the probe covers every address.
    """
    del host
    ephemeral = _ephemeral_range()
    span = len(PORT_RANGE)
    if not _cursor:
        _cursor.append((os.getpid() * 7919) % span)
    for _ in range(span):
        port = PORT_RANGE.start + _cursor[0]
        _cursor[0] = (_cursor[0] + 1) % span
        if port in _held_locks or port in ephemeral:
            continue
        if _claim(port):
            return port
    raise RuntimeError(f"no free port in {PORT_RANGE.start}-{PORT_RANGE.stop - 1}")


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
    lifespan: str = "auto",
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
        timeout_graceful_shutdown=graceful_shutdown_s,
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
