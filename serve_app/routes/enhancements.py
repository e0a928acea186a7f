"""Enhancement status for the tenant that owns it (another tenant's id is simply not found)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query

from db.pool import tenant_transaction
from db.repositories.enhancements import get_public, list_public
from pipeline.models import JobStatus
from pipeline.note.insight import Explanation, load_explanation
from serve_app.deps import Pool, State, TenantId
from serve_app.guards.input_rules import UtcDatetime
from serve_app.schemas import Enhancement, EnhancementList, ErrorBody

router = APIRouter(prefix="/api/v1/enhancements", tags=["enhancements"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    503: {"model": ErrorBody},
}


@router.get(
    "/{enhancement_id}",
    response_model=Enhancement,
    responses={404: {"model": ErrorBody}, **_ERRORS},
)
async def get_enhancement(
    enhancement_id: uuid.UUID, tenant_id: TenantId, pool: Pool
) -> Enhancement:
    async with tenant_transaction(pool, tenant_id) as conn:
        row = await get_public(conn, enhancement_id)
    if row is None:
        raise HTTPException(404, "Enhancement not found")
    return Enhancement(**dict(row))


@router.get(
    "/{enhancement_id}/explain",
    response_model=Explanation,
    responses={404: {"model": ErrorBody}, **_ERRORS},
)
async def explain_enhancement(
    enhancement_id: uuid.UUID, tenant_id: TenantId, pool: Pool, state: State
) -> Explanation:
    """Retrieval candidates with scores, the prompt as the LLM saw it, its raw answer,
    outcome and fallbacks, stage timings, attempts, cost and trace id."""
    found = await load_explanation(
        pool,
        enhancement_id,
        tenant_id=tenant_id,
        retention_days=state.settings.explain_retention_days,
    )
    if found is None:
        raise HTTPException(404, "Enhancement not found")
    return found


@router.get("", response_model=EnhancementList, responses=_ERRORS)
async def list_enhancements(
    tenant_id: TenantId,
    pool: Pool,
    status: Literal[JobStatus, "context_only", "llm", "skipped"] | None = None,
    ticket_id: str | None = Query(None, max_length=64),
    since: UtcDatetime | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> EnhancementList:
    async with tenant_transaction(pool, tenant_id) as conn:
        rows = await list_public(
            conn, status=status, ticket_id=ticket_id, since=since, limit=limit, offset=offset
        )
    return EnhancementList(items=[Enhancement(**dict(r)) for r in rows], limit=limit, offset=offset)
