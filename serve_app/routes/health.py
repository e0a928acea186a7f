"""Liveness, readiness and the database-derived metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from db.repositories.vectors import vector_search_available
from serve_app.api_state import DatabaseUnavailable
from serve_app.db_metrics import render_db_metrics
from serve_app.deps import State
from serve_app.guards.metrics_auth import MetricsReader, operator_token_presented
from serve_app.schemas import ErrorBody, Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process serves HTTP. Says nothing about dependencies (see /api/v1/ready)."""
    return Health()


async def _database(state: State) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        pool = await state.pool()
        async with asyncio.timeout(3):
            await pool.fetchval("SELECT 1")
    except (DatabaseUnavailable, OSError, TimeoutError, Exception) as exc:  # noqa: BLE001
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def _vector_search(state: State) -> dict[str, Any]:
    """Degraded, not down: without pgvector the notes still come, from full-text search."""
    try:
        pool = await state.pool()
        async with pool.acquire() as conn:
            async with asyncio.timeout(3):
                present = await vector_search_available(conn)
    except Exception as exc:  # noqa: BLE001 - the database component reports the outage
        return {"ok": True, "mode": "unknown", "error": type(exc).__name__}
    if present:
        return {"ok": True, "mode": "hybrid"}
    return {
        "ok": True,
        "mode": "full-text only",
        "detail": "the pgvector extension ('vector') is not installed in the database; "
        "install it, CREATE EXTENSION vector as a superuser, re-run migrate",
    }


# An unauthenticated flood of /ready costs at most one round of checks per second and replica.
_ANONYMOUS_REUSE_S = 1.0


async def _components(state: State) -> dict[str, dict[str, Any]]:
    components = {"database": await _database(state)}
    if components["database"]["ok"]:
        components["vector_search"] = await _vector_search(state)
    if state.readiness_probe is not None:
        try:
            async with asyncio.timeout(5):
                components.update(await state.readiness_probe())
        except Exception as exc:  # noqa: BLE001 - a failing probe is a not-ready answer
            components["pipeline"] = {"ok": False, "error": type(exc).__name__}
    return components


@router.get(
    "/api/v1/ready",
    response_model=Readiness,
    response_model_exclude_none=True,
    responses={503: {"model": Readiness}},
)
async def ready(request: Request, state: State) -> JSONResponse:
    """200 when the database, the dispatcher and the pools are all usable, else 503. Without a
    token the body is only `{"status"}` (what a load balancer needs); with `Authorization:
    Bearer <metrics token>` or the admin token it adds `components`, each part's state (the
    part that is not ready, dispatcher internals, tenants left out of claims)."""
    operator = operator_token_presented(request, state)
    cached = state.ready_cache
    if not operator and cached is not None and time.monotonic() - cached[0] < _ANONYMOUS_REUSE_S:
        components = cached[1]
    else:
        components = await _components(state)
        state.ready_cache = (time.monotonic(), components)
    ok = all(c.get("ok") for c in components.values())
    body = Readiness(
        status="ready" if ok else "not_ready", components=components if operator else None
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=200 if ok else 503,
        headers=None if ok else {"Retry-After": "5"},
    )


@router.get(
    "/metrics",
    response_class=Response,
    include_in_schema=True,
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
)
async def metrics(state: State, _reader: MetricsReader) -> Response:
    """Prometheus text: queue depth, oldest job, feedback, LLM tokens and cost per tenant,
    budgets — computed from PostgreSQL. Counters
    and histograms of the replicas are on Ray's metrics port (docs/operations/metrics.md). Needs
    `Authorization: Bearer <metrics token>`: the series name every tenant."""
    try:
        pool = await state.pool()
    except DatabaseUnavailable:
        pool = None
    body = await render_db_metrics(
        pool, deployment_budget_usd=state.settings.llm_monthly_budget_usd
    )
    return Response(body, media_type=CONTENT_TYPE_LATEST)
