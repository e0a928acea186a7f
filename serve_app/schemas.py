"""Request and response models of the HTTP API (what /docs shows)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.models import JobOutcome, JobStatus
from pipeline.text.storable import CleanText

FeedbackType = Literal["thumbs_up", "thumbs_down", "rating"]


class WebhookAccepted(BaseModel):
    enhancement_id: uuid.UUID
    status: str = Field(examples=["queued"])
    duplicate: bool = False
    trace_id: str | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "enhancement_id": "7d1f6c1e-8a56-4c1b-9d0e-3b8f6f4d2a11",
                    "status": "queued",
                    "duplicate": False,
                    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                }
            ]
        }
    )


class ResolvedAccepted(BaseModel):
    ticket_id: str
    status: Literal["stored", "updated"]
    suggestion_hit: bool | None = Field(
        None, description="whether the note on this ticket proposed the fix; null: no note"
    )


class ErrorBody(BaseModel):
    detail: Any = Field(examples=["Invalid signature"])


class Enhancement(BaseModel):
    id: uuid.UUID
    ticket_id: str
    event: str
    status: JobStatus
    outcome: JobOutcome | None = Field(
        None,
        description="skipped: no note was written; `error` says why (e.g. 'tenant "
        "disabled' for jobs still queued when the tenant was disabled)",
    )
    stage: str | None = None
    attempts: int
    max_attempts: int
    received_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    stage_timings: dict[str, float] = Field(default_factory=dict, description="seconds per stage")
    context_sources: list[dict[str, Any]] | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    note_id: str | None = None
    error: str | None = Field(None, description="last error, or the reason a job was skipped")
    trace_id: str | None = None
    supersedes: uuid.UUID | None = None
    batch_id: str | None = None
    suggestion_hit: bool | None = Field(
        None, description="the note proposed what fixed the ticket; null until it is resolved"
    )
    suggestion_rank: int | None = Field(None, description="position of the matching proposal")
    suggestion_similarity: float | None = Field(None, description="0-1, resolution vs proposal")


class EnhancementList(BaseModel):
    items: list[Enhancement]
    limit: int
    offset: int


class FeedbackIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "enhancement_id": "7d1f6c1e-8a56-4c1b-9d0e-3b8f6f4d2a11",
                    "feedback_type": "rating",
                    "rating_value": 4,
                    "technician_email": "tech@msp.example",
                    "comment": "Spot on",
                }
            ]
        },
    )

    enhancement_id: uuid.UUID | None = None
    ticket_id: CleanText | None = Field(None, min_length=1, max_length=64)
    feedback_type: FeedbackType
    rating_value: int | None = Field(None, ge=1, le=5)
    technician_email: CleanText | None = Field(
        None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    )
    comment: CleanText | None = Field(None, max_length=4000)

    @model_validator(mode="after")
    def _consistent(self) -> FeedbackIn:
        if self.enhancement_id is None and self.ticket_id is None:
            raise ValueError("enhancement_id or ticket_id is required")
        if self.feedback_type == "rating" and self.rating_value is None:
            raise ValueError("rating_value (1-5) is required for feedback_type 'rating'")
        if self.feedback_type != "rating" and self.rating_value is not None:
            raise ValueError("rating_value is only allowed with feedback_type 'rating'")
        return self


class Feedback(BaseModel):
    id: int
    enhancement_id: uuid.UUID | None
    ticket_id: str
    feedback_type: FeedbackType
    rating_value: int | None
    technician_email: str | None
    comment: str | None
    created_at: datetime


class FeedbackList(BaseModel):
    items: list[Feedback]
    limit: int
    offset: int


class SuggestionStats(BaseModel):
    """Measured from resolved tickets, not clicks: see docs/architecture/suggestion-hit-rate.md."""

    checked: int = Field(description="enhanced tickets whose resolution arrived")
    hits: int
    hit_rate: float | None = Field(description="hits / checked, 0-1")
    average_rank: float | None = Field(description="mean position of the matching proposal")


class ReliabilityRow(BaseModel):
    bin: str = Field(description="a tenth of stated confidence, e.g. 0.8-0.9")
    notes: int
    stated: float = Field(description="mean confidence the notes stated, 0-1")
    observed: float = Field(description="share whose first precedent had the fix, 0-1")


class CalibrationStats(BaseModel):
    """Does the stated confidence mean what it says: docs/architecture/retrieval-quality.md."""

    notes: int = Field(description="notes whose outcome is known (resolved or voted down)")
    mean_confidence: float | None = Field(description="mean stated confidence, 0-1")
    first_right: float | None = Field(description="share whose first precedent had the fix")
    ece: float | None = Field(description="expected calibration error, 0-1 (0 is perfect)")
    reliability: list[ReliabilityRow] = Field(default_factory=list)


class FeedbackStats(BaseModel):
    total_feedback: int
    average_rating: float | None
    counts: dict[str, int]
    positive_percentage: float | None
    suggestions: SuggestionStats | None = None
    calibration: CalibrationStats | None = None
    start_date: datetime | None
    end_date: datetime | None


class Health(BaseModel):
    status: Literal["healthy"] = "healthy"


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    components: dict[str, dict[str, Any]] | None = Field(
        None, description="each part's state; only with the metrics or the admin token"
    )
