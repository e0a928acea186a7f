"""Tenants of a local run: created through the same admin logic as ``POST /admin/tenants``,
each with a portal in the SDP simulator, and optionally seeded with a demo tenant's history,
KB articles and assets so context gathering and prompts have realistic sizes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from core.sdp_url_policy import SdpUrlPolicy
from core.tenant_types import WebhookAuthMode
from local_stack.database import Database
from local_stack.simulators import Simulators
from pipeline.tenancy.admin import TenantAdmin
from pipeline.tenancy.credential_cipher import CredentialCipher

# Limits no run reaches: the simulators do not throttle, and a benchmark measures the service,
# not the tenants' budgets.
GENEROUS = {
    "llm_rate_per_minute": 1_000_000,
    "sdp_rate_per_minute": 1_000_000,
    "webhook_rate_per_minute": 10_000_000,
}


def local_tenant_admin(pool: asyncpg.Pool, encryption_keys: str) -> TenantAdmin:
    """The admin logic with loopback SDP URLs allowed: the SDP simulator listens on
    127.0.0.1, which the SSRF rules refuse by default."""
    return TenantAdmin(
        pool,
        CredentialCipher.from_csv(encryption_keys),
        url_policy=SdpUrlPolicy(allow_loopback=True),
    )


@dataclass
class Tenant:
    id: str
    secret: str
    api_token: str
    templates: list[dict[str, Any]] = field(default_factory=list)

    def spec(self) -> dict[str, str]:
        return {"id": self.id, "secret": self.secret}


async def create_tenants(
    db: Database,
    count: int,
    prefix: str,
    *,
    sdp_url: str,
    sims: Simulators | None = None,
    settings: dict[str, Any] | None = None,
    webhook_auth: WebhookAuthMode = "hmac",
) -> list[Tenant]:
    from db.pool import create_pool
    from pipeline.tenancy.admin import TenantCreate

    pool = await create_pool(db.service_url, min_size=1, max_size=2)
    try:
        admin = local_tenant_admin(pool, db.encryption_keys)
        tenants = []
        for _ in range(count):
            tenant_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
            key = f"sdp-{uuid.uuid4().hex}"
            if sims is not None:
                sims.add_portal(tenant_id, key)
            created = await admin.create(
                TenantCreate(
                    id=tenant_id,
                    sdp_url=sdp_url,
                    sdp_key=key,
                    webhook_auth=webhook_auth,
                    settings=settings or GENEROUS,
                ),
                actor="benchmark",
            )
            assert created.webhook_secret and created.api_token
            tenants.append(Tenant(tenant_id, created.webhook_secret, created.api_token))
        return tenants
    finally:
        await pool.close()


async def seed_knowledge(db: Database, tenants: list[Tenant]) -> dict[str, int]:
    """Give each tenant a demo tenant's history, KB and assets (acme/globex alternating), so
    context gathering and prompts have realistic sizes. Returns rows per kind."""
    from db.pool import create_pool, tenant_transaction
    from pipeline.batch.importers import import_assets_csv, import_kb_directory
    from pipeline.retrieval.history import ResolvedTicket, store_resolved_ticket
    from simulators.demo_data import TENANTS, load_demo_dataset

    counts = {"tickets": 0, "kb": 0, "assets": 0}
    datasets = [load_demo_dataset(name) for name in TENANTS]
    pool = await create_pool(db.service_url, min_size=1, max_size=2)
    try:
        for i, tenant in enumerate(tenants):
            data = datasets[i % len(datasets)]
            async with tenant_transaction(pool, tenant.id) as conn:
                for request in data.resolved_tickets:
                    ticket = ResolvedTicket.from_sdp(request)
                    await store_resolved_ticket(conn, tenant.id, ticket, assess=False)
                    counts["tickets"] += 1
            counts["kb"] += (await import_kb_directory(pool, tenant.id, data.kb_dir)).seen
            counts["assets"] += (await import_assets_csv(pool, tenant.id, data.assets_csv)).seen
            tenant.templates = data.open_tickets
    finally:
        await pool.close()
    return counts
