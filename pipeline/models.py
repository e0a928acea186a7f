"""Pydantic models that cross module and process boundaries in the enhancement pipeline.

These are the contracts between the context gatherer, the synthesizer, the note renderer and
the simulators. Citation ids have the form ``ticket:<id>``, ``kb:<id>`` or ``asset:<ip>`` so a
claim in a note can always be traced back to the source it came from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

SourceName = Literal["sdp_ticket", "similar_tickets", "kb_articles", "ip_assets"]
SourceStatus = Literal["ok", "empty", "timeout", "error", "skipped"]


class Ticket(BaseModel):
    """The ticket being enhanced, normalised from either webhook shape or the SDP API."""

    ticket_id: str
    subject: str = ""
    description: str = ""
    priority: str | None = None
    status: str | None = None
    requester_name: str | None = None
    requester_email: str | None = None
    updated_at: datetime | None = None
    # SDP's category, subcategory and item (and tags): a ranking feature against the history's
    tags: list[str] = Field(default_factory=list, max_length=20)


class SimilarTicket(BaseModel):
    ticket_id: str
    subject: str
    resolution: str
    score: float  # the fused full-text + vector score, 0-1
    resolved_at: datetime | None = None
    # the second stage's probability that this precedent is relevant (None: not ranked)
    relevance: float | None = None

    @property
    def citation(self) -> str:
        return f"ticket:{self.ticket_id}"


class KBArticle(BaseModel):
    article_id: str
    title: str
    excerpt: str
    score: float
    url: str | None = None

    @property
    def citation(self) -> str:
        return f"kb:{self.article_id}"


class AssetMatch(BaseModel):
    ip: str
    match: Literal["host", "subnet"]
    network: str
    hostname: str | None = None
    role: str | None = None
    owner: str | None = None
    location: str | None = None

    @property
    def citation(self) -> str:
        return f"asset:{self.ip}"


class SourceOutcome(BaseModel):
    """What one context source did, recorded on the enhancement so partial context is visible."""

    name: SourceName
    status: SourceStatus
    duration_ms: float = 0.0
    items: int = 0
    error: str | None = None


class RankedCandidate(BaseModel):
    """One fused candidate as the second stage saw it; kept for explain and for learning."""

    ticket_id: str
    rank: int = Field(ge=1, description="1 = the ranker's first")
    probability: float = Field(ge=0.0, le=1.0)
    shown: bool
    features: list[float]


class RankingRecord(BaseModel):
    """How the similar tickets were ranked and cut, and how the note's confidence is calibrated:
    the model's parameters travel with the context so a note, its explanation and its training
    examples all use the model that actually ranked it."""

    model: str = Field(description="which fitted model ranked: default, deployment or tenant")
    feature_names: list[str]
    weights: list[float]
    intercept: float
    bar_absolute: float
    bar_relative: float
    # Platt scaling: slope on logit(first probability), weight of the LLM's own confidence
    # (centred on 0.5; 0 when there is none), intercept
    calibration: tuple[float, float, float] = (1.0, 0.0, 0.0)
    candidates: list[RankedCandidate] = Field(default_factory=list)

    @property
    def top_probability(self) -> float:
        return self.candidates[0].probability if self.candidates else 0.0


class TicketContext(BaseModel):
    ticket: Ticket
    similar_tickets: list[SimilarTicket] = Field(default_factory=list)
    kb_articles: list[KBArticle] = Field(default_factory=list)
    assets: list[AssetMatch] = Field(default_factory=list)
    unmatched_ips: list[str] = Field(default_factory=list)
    sources: list[SourceOutcome] = Field(default_factory=list)
    ranking: RankingRecord | None = None

    def citations(self) -> set[str]:
        return (
            {t.citation for t in self.similar_tickets}
            | {a.citation for a in self.kb_articles}
            | {a.citation for a in self.assets}
        )


class CitedStatement(BaseModel):
    text: str = Field(min_length=1, max_length=1000)
    sources: list[str] = Field(default_factory=list, description="citation ids, e.g. ticket:123")


class LLMEnhancement(BaseModel):
    """The structured JSON the LLM must return; validated before anything reaches a note."""

    summary: str = Field(min_length=1, max_length=2000)
    likely_causes: list[CitedStatement] = Field(default_factory=list, max_length=8)
    next_steps: list[CitedStatement] = Field(default_factory=list, max_length=10)
    related_tickets: list[str] = Field(default_factory=list)
    related_articles: list[str] = Field(default_factory=list)
    related_assets: list[str] = Field(default_factory=list)
    confidence: float = Field(ge=0.0, le=1.0)
    confidence_reason: str = ""


SynthesisMode = Literal["llm", "context_only"]
# An enhancement job's state, and what a finished one produced (a note written by the LLM or
# from context alone, or no note at all); the HTTP API shows and filters by both.
JobStatus = Literal["queued", "running", "completed", "failed"]
JobOutcome = Literal[SynthesisMode, "skipped"]


class AttemptUsage(BaseModel):
    """What one LLM attempt the provider answered cost (its ``usage``), whether or not the answer
    was usable: the provider bills every answered attempt, so the usage ledger counts each."""

    model: str
    outcome: str = Field(description="ok, invalid_output or error_body")
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    cost_usd: float = Field(0.0, ge=0)


# Why the AI summary is paused rather than unavailable: the tenant's (or the deployment's)
# monthly LLM budget is spent, or the provider key's credit is.
PausedFor = Literal["budget", "credits"]


class SynthesisResult(BaseModel):
    mode: SynthesisMode
    enhancement: LLMEnhancement | None = None
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    llm_attempts: int = 0
    reason: str | None = Field(default=None, description="why context_only, when it is")
    # what the LLM saw (redacted as sent) and said, for `ai-agents explain`
    prompt_messages: list[dict[str, str]] | None = None
    raw_answer: str | None = None
    models_tried: list[str] = Field(default_factory=list)
    usage: list[AttemptUsage] = Field(
        default_factory=list, description="every answered attempt, billed or not usable"
    )
    redactions: dict[str, int] = Field(
        default_factory=dict, description="placeholders put into the prompt, by kind"
    )
    paused: PausedFor | None = None
