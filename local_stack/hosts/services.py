"""What the cluster talks to, each on a host of its own: PostgreSQL, Redis (GCS fault
tolerance), the ServiceDesk Plus and LLM simulators.

- PostgreSQL: the embedded server (``pgserver``'s binaries) created and migrated as
  ``ai-agents`` does, then run by the harness inside the database host, listening on its
  address with password (SCRAM) authentication for the subnet: the Ray hosts reach it as a
  real network database, with the service role's URL (and its password) as a secret file.
- Redis: Debian's ``redis-server`` with a password, from a config file (mode 0600), not the
  command line; no persistence (the GCS' tables live as long as the run).
- The simulators: served by threads of this process that entered the SDP and LLM hosts'
  namespaces, so their sockets live on those hosts and the run can still read what was written
  (notes, calls) from their state.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from db.embedded import SERVICE_ROLE
from local_stack.database import Database, start_database
from local_stack.hosts.containers import Container
from local_stack.hosts.netns import entered, in_namespace
from local_stack.hosts.network import SUBNET, Host
from local_stack.simulators import Simulators
from simulators.llm.app import create_app as create_llm_app
from simulators.llm.state import LLMSimulatorState
from simulators.servicedesk.app import create_app as create_sdp_app
from simulators.servicedesk.store import SimulatorState
from simulators.serving import run_in_thread

POSTGRES_PORT = 5432
REDIS_PORT = 6379
SDP_PORT = 8080
LLM_PORT = 8000
PG_SYSTEM_USER = "pgserver"  # pgserver's own user when run as root (postgres refuses root)


def wait_for_port(namespace: str, address: str, port: int, timeout_s: float = 60.0) -> None:
    """Until ``address:port`` accepts a TCP connection from inside ``namespace``."""
    deadline = time.monotonic() + timeout_s

    def probe() -> bool:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return True
        except OSError:
            return False

    while time.monotonic() < deadline:
        if in_namespace(namespace, probe):
            return
        time.sleep(0.3)
    raise TimeoutError(f"{address}:{port} did not accept connections in {timeout_s:.0f} s")


@dataclass
class NetworkDatabase:
    """PostgreSQL on its host; ``database`` is what the local stack's helpers take, with the
    owner's and the service role's URLs over the network."""

    database: Database
    container: Container
    host: Host

    def stop(self) -> None:
        self.container.stop(grace_s=10)


async def _set_passwords(owner_socket_url: str, owner: str, service: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(owner_socket_url)
    try:
        await conn.execute(f"ALTER ROLE postgres PASSWORD '{owner}'")
        await conn.execute(f"ALTER ROLE {SERVICE_ROLE} PASSWORD '{service}'")
    finally:
        await conn.close()


def start_postgres(host: Host, data_dir: Path, log_dir: Path) -> NetworkDatabase:
    """Create and migrate the database (Unix socket, this process), then serve it from
    ``host`` on ``host.ip:5432`` to the subnet with passwords."""
    local = asyncio.run(start_database(data_dir))
    owner_pw, service_pw = secrets.token_hex(16), secrets.token_hex(16)
    asyncio.run(_set_passwords(local.owner_url, owner_pw, service_pw))
    pgdata = data_dir / "postgres"
    pid = local.postmaster_pid
    if pid is not None:  # stop the socket-only server; the host's takes over the data
        import psutil

        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
    (pgdata / "pg_hba.conf").write_text(
        f"local all all trust\nhost all all {SUBNET} scram-sha-256\n"
    )
    import pgserver

    binary = Path(pgserver.__file__).parent / "pginstall" / "bin" / "postgres"
    container = Container(
        "postgres",
        host.namespace,
        [
            "runuser",
            "-u",
            PG_SYSTEM_USER,
            "--",
            str(binary),
            "-D",
            str(pgdata),
            "-c",
            f"listen_addresses={host.ip}",
            "-c",
            f"port={POSTGRES_PORT}",
            "-c",
            f"unix_socket_directories={pgdata}",
            "-c",
            "max_connections=300",
        ],
        {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
        log_dir / "postgres.log",
        restart=False,
    ).start()
    wait_for_port(host.namespace, host.ip, POSTGRES_PORT)
    at = f"{host.ip}:{POSTGRES_PORT}/postgres"
    database = Database(
        data_dir,
        service_url=f"postgresql://{SERVICE_ROLE}:{quote(service_pw)}@{at}",
        owner_url=f"postgresql://postgres:{quote(owner_pw)}@{at}",
        encryption_keys=local.encryption_keys,
        admin_token=local.admin_token,
    )
    return NetworkDatabase(database, container, host)


@dataclass
class Redis:
    container: Container
    host: Host
    password: str

    @property
    def address(self) -> str:
        return f"{self.host.ip}:{REDIS_PORT}"

    def stop(self) -> None:
        self.container.stop()


def start_redis(host: Host, run_dir: Path) -> Redis:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    password = secrets.token_hex(24)
    workdir = run_dir / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "redis.conf"
    config.touch(mode=0o600)
    config.write_text(
        f'bind {host.ip}\nport {REDIS_PORT}\nrequirepass {password}\nsave ""\n'
        f"appendonly no\ndir {workdir}\ndaemonize no\nprotected-mode yes\n"
    )
    container = Container(
        "redis",
        host.namespace,
        [binary, str(config)],
        {"PATH": "/usr/bin:/bin"},
        run_dir / "logs" / "redis.log",
        restart=False,
    ).start()
    wait_for_port(host.namespace, host.ip, REDIS_PORT)
    return Redis(container, host, password)


class HostSimulators(Simulators):
    """The SDP simulator on ``sdp`` and the LLM simulator on ``llm``, at their addresses."""

    def __init__(
        self,
        sdp: Host,
        llm: Host,
        *,
        seed: int = 11,
        llm_latency_s: float = 0.0,
        llm_api_keys: list[str] | None = None,
        sdp_latency_ms: float = 0.0,
    ) -> None:
        self.sdp_latency_ms = sdp_latency_ms
        self.sdp = SimulatorState(seed=seed)
        self.llm = LLMSimulatorState(api_keys=llm_api_keys, latency_s=llm_latency_s)
        self._sdp_server = in_namespace(
            sdp.namespace, run_in_thread, create_sdp_app(self.sdp), sdp.ip, SDP_PORT
        )
        self._llm_server = in_namespace(
            llm.namespace, run_in_thread, create_llm_app(self.llm), llm.ip, LLM_PORT
        )


def probe_from(namespace: str, address: str, port: int, timeout_s: float = 2.0) -> bool:
    """Can ``namespace`` open a TCP connection to ``address:port``?"""
    with entered(namespace):
        try:
            socket.create_connection((address, port), timeout=timeout_s).close()
            return True
        except OSError:
            return False
