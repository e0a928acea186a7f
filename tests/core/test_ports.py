"""`free_port`: ports for servers another process binds, chosen so nobody races us for them.

The demo test once failed because a port from `bind(0)` was taken by one of Ray's own processes
(they bind random ephemeral ports) before Ray's dashboard bound it. These tests pin the three
defences: a range nobody else draws from, a cross-process reservation, a bind probe.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import core.ports as ports
from core.ports import PORT_RANGE, free_port


def _ephemeral() -> range:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return range(int(low), int(high) + 1)


def test_ports_are_distinct_and_outside_ephemeral_and_ray_worker_ranges() -> None:
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == 20
    for port in ports:
        assert port in PORT_RANGE
        assert port not in _ephemeral()
        assert not 10002 <= port <= 19999  # Ray's worker ports
        assert not 30000 <= port <= 31000  # Serve's direct-ingress replica ports


def test_port_reserved_by_another_live_process_is_never_handed_out(monkeypatch) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
            import sys
            from core.ports import free_port
            print(",".join(str(free_port()) for _ in range(5)), flush=True)
            sys.stdin.read()  # hold the reservations until the test closes stdin
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        held = [int(p) for p in child.stdout.readline().strip().split(",")]
        # start this process's search exactly where the child's was, so both contend
        monkeypatch.setattr(ports, "_cursor", [held[0] - PORT_RANGE.start])
        mine = [free_port() for _ in range(5)]
        assert not set(mine) & set(held), (mine, held)
        # nothing is listening on the child's ports: only the reservation kept us off them
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", held[0]))
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    # once the child has exited (even a SIGKILL drops a flock), its ports are free again
    monkeypatch.setattr(ports, "_cursor", [held[0] - PORT_RANGE.start])
    assert free_port() == held[0]


def test_port_something_already_listens_on_is_skipped(monkeypatch) -> None:
    candidate = free_port()
    os.close(ports._held_locks.pop(candidate))  # forget our reservation, as a fresh process would
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", candidate))
        listener.listen()
        monkeypatch.setattr(ports, "_cursor", [candidate - PORT_RANGE.start])
        assert free_port() != candidate
