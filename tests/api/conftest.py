"""The HTTP app without Ray: ``create_api`` under real uvicorn, against the session's real
PostgreSQL. Input handling does not depend on Ray, so these tests start in a second instead of
the half minute a Serve stack takes on two cores."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pipeline.core.settings import Settings
from pipeline.credential_cipher import new_secret
from serve_app.api import create_api
from serve_app.api_state import ApiState
from simulators.servicedesk.webhook_sender import webhook_headers
from simulators.serving import ServerHandle, run_in_thread


@dataclass
class BareTenant:
    tenant_id: str
    webhook_secret: str
    api_token: str
    mode: str


@dataclass
class BareApi:
    url: str
    admin_token: str
    app: FastAPI
    http: httpx.AsyncClient

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    async def tenant(self, prefix: str = "api", mode: str = "hmac", **fields: Any) -> BareTenant:
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
        return BareTenant(tenant_id, creds["webhook_secret"], creds["api_token"], mode)

    async def webhook(
        self,
        tenant: BareTenant,
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


def bare_settings(database, encryption_keys: str, data_dir, **overrides: Any) -> Settings:
    """Explicit values: nothing from the environment of whoever runs the tests (the Ray
    integration session exports AI_AGENTS_* variables into this process)."""
    for name, value in (
        ("sdp_allow_loopback", False),
        ("sdp_allowed_networks", []),
        ("max_body_bytes", 1024 * 1024),
    ):
        overrides.setdefault(name, value)
    return Settings(
        database_url=database.service_url,
        encryption_keys=encryption_keys,
        admin_token=overrides.pop("admin_token"),
        data_dir=data_dir,
        **overrides,
    )


@pytest.fixture(scope="module")
def bare_server(database, encryption_keys, data_dir) -> Iterator[tuple[ServerHandle, str, FastAPI]]:
    admin_token = new_secret("adm_")
    settings = bare_settings(database, encryption_keys, data_dir, admin_token=admin_token)
    app = create_api(ApiState.from_settings(settings, directory_ttl_s=0.0))
    handle = run_in_thread(app, lifespan="off")
    yield handle, admin_token, app
    handle.stop()


@pytest.fixture
async def bare_api(bare_server) -> AsyncIterator[BareApi]:
    handle, admin_token, app = bare_server
    async with httpx.AsyncClient(timeout=30) as http:
        yield BareApi(handle.url, admin_token, app, http)
