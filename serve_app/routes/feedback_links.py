"""``GET/POST /f/{token}``: the one-click feedback links at the end of every note.

GET only shows the answer the link stands for and a Confirm button: link scanners and mail
previews that fetch URLs cast no votes. The POST from that page records the feedback in the
same table as ``POST /api/v1/feedback`` (so the feedback API, stats, the
``ai_agents_feedback_*`` gauges and ``LowFeedbackRating`` see it), one vote per note and kind:
confirming again updates the answer and comment instead of adding a row.

The token is the whole credential (no login): it is checked before anything touches the
database, it reaches only its own enhancement, read inside its tenant's transaction (a
token naming one tenant and another tenant's enhancement finds nothing), and requests are
rate-limited per client (its real address: ``serve_app.guards.client_address``, the limits:
``serve_app.guards.client_throttle``) and per tenant.
"""

from __future__ import annotations

import logging
from typing import cast
from urllib.parse import parse_qs

import asyncpg
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from db.pool import tenant_transaction
from db.repositories import feedback as repo
from db.repositories.audit import write_audit
from pipeline.note.feedback_links import Answer, LinkClaims, LinkError
from serve_app.deps import State
from serve_app.feedback_pages import (
    COMMENT_MAX_CHARS,
    answer_text,
    confirm_page,
    error_page,
    thanks_page,
)
from serve_app.guards.client_address import client_key
from serve_app.guards.input_rules import read_limited_body

router = APIRouter(tags=["feedback links"], include_in_schema=False)
log = logging.getLogger(__name__)

_BODY_LIMIT = 16 * 1024
_TENANT_RATE_FACTOR = 10  # a tenant's technicians together may click 10x one address' rate


class _Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _throttle(state: State, key: str, per_minute: int) -> None:
    wait = state.throttle.try_acquire(key, per_minute)
    if wait > 0:
        raise _Refused(
            429,
            "Too many feedback requests; try again in a minute.",
            {"Retry-After": str(max(1, round(wait + 0.5)))},
        )


def _claims(request: Request, state: State, token: str) -> LinkClaims:
    per_minute = state.settings.feedback_link_rate_per_minute
    client = client_key(
        request.client.host if request.client else None,
        request.headers.getlist("x-forwarded-for"),
        state.trusted_proxies,
    )
    wait = state.clients.try_acquire(client, per_minute)
    if wait > 0:
        raise _Refused(
            429,
            "Too many feedback requests; try again in a minute.",
            {"Retry-After": str(max(1, round(wait + 0.5)))},
        )
    if state.feedback_links is None:
        raise _Refused(404, "Feedback links are not enabled on this service.")
    try:
        claims = state.feedback_links.verify(token)
    except LinkError as exc:
        log.info("feedback link refused", extra={"reason": exc.message, "status": exc.status})
        raise _Refused(exc.status, exc.message) from None
    _throttle(state, f"feedback-link:tenant:{claims.tenant_id}", per_minute * _TENANT_RATE_FACTOR)
    return claims


async def _ticket_and_previous(
    conn: asyncpg.Connection, claims: LinkClaims
) -> tuple[str, str | None]:
    status = await conn.fetchval("SELECT status FROM tenants WHERE id = $1", claims.tenant_id)
    if status != "active":  # a disabled tenant's links stop with the rest of its access
        raise _Refused(
            403 if status else 404,
            "This feedback link is no longer accepted."
            if status
            else "This note is not known to the service.",
        )
    ticket_id = await repo.ticket_for_enhancement(conn, claims.enhancement_id)
    if ticket_id is None:
        raise _Refused(404, "This note is not known to the service.")
    row = await repo.link_feedback(conn, claims.enhancement_id, claims.vote_slot)
    previous = None
    if row is not None:
        # The schema CHECKs rating_value BETWEEN 1 AND 5, so every stored vote is an Answer.
        answer = cast(
            Answer,
            str(row["rating_value"])
            if row["rating_value"]
            else ("up" if row["feedback_type"] == "thumbs_up" else "down"),
        )
        previous = answer_text(
            LinkClaims(claims.tenant_id, claims.enhancement_id, answer, claims.expires_at)
        )
    return ticket_id, previous


@router.get("/f/{token}")
async def show_feedback_link(token: str, request: Request, state: State) -> Response:
    try:
        claims = _claims(request, state, token)
        async with tenant_transaction(await state.pool(), claims.tenant_id) as conn:
            ticket_id, previous = await _ticket_and_previous(conn, claims)
    except _Refused as refused:
        return error_page(
            refused.status,
            refused.message,
            wants_json=_wants_json(request),
            headers=refused.headers,
        )
    return confirm_page(claims, ticket_id, previous)


async def _comment(request: Request) -> str | None:
    try:
        body = await read_limited_body(request, _BODY_LIMIT)
    except HTTPException as exc:
        raise _Refused(exc.status_code, str(exc.detail)) from None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and content_type not in ("application/x-www-form-urlencoded", ""):
        raise _Refused(415, "Send the form as application/x-www-form-urlencoded.")
    try:
        fields = parse_qs(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=5
        )
    except (UnicodeDecodeError, ValueError):
        raise _Refused(400, "The form could not be read.") from None
    comment = " ".join((fields.get("comment") or [""])[0].split()) if "comment" in fields else ""
    if len(comment) > COMMENT_MAX_CHARS:
        raise _Refused(422, f"The comment is longer than {COMMENT_MAX_CHARS} characters.")
    return comment or None


@router.post("/f/{token}")
async def confirm_feedback_link(token: str, request: Request, state: State) -> Response:
    try:
        claims = _claims(request, state, token)
        comment = await _comment(request)
        async with tenant_transaction(await state.pool(), claims.tenant_id) as conn:
            ticket_id, _ = await _ticket_and_previous(conn, claims)
            row, created = await repo.upsert_link_feedback(
                conn,
                tenant_id=claims.tenant_id,
                enhancement_id=claims.enhancement_id,
                ticket_id=ticket_id,
                vote=claims.vote_slot,
                feedback_type=claims.feedback_type,
                rating_value=claims.rating_value,
                comment=comment,
            )
            await write_audit(
                conn,
                tenant_id=claims.tenant_id,
                actor="feedback-link",
                action="feedback.link",
                target=f"enhancement:{claims.enhancement_id}",
                outcome="success" if created else "updated",
                details={"type": claims.feedback_type, "feedback_id": row["id"]},
            )
    except _Refused as refused:
        return error_page(
            refused.status,
            refused.message,
            wants_json=_wants_json(request),
            headers=refused.headers,
        )
    log.info(
        "feedback link confirmed: %s",
        answer_text(claims),
        extra={
            "tenant_id": claims.tenant_id,
            "enhancement_id": str(claims.enhancement_id),
            "ticket_id": ticket_id,
        },
    )
    return thanks_page(claims, ticket_id, updated=not created)
