"""Embedded PostgreSQL (the `pgserver` wheel) so one machine needs nothing but `pip install`.

The server lives in ``<data_dir>/postgres`` and listens only on a Unix socket in that folder
(trust authentication, so the socket's file permissions are the access control). It is reused
on the next start; with ``stop_on_exit`` it stops when the last process that started it exits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

SERVICE_ROLE = "ai_agents_app"


@dataclass(frozen=True)
class EmbeddedDatabase:
    pgdata: Path
    owner_url: str
    service_url: str


def start_embedded(data_dir: Path, *, stop_on_exit: bool = True) -> EmbeddedDatabase:
    import pgserver  # imported lazily: external-database deployments never need it

    pgdata = Path(data_dir) / "postgres"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop" if stop_on_exit else None)
    socket_dir = quote(str(pgdata), safe="")
    return EmbeddedDatabase(
        pgdata=pgdata,
        owner_url=server.get_uri(),
        service_url=f"postgresql://{SERVICE_ROLE}@/postgres?host={socket_dir}",
    )
