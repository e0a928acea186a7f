"""The intake floor: only the durable part of a webhook, nothing else.

    python -m benchmarks.rig.intake_floor --port P --tenants-file tenants.json   # AI_AGENTS_* env

Why: the product's intake is judged as a ratio to what this machine can do at best for the
same guarantee — a webhook is acknowledged only after its job row is committed. The floor is
uvicorn (uvloop + httptools) with a bare ASGI callable and an asyncpg pool: a constant-time
check of the ``X-Webhook-Token`` header against the tenant's secret (``hmac.compare_digest``),
the JSON body parsed for the ticket id, and one ``INSERT`` into ``enhancements`` committed with
PostgreSQL's default ``synchronous_commit = on``, then 202. No FastAPI, no tenant lookup in the
database (the secrets come from ``--tenants-file``), no NOTIFY, no RLS context (it connects as
the owner, as ``AI_AGENTS_FLOOR_DATABASE_URL``), no metrics, no logging.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
from typing import Any

import asyncpg
import uvicorn

INSERT = (
    "INSERT INTO enhancements (tenant_id, ticket_id, dedupe_key, payload) "
    "VALUES ($1, $2, $3, $4::jsonb) RETURNING id"
)
PREFIX = "/webhook/servicedesk/"


class IntakeFloor:
    """A bare ASGI app; the pool is created on the first request (uvicorn's loop)."""

    def __init__(self, database_url: str, secrets: dict[str, bytes]) -> None:
        self._url = database_url
        self._secrets = secrets
        self._pool: asyncpg.Pool | None = None

    async def _answer(self, send: Any, status: int, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == "/health":
            await self._answer(send, 200, b'{"status":"ok"}')
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        tenant_id = path[len(PREFIX) :] if path.startswith(PREFIX) else ""
        secret = self._secrets.get(tenant_id, b"")
        token = next((v for k, v in scope["headers"] if k == b"x-webhook-token"), b"")
        if not secret or not hmac.compare_digest(token, secret):
            await self._answer(send, 403, b'{"detail":"Invalid signature"}')
            return
        raw = b"".join(chunks)
        try:
            request = json.loads(raw)["request"]
            ticket_id = str(request["id"])
        except (ValueError, KeyError, TypeError):
            await self._answer(send, 422, b'{"detail":"request.id is required"}')
            return
        if self._pool is None:
            self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=10)
        job_id = await self._pool.fetchval(
            INSERT, tenant_id, ticket_id, f"{ticket_id}:created", raw.decode()
        )
        await self._answer(
            send, 202, json.dumps({"enhancement_id": str(job_id), "status": "queued"}).encode()
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tenants-file", required=True, help='[{"id": ..., "secret": ...}]')
    args = parser.parse_args()
    with open(args.tenants_file) as handle:
        secrets = {t["id"]: t["secret"].encode() for t in json.load(handle)}
    app = IntakeFloor(os.environ["AI_AGENTS_FLOOR_DATABASE_URL"], secrets)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="off",
    )


if __name__ == "__main__":
    main()
