"""Ports for processes that bind them themselves: Ray's dashboard, Serve's HTTP port, the
simulators and HAProxy's private ports.

Lives in the core (no Ray, no simulator) because the service, the KubeRay renderer's ingress
settings, the simulators and the tests all need it.
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
from pathlib import Path

__all__ = ["PORT_RANGE", "free_port"]


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
    start, so one of them could take the port before the intended server binds it. Instead the
    port comes from `PORT_RANGE`, which neither the kernel nor Ray draws from, and is reserved
    across our processes with a lock file (`PORT_LOCK_DIR/<port>.lock`, held until this process
    exits) so parallel test runs never pick the same port; a bind probe on every address skips
    ports something already holds.
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
