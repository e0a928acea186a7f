"""A slow client for the red-team probes: one connection sending a request head, then the rest
a byte a second, watching when the server answers and closes (bounded by ``watch_s``). The loop
is the intake benchmark's (``benchmarks.intake.slow_clients.watch_slow_client``)."""

from __future__ import annotations

from benchmarks.intake.slow_clients import watch_slow_client as _watch


def watch_slow_client(port: int, head: bytes, drip: bytes, watch_s: float) -> tuple[float, bytes]:
    """Seconds until the server closed the connection (``watch_s`` when it never closed) and
    what it answered."""
    _, closed_s, answer = _watch(port, head, drip, watch_s)
    return (watch_s if closed_s is None else closed_s), answer
