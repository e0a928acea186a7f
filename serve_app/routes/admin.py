"""Tenant administration over HTTP: the same TenantAdmin as the CLI."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from pipeline.tenancy.admin import (
    ErasureReport,
    ErasureRequest,
    SdpUrlRefused,
    TenantCreate,
    TenantCredentials,
    TenantExists,
    TenantInfo,
    TenantUpdate,
    UnknownTenant,
)
from serve_app.deps import AdminActor, State
from serve_app.schemas import ErrorBody

router = APIRouter(prefix="/admin/tenants", tags=["admin"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    404: {"model": ErrorBody},
    413: {"model": ErrorBody},
    503: {"model": ErrorBody},
}


def _not_found(tenant_id: str) -> HTTPException:
    return HTTPException(404, f"Unknown tenant {tenant_id!r}")


def _url_refused(exc: SdpUrlRefused) -> HTTPException:
    return HTTPException(
        422, [{"loc": ["body", "sdp_url"], "msg": str(exc), "type": "url_refused"}]
    )


@router.post(
    "",
    status_code=201,
    response_model=TenantCredentials,
    responses={409: {"model": ErrorBody}, **_ERRORS},
)
async def create_tenant(spec: TenantCreate, actor: AdminActor, state: State) -> TenantCredentials:
    """Returns the webhook secret and API token once; store them."""
    try:
        return await (await state.tenant_admin()).create(spec, actor=actor)
    except TenantExists:
        raise HTTPException(409, f"Tenant {spec.id!r} already exists") from None
    except SdpUrlRefused as exc:
        raise _url_refused(exc) from None


@router.get("", response_model=list[TenantInfo], responses=_ERRORS)
async def list_tenants(actor: AdminActor, state: State) -> list[TenantInfo]:
    return await (await state.tenant_admin()).list()


@router.patch("/{tenant_id}", response_model=TenantInfo, responses=_ERRORS)
async def update_tenant(
    tenant_id: str, change: TenantUpdate, actor: AdminActor, state: State
) -> TenantInfo:
    try:
        return await (await state.tenant_admin()).update(tenant_id, change, actor=actor)
    except UnknownTenant:
        raise _not_found(tenant_id) from None
    except SdpUrlRefused as exc:
        raise _url_refused(exc) from None


@router.post("/{tenant_id}/disable", response_model=TenantInfo, responses=_ERRORS)
async def disable_tenant(tenant_id: str, actor: AdminActor, state: State) -> TenantInfo:
    try:
        return await (await state.tenant_admin()).disable(tenant_id, actor=actor)
    except UnknownTenant:
        raise _not_found(tenant_id) from None


@router.post("/{tenant_id}/rotate-secret", response_model=TenantCredentials, responses=_ERRORS)
async def rotate_secret(tenant_id: str, actor: AdminActor, state: State) -> TenantCredentials:
    try:
        return await (await state.tenant_admin()).rotate_secret(tenant_id, actor=actor)
    except UnknownTenant:
        raise _not_found(tenant_id) from None


@router.post("/{tenant_id}/rotate-token", response_model=TenantCredentials, responses=_ERRORS)
async def rotate_token(tenant_id: str, actor: AdminActor, state: State) -> TenantCredentials:
    try:
        return await (await state.tenant_admin()).rotate_token(tenant_id, actor=actor)
    except UnknownTenant:
        raise _not_found(tenant_id) from None


@router.post("/{tenant_id}/erase-requester", response_model=ErasureReport, responses=_ERRORS)
async def erase_requester(
    tenant_id: str, request: ErasureRequest, actor: AdminActor, state: State
) -> ErasureReport:
    """Remove or anonymise everything stored about one requester of the tenant: their
    resolved tickets (with embeddings and search terms), their jobs' payloads, proposals and
    explain records, feedback comments on their tickets, and every mention of their e-mail or
    names elsewhere. The audit log gets the counts, never the e-mail; the e-mail travels in the
    body, so no URL or access log carries it."""
    try:
        return await (await state.tenant_admin()).erase_requester(tenant_id, request, actor=actor)
    except UnknownTenant:
        raise _not_found(tenant_id) from None
