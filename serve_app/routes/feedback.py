"""Technician feedback on enhancements, and its statistics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from db.pool import tenant_transaction
from db.repositories import enhancements, ranking
from db.repositories import feedback as repo
from db.repositories.audit import write_audit
from pipeline.retrieval.ranking.quality import expected_calibration_error, reliability
from serve_app.deps import Pool, TenantId
from serve_app.guards.input_rules import UtcDatetime
from serve_app.schemas import (
    CalibrationStats,
    ErrorBody,
    Feedback,
    FeedbackIn,
    FeedbackList,
    FeedbackStats,
    ReliabilityRow,
    SuggestionStats,
)

router = APIRouter(prefix="/api/v1/feedback", tags=["feedback"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    503: {"model": ErrorBody},
}


@router.post(
    "", status_code=201, response_model=Feedback, responses={404: {"model": ErrorBody}, **_ERRORS}
)
async def submit_feedback(body: FeedbackIn, tenant_id: TenantId, pool: Pool) -> Feedback:
    async with tenant_transaction(pool, tenant_id) as conn:
        enhancement_id = body.enhancement_id
        if enhancement_id is not None:
            ticket_id = await repo.ticket_for_enhancement(conn, enhancement_id)
            if ticket_id is None:
                raise HTTPException(404, "Enhancement not found")
            if body.ticket_id is not None and body.ticket_id != ticket_id:
                raise HTTPException(
                    422,
                    [
                        {
                            "loc": ["body", "ticket_id"],
                            "type": "value_error",
                            "msg": "does not match the enhancement's ticket",
                        }
                    ],
                )
        else:
            ticket_id = body.ticket_id
            assert ticket_id is not None  # FeedbackIn requires enhancement_id or ticket_id
            enhancement_id = await repo.latest_enhancement_for_ticket(conn, ticket_id)
        row = await repo.insert_feedback(
            conn,
            tenant_id=tenant_id,
            enhancement_id=enhancement_id,
            ticket_id=ticket_id,
            feedback_type=body.feedback_type,
            rating_value=body.rating_value,
            technician_email=body.technician_email,
            comment=body.comment,
        )
        await write_audit(
            conn,
            tenant_id=tenant_id,
            actor=body.technician_email or "api",
            action="feedback.create",
            target=f"enhancement:{enhancement_id}",
            outcome="success",
            details={"type": body.feedback_type},
        )
    return Feedback(**dict(row))


@router.get("", response_model=FeedbackList, responses=_ERRORS)
async def list_feedback(
    tenant_id: TenantId,
    pool: Pool,
    start_date: UtcDatetime | None = None,
    end_date: UtcDatetime | None = None,
    feedback_type: str | None = Query(None, pattern="^(thumbs_up|thumbs_down|rating)$"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> FeedbackList:
    async with tenant_transaction(pool, tenant_id) as conn:
        rows = await repo.list_feedback(
            conn,
            start=start_date,
            end=end_date,
            feedback_type=feedback_type,
            limit=limit,
            offset=offset,
        )
    return FeedbackList(items=[Feedback(**dict(r)) for r in rows], limit=limit, offset=offset)


@router.get("/stats", response_model=FeedbackStats, responses=_ERRORS)
async def feedback_stats(
    tenant_id: TenantId,
    pool: Pool,
    start_date: UtcDatetime | None = None,
    end_date: UtcDatetime | None = None,
) -> FeedbackStats:
    async with tenant_transaction(pool, tenant_id) as conn:
        row = await repo.feedback_stats(conn, start=start_date, end=end_date)
        hits = await enhancements.suggestion_stats(conn, start=start_date, end=end_date)
        stated = await ranking.tenant_confidence_rows(conn, start=start_date, end=end_date)
    total = row["total"]
    checked = hits["checked"]
    suggestions = SuggestionStats(
        checked=checked,
        hits=hits["hits"],
        hit_rate=round(hits["hits"] / checked, 4) if checked else None,
        average_rank=round(float(hits["average_rank"]), 3) if hits["average_rank"] else None,
    )
    return FeedbackStats(
        total_feedback=total,
        average_rating=round(float(row["average_rating"]), 3) if row["average_rating"] else None,
        counts={
            "thumbs_up": row["thumbs_up"],
            "thumbs_down": row["thumbs_down"],
            "rating": row["rating"],
        },
        positive_percentage=round(100.0 * row["positive"] / total, 2) if total else None,
        suggestions=suggestions,
        calibration=_calibration([(r["confidence"], r["confidence_outcome"]) for r in stated]),
        start_date=start_date,
        end_date=end_date,
    )


def _calibration(pairs: list[tuple[float, bool]]) -> CalibrationStats:
    n = len(pairs)
    return CalibrationStats(
        notes=n,
        mean_confidence=round(sum(p for p, _ in pairs) / n, 4) if n else None,
        first_right=round(sum(ok for _, ok in pairs) / n, 4) if n else None,
        ece=expected_calibration_error(pairs) if n else None,
        reliability=[ReliabilityRow(**row) for row in reliability(pairs)],
    )
