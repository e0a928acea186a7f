"""ServiceDesk Plus webhooks: authenticate the raw bytes, persist, then acknowledge.

The routes are declared here (what the OpenAPI document describes) and their endpoints are what
answers; in the app ``create_api`` builds, ``serve_app.routes.webhook_fast_path`` calls them
directly, ahead of FastAPI's routing and dependency resolution."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from core import metric_catalogue as mc
from core.webhook_auth import WebhookAuthError, verify_webhook
from db.pool import tenant_transaction
from db.repositories.enhancements import enqueue
from pipeline.observability.tracing import current_carrier, trace_id_hex, tracer
from pipeline.retrieval.embedder import embed_resolved_ticket
from pipeline.retrieval.history import ResolvedTicket, store_resolved_ticket
from pipeline.sdp.wire import SdpFieldError, TicketWebhook, parse_ticket_webhook
from pipeline.tenancy.admin import TENANT_ID_PATTERN
from serve_app.deps import State
from serve_app.guards.input_rules import BadInput, check_datetime, decode_json, read_limited_body
from serve_app.schemas import ErrorBody, ResolvedAccepted, WebhookAccepted
from serve_app.tenant_directory import TenantAuthView

router = APIRouter(tags=["webhooks"])
log = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed JSON"},
    401: {"model": ErrorBody, "description": "Missing signature"},
    403: {"model": ErrorBody, "description": "Invalid signature (also unknown/disabled tenant)"},
    413: {"model": ErrorBody, "description": "Body too large"},
    422: {"model": ErrorBody, "description": "Payload lacks a field, e.g. the ticket id"},
    429: {"model": ErrorBody, "description": "Tenant intake throttled (see Retry-After)"},
    503: {"model": ErrorBody, "description": "Database unavailable (see Retry-After)"},
}


async def _authenticate(
    request: Request, state: State, tenant_id: str
) -> tuple[TenantAuthView, bytes]:
    body = await read_limited_body(request, state.settings.max_body_bytes)
    view = None
    if TENANT_ID_PATTERN.fullmatch(tenant_id):
        view = await (await state.directory()).webhook_view(tenant_id)
    try:
        verify_webhook(
            request.headers,
            body,
            view.webhook if view else None,
            now=time.time(),
            max_skew_s=state.settings.webhook_max_skew_s,
        )
    except WebhookAuthError as exc:
        outcome = "rejected_missing" if exc.status_code == 401 else "rejected_auth"
        state.metrics.inc(
            mc.WEBHOOKS, {"tenant": view.tenant_id if view else "unknown", "outcome": outcome}
        )
        log.warning(
            "webhook rejected",
            extra={"tenant_id": tenant_id, "reason": exc.reason, "status": exc.status_code},
        )
        raise HTTPException(exc.status_code, exc.detail) from None
    assert view is not None
    per_minute = (
        view.settings.webhook_rate_per_minute or state.settings.default_webhook_rate_per_minute
    )
    wait = state.throttle.try_acquire(tenant_id, per_minute)
    if wait > 0:
        state.metrics.inc(mc.WEBHOOKS, {"tenant": tenant_id, "outcome": "throttled"})
        log.warning("webhook throttled", extra={"tenant_id": tenant_id, "reason": "rate"})
        raise HTTPException(
            429,
            "Too many webhooks for this tenant",
            headers={"Retry-After": str(max(1, round(wait + 0.5)))},
        )
    return view, body


def _parse(state: State, tenant_id: str, body: bytes) -> TicketWebhook:
    """The mapper's result, then the rules it does not own: dates PostgreSQL can store, and
    any pydantic refusal of the mapped model as a 422 rather than a 500."""
    try:
        webhook = parse_ticket_webhook(decode_json(body), body)
        check_datetime(webhook.resolved_at, ["body", "resolved_at"])
        check_datetime(webhook.ticket.updated_at, ["body", "updated_at"])
        return webhook
    except BadInput as exc:
        raise HTTPException(exc.status_code, exc.detail) from None
    except ValidationError as exc:
        raise HTTPException(
            422,
            [
                {"loc": ["body", *map(str, e["loc"])], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors()
            ],
        ) from None
    except SdpFieldError as exc:
        state.metrics.inc(mc.WEBHOOKS, {"tenant": tenant_id, "outcome": "rejected_payload"})
        log.warning("webhook payload rejected", extra={"tenant_id": tenant_id, "reason": str(exc)})
        raise HTTPException(
            422,
            [{"loc": ["body", *exc.field.split(".")], "msg": exc.message, "type": "value_error"}],
        ) from None


def _refuse_resolved(state: State, tenant_id: str, webhook: TicketWebhook) -> None:
    field = webhook.resolved_by()
    if field is None:
        return
    state.metrics.inc(mc.WEBHOOKS, {"tenant": tenant_id, "outcome": "rejected_payload"})
    log.warning(
        "webhook payload rejected",
        extra={
            "tenant_id": tenant_id,
            "reason": f"resolved ticket ({field}) on the new-ticket route",
        },
    )
    raise HTTPException(
        422,
        [
            {
                "loc": ["body", field],
                "msg": "a resolved ticket belongs on /webhook/servicedesk/{tenant_id}/resolved; "
                "this route takes new and updated tickets",
                "type": "wrong_route",
            }
        ],
    )


@router.post(
    "/webhook/servicedesk/{tenant_id}",
    status_code=202,
    response_model=WebhookAccepted,
    responses={200: {"model": WebhookAccepted, "description": "Duplicate delivery"}, **_ERRORS},
)
async def ticket_created(tenant_id: str, request: Request, state: State) -> JSONResponse:
    """A new (or updated) ticket. Committed as a `queued` job before the 202 is sent. A
    resolved ticket (an event `resolved`/`closed`, a resolution or a resolution time) is a 422
    here: it belongs on `.../resolved`, so a signed body cannot be replayed across routes."""
    _, body = await _authenticate(request, state, tenant_id)
    webhook = _parse(state, tenant_id, body)
    _refuse_resolved(state, tenant_id, webhook)
    with tracer().start_as_current_span(
        "webhook.receive",
        attributes={"tenant.id": tenant_id, "ticket.id": webhook.ticket.ticket_id},
    ) as span:
        pool = await state.pool()
        async with pool.acquire() as conn:  # one statement, its own transaction (see enqueue)
            queued = await enqueue(
                conn,
                tenant_id=tenant_id,
                ticket_id=webhook.ticket.ticket_id,
                event=webhook.event,
                dedupe_key=webhook.dedupe_key(),
                payload=webhook.model_dump(mode="json"),
                trace_context=current_carrier(),
                trace_id=trace_id_hex(span),
                max_attempts=state.settings.job_max_attempts,
            )
        span.set_attribute("enhancement.id", str(queued.id))
    outcome = "accepted" if queued.created else "duplicate"
    state.metrics.inc(mc.WEBHOOKS, {"tenant": tenant_id, "outcome": outcome})
    log.info(
        "webhook %s",
        outcome,
        extra={
            "tenant_id": tenant_id,
            "ticket_id": webhook.ticket.ticket_id,
            "enhancement_id": str(queued.id),
        },
    )
    answer = WebhookAccepted(
        enhancement_id=queued.id,
        status=queued.status,
        duplicate=not queued.created,
        trace_id=queued.trace_id,
    )
    return JSONResponse(answer.model_dump(mode="json"), status_code=202 if queued.created else 200)


@router.post(
    "/webhook/servicedesk/{tenant_id}/resolved",
    status_code=202,
    response_model=ResolvedAccepted,
    responses=_ERRORS,
)
async def ticket_resolved(tenant_id: str, request: Request, state: State) -> JSONResponse:
    """A resolved ticket joins the tenant's history (the similar-ticket source)."""
    _, body = await _authenticate(request, state, tenant_id)
    webhook = _parse(state, tenant_id, body)
    if not webhook.resolution:
        raise HTTPException(
            422,
            [
                {
                    "loc": ["body", "resolution"],
                    "type": "missing",
                    "msg": "the resolution text is required",
                }
            ],
        )
    pool = await state.pool()
    ticket = ResolvedTicket(
        ticket_id=webhook.ticket.ticket_id,
        subject=webhook.ticket.subject,
        description=webhook.ticket.description,
        resolution=webhook.resolution,
        priority=webhook.ticket.priority,
        tags=webhook.tags,
        resolved_at=webhook.resolved_at,
    )
    async with tenant_transaction(pool, tenant_id) as conn:
        stored = await store_resolved_ticket(conn, tenant_id, ticket)
    await embed_resolved_ticket(pool, tenant_id, webhook.ticket)
    state.metrics.inc(mc.WEBHOOKS, {"tenant": tenant_id, "outcome": "resolved_stored"})
    answer = ResolvedAccepted(
        ticket_id=webhook.ticket.ticket_id,
        status="stored" if stored.created else "updated",
        suggestion_hit=stored.verdict.hit if stored.verdict else None,
    )
    return JSONResponse(answer.model_dump(), status_code=202)


# Served by ``serve_app.routes.webhook_fast_path`` ahead of FastAPI's router, which calls each
# with its path parameters as keywords plus ``request`` and ``state``: keep that signature.
FAST_PATH_ENDPOINTS = (ticket_created, ticket_resolved)

__all__ = ["FAST_PATH_ENDPOINTS", "router"]
