"""The HTTP app without Ray: ``create_api`` driven in-process over ASGI (httpx.ASGITransport)
against the session's real PostgreSQL.

Input handling, authentication and the documented answers do not depend on Ray, so the HTTP
contract is tested here in milliseconds per request instead of behind a Serve stack that takes
half a minute to start on two cores. Nothing is mocked: the app, its pool and the database are
the real ones; only the socket is left out (tests of what the HTTP server itself does — body
limits on the wire, keep-alive after a 500, an external fuzzer — run the same app under uvicorn).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from core.settings import Settings
from db.embedded import EmbeddedDatabase
from pipeline.tenancy.credential_cipher import new_secret
from serve_app.api import create_api
from serve_app.api_state import ApiState
from simulators.servicedesk.webhook_sender import webhook_headers

# Requests go to the app object, never to the network; the host only names it in URLs.
BASE_URL = "http://ray-free-api.test"


@dataclass
class ApiTenant:
    tenant_id: str
    webhook_secret: str
    api_token: str
    mode: str


@dataclass
class RayFreeApi:
    """One app instance and a client bound to it; ``url`` keeps absolute f-string URLs working."""

    app: FastAPI
    admin_token: str
    http: httpx.AsyncClient
    url: str = BASE_URL

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    async def tenant(self, prefix: str = "api", mode: str = "hmac", **fields: Any) -> ApiTenant:
        """Created over HTTP (a public SDP address, so the default SSRF rules accept it)."""
        tenant_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
        body = {
            "id": tenant_id,
            "sdp_url": "https://sdp.example.com",
            "sdp_key": "k-1",
            "webhook_auth": mode,
            "settings": {"webhook_rate_per_minute": 1_000_000},
            **fields,
        }
        answer = await self.http.post(f"{self.url}/admin/tenants", json=body, headers=self.admin)
        assert answer.status_code == 201, answer.text
        creds = answer.json()
        return ApiTenant(tenant_id, creds["webhook_secret"], creds["api_token"], mode)

    async def webhook(
        self,
        tenant: ApiTenant,
        body: bytes,
        suffix: str = "",
        content_type: str = "application/json",
    ) -> httpx.Response:
        """Raw bytes, correctly signed (hmac) or carrying the token (token mode)."""
        headers = webhook_headers(
            body,
            tenant.mode,  # type: ignore[arg-type]
            tenant.webhook_secret,
        )
        headers["Content-Type"] = content_type
        return await self.http.post(
            f"{self.url}/webhook/servicedesk/{tenant.tenant_id}{suffix}",
            content=body,
            headers=headers,
        )


def ray_free_settings(
    database: EmbeddedDatabase, encryption_keys: str, data_dir: Path, **overrides: Any
) -> Settings:
    """Explicit values: nothing from the environment of whoever runs the tests (the Ray
    integration session exports AI_AGENTS_* variables into this process)."""
    for name, value in (
        ("sdp_allow_loopback", False),
        ("sdp_allowed_networks", []),
        ("max_body_bytes", 1024 * 1024),
    ):
        overrides.setdefault(name, value)
    overrides.setdefault("admin_token", new_secret("adm_"))
    return Settings(
        database_url=database.service_url,
        encryption_keys=encryption_keys,
        data_dir=data_dir,
        **overrides,
    )


@asynccontextmanager
async def ray_free_api(
    database: EmbeddedDatabase, encryption_keys: str, data_dir: Path, **overrides: Any
) -> AsyncIterator[RayFreeApi]:
    """A fresh app (settings ``overrides`` on top of the explicit defaults) and its client; the
    app's database pool is closed on exit."""
    settings = ray_free_settings(database, encryption_keys, data_dir, **overrides)
    state = ApiState.from_settings(settings, directory_ttl_s=0.0)
    app = create_api(state)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=30) as http:
            admin_token = settings.admin_token.get_secret_value() if settings.admin_token else ""
            yield RayFreeApi(app, admin_token, http)
    finally:
        await state.close()
