"""The product app's own work per webhook, without Serve, HTTP or a load generator process.

``python -m benchmarks.intake.in_process [--webhooks 3000] [--profile]`` starts an embedded
PostgreSQL in a temporary directory, creates 8 token-mode tenants, builds ``create_api`` as the
Ingress replica does (JSON logging on, written to /dev/null; tracing configured, exporting
nothing; the 2 s tenant TTL) and calls it over raw ASGI with the load generator's webhook body,
32 requests at a time. It prints the statements the app's database pool sends per webhook
(asyncpg's query logger on each of its connections: every round trip, the pool's reset on
release included), the tenant loads and the process CPU per webhook; ``--profile`` adds
cProfile's top functions. The statements and loads are counts; the CPU moves with whatever else
the machine runs.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import cProfile
import io
import os
import pstats
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.rig.loadgen import ticket_body
from core.settings import Settings
from db import pool as db_pool
from db.embedded import start_embedded
from db.migrate import migrate
from db.pool import create_pool
from pipeline.observability.logging_setup import configure_logging
from pipeline.observability.tracing import configure_tracing
from pipeline.tenancy.admin import TenantAdmin, TenantCreate
from pipeline.tenancy.credential_cipher import CredentialCipher, new_encryption_key, new_secret
from serve_app.api import create_api
from serve_app.api_state import ApiState
from serve_app.tenant_directory import TenantDirectory

TENANTS = 8
CONCURRENCY = 32
UNLIMITED = 10_000_000  # webhooks per minute: the throttle is not what is measured


def _scope(tenant_id: str, token: str, body: bytes) -> dict[str, Any]:
    path = f"/webhook/servicedesk/{tenant_id}"
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"in-process"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-webhook-token", token.encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


class Driver:
    def __init__(self, app: Any, tenants: list[tuple[str, str]]) -> None:
        self.app = app
        self.tenants = tenants
        self.statuses: dict[int, int] = {}

    async def one(self, index: int) -> None:
        tenant_id, token = self.tenants[index % len(self.tenants)]
        body = ticket_body(f"ip-{uuid.uuid4().hex[:12]}", int(time.time() * 1000))
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # no disconnect while the app answers
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] = self.statuses.get(message["status"], 0) + 1

        await self.app(_scope(tenant_id, token, body), receive, send)

    async def run(self, count: int) -> None:
        indices = iter(range(count))

        async def worker() -> None:
            for index in indices:
                await self.one(index)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def _count_statements(counter: list[int]) -> None:
    """Every connection the pools open from now on adds one to ``counter`` per statement."""
    init = db_pool._init_connection

    async def counting_init(conn: asyncpg.Connection) -> None:
        await init(conn)
        conn.add_query_logger(lambda _record: counter.__setitem__(0, counter[0] + 1))

    db_pool._init_connection = counting_init


async def measure(webhooks: int, profile: bool) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="aai-", dir="/tmp"))
    # registered before the database starts, so it runs after the database's own stop at exit
    atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    db = start_embedded(data_dir, stop_on_exit=True)
    await migrate(db.owner_url, db.service_url)
    keys = new_encryption_key()
    settings = Settings(
        database_url=db.service_url,
        encryption_keys=keys,
        data_dir=data_dir,
        admin_token=new_secret("adm_"),
        default_webhook_rate_per_minute=UNLIMITED,
    )
    loads = [0]
    load = TenantDirectory._load

    async def counted(directory: TenantDirectory, tenant_id: str) -> Any:
        loads[0] += 1
        return await load(directory, tenant_id)

    TenantDirectory._load = counted  # type: ignore[method-assign,assignment]
    statements = [0]
    _count_statements(statements)
    state = ApiState.from_settings(settings)
    admin_pool = await create_pool(db.service_url, max_size=2)
    admin = TenantAdmin(admin_pool, CredentialCipher.from_csv(keys))
    tenants = []
    for number in range(TENANTS):
        created = await admin.create(
            TenantCreate(
                id=f"ip{number}-{uuid.uuid4().hex[:6]}",
                sdp_url="https://sdp.example.com",
                sdp_key="k",
                webhook_auth="token",
                settings={"webhook_rate_per_minute": UNLIMITED},
            ),
            actor="benchmark",
        )
        assert created.webhook_secret is not None
        tenants.append((created.tenant_id, created.webhook_secret))
    driver = Driver(create_api(state), tenants)
    await driver.run(300)  # warm-up: connections, caches, imports
    driver.statuses.clear()
    loads[0] = statements[0] = 0
    profiler = cProfile.Profile() if profile else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    await driver.run(webhooks)
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    sent = statements[0]
    print(f"answers {driver.statuses} for {webhooks} webhooks")
    print(f"database statements per webhook: {sent / webhooks:.3f}")
    print(f"tenant loads: {loads[0]}")
    print(f"process CPU per webhook: {1000 * cpu / webhooks:.3f} ms (wall {wall:.1f} s)")
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
        print(out.getvalue())
    await state.close()
    await admin_pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=3000)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    args = parser.parse_args()
    import uvloop

    configure_tracing()
    configure_logging("INFO", stream=open(os.devnull, "w"))  # noqa: SIM115 - for the process

    uvloop.run(measure(args.webhooks, args.profile))


if __name__ == "__main__":
    main()
