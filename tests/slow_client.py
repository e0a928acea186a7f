"""A slow client for the red-team probes: one connection sending a request head, then the rest
a byte a second, watching when the server answers and closes (bounded by ``watch_s``)."""

from __future__ import annotations

import socket
import time


def watch_slow_client(port: int, head: bytes, drip: bytes, watch_s: float) -> tuple[float, bytes]:
    """Send ``head``, then ``drip`` a byte a second; seconds until the server closed the
    connection and what it answered (``watch_s`` when it never closed)."""
    started = time.monotonic()
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
                return time.monotonic() - started, answer
            answer += chunk
    return watch_s, answer
