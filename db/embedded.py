"""Embedded PostgreSQL (the `pgserver` wheel) so one machine needs nothing but `pip install`.

The server lives in ``<data_dir>/postgres`` and listens only on a Unix socket in that folder
(trust authentication, so the socket's file permissions are the access control). It is reused
on the next start; with ``stop_on_exit`` it stops when the last process that started it exits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

SERVICE_ROLE = "ai_agents_app"
# How long to wait for a killed postmaster to be reaped before starting anyway.
REAP_WAIT_S = 30.0


@dataclass(frozen=True)
class EmbeddedDatabase:
    pgdata: Path
    owner_url: str
    service_url: str


def start_embedded(data_dir: Path, *, stop_on_exit: bool = True) -> EmbeddedDatabase:
    try:  # the `local` extra: external-database deployments (the image) never need it
        import pgserver
    except ModuleNotFoundError:
        raise RuntimeError(
            "no AI_AGENTS_DATABASE_URL, and the embedded PostgreSQL is not installed "
            "(pip install 'ai-agents[local]'); set AI_AGENTS_DATABASE_URL to your PostgreSQL"
        ) from None

    pgdata = Path(data_dir) / "postgres"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    wait_for_killed_postmaster(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop" if stop_on_exit else None)
    socket_dir = quote(str(pgdata), safe="")
    return EmbeddedDatabase(
        pgdata=pgdata,
        owner_url=server.get_uri(),
        service_url=f"postgresql://{SERVICE_ROLE}@/postgres?host={socket_dir}",
    )


def wait_for_killed_postmaster(pgdata: Path, timeout_s: float = REAP_WAIT_S) -> None:
    """Wait while the postmaster named in ``postmaster.pid`` is a zombie.

    pgserver takes any existing pid in ``postmaster.pid`` for a running server and hands out
    its socket. A postmaster killed with SIGKILL (a crash, the OOM killer) stays a zombie until
    its parent reaps it — PID 1, since ``pg_ctl`` daemonises it — and a container's PID 1 can
    take a second or more. A restart inside that window would connect to the dead server's
    socket and fail with ``ECONNREFUSED``; PostgreSQL itself would refuse to start too, as its
    lock-file check sees the zombie as alive. Once the pid
    is gone, pgserver starts a new server as after any crash.
    """
    import psutil  # pgserver's own dependency: present wherever the embedded database is

    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return  # no server has run here, or it stopped cleanly
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return  # running (pgserver reuses it)
        except psutil.NoSuchProcess:
            return  # gone: pgserver starts a new server
        time.sleep(0.05)
