"""Typed FastAPI dependencies: the state, the database pool, and who is calling."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

import asyncpg
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core import metric_catalogue as mc
from db.repositories.audit import write_audit
from pipeline.tenancy.credential_cipher import hash_token
from serve_app.api_state import ApiState

log = logging.getLogger(__name__)


async def get_state(request: Request) -> ApiState:
    # async: FastAPI runs a plain-def dependency in its thread pool, a thread hop on every
    # request of the hot webhook path.
    return request.app.state.api


State = Annotated[ApiState, Depends(get_state)]


async def get_pool(state: State) -> asyncpg.Pool:
    return await state.pool()


Pool = Annotated[asyncpg.Pool, Depends(get_pool)]


# Declared for the OpenAPI document (the Authorize button, generated clients); the checks and
# their 401/403 answers stay in _bearer below, so auto_error is off.
_TENANT_SCHEME = HTTPBearer(
    auto_error=False,
    scheme_name="TenantToken",
    description="The tenant's API token (`tenant create` prints it).",
)
_ADMIN_SCHEME = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="The admin token (AI_AGENTS_ADMIN_TOKEN).",
)
Declared = Annotated[HTTPAuthorizationCredentials | None, Security(_TENANT_SCHEME)]
DeclaredAdmin = Annotated[HTTPAuthorizationCredentials | None, Security(_ADMIN_SCHEME)]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "Missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


async def get_tenant_id(request: Request, state: State, _scheme: Declared) -> str:
    """The tenant is the token's; nothing in the request can choose another one."""
    token = _bearer(request)
    tenant_id = await (await state.directory()).tenant_for_token(token)
    if tenant_id is None:
        raise HTTPException(403, "Invalid token")
    request.state.tenant_id = tenant_id
    claimed = request.query_params.get("tenant_id") or request.headers.get("x-tenant-id")
    if claimed is not None and claimed != tenant_id:
        await _deny_cross_tenant(request, state, tenant_id, claimed)
    return tenant_id


async def _deny_cross_tenant(
    request: Request, state: ApiState, tenant_id: str, claimed: str
) -> None:
    state.metrics.inc(mc.ISOLATION_VIOLATIONS, {"tenant": tenant_id})
    await write_audit(
        await state.pool(),
        tenant_id=tenant_id,
        actor=f"api-token:{tenant_id}",
        action="cross_tenant_access",
        target=f"tenant:{claimed[:64]}",
        outcome="denied",
        details={"path": request.url.path, "method": request.method},
    )
    log.warning(
        "cross-tenant access denied",
        extra={"tenant_id": tenant_id, "reason": "tenant_id names another tenant"},
    )
    raise HTTPException(403, "Access to another tenant's data is not allowed")


TenantId = Annotated[str, Depends(get_tenant_id)]


async def require_admin(request: Request, state: State, _scheme: DeclaredAdmin) -> str:
    token = _bearer(request)
    expected = state.admin_token_hash
    if expected is None or not hmac.compare_digest(hash_token(token), expected):
        raise HTTPException(403, "Invalid token")
    return "admin-api"


AdminActor = Annotated[str, Depends(require_admin)]


async def tenant_or_admin(
    request: Request, state: State, _tenant: Declared, _admin: DeclaredAdmin
) -> str | None:
    """Routes that answer both: the admin token reads every tenant (None), a tenant's API
    token only its own (the tenant id), exactly as ``get_tenant_id`` decides it."""
    token = _bearer(request)
    expected = state.admin_token_hash
    if expected is not None and hmac.compare_digest(hash_token(token), expected):
        return None
    return await get_tenant_id(request, state, None)


TenantOrAdmin = Annotated[str | None, Depends(tenant_or_admin)]
