"""One enhancement job, from `running` to a note on the ticket and a finished row.

Ray-free: the context gatherer, synthesizer and rate limiter arrive as plain async callables
(Serve handles / actors in production, in-process objects in unit tests). Tenant-fair: the
context and write-back stages each hold a place at the replica's ``FairGate``, so a quiet
tenant's job does not queue behind a flooding tenant's there; the LLM wait holds none.

Exactly-once effect: before a re-run posts, the ticket's notes are searched for this
enhancement's marker, so a job re-run after a crash finds the note it already wrote instead of
adding a second one; every row update is fenced by the lease token.

LLM spend (``pipeline.llm.spend``): a monthly budget spent makes the note context-only, saying
the AI summary is paused; every answered attempt goes into the usage ledger right after it.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import httpx
from opentelemetry.util.types import AttributeValue

from core import metric_catalogue as mc
from core.fair_gate import FairGate
from db.pool import tenant_transaction
from db.repositories import enhancements as jobs
from pipeline.dispatch.dispatcher import ClaimedJob, retry_delay_s
from pipeline.llm.spend import LLMSpend
from pipeline.models import SynthesisResult, Ticket, TicketContext
from pipeline.note.confidence import note_confidence
from pipeline.note.feedback_links import ANSWER_LABELS, FeedbackLinkSigner
from pipeline.note.insight import explain_record, proposals
from pipeline.note.renderer import is_thin, note_has_marker, render_note
from pipeline.note.thin_ticket import thin_ticket_note
from pipeline.observability.metrics import InMemoryMetrics, Metrics
from pipeline.observability.tracing import context_from_carrier, tracer
from pipeline.retrieval.ranking.store import record_outcome_inputs
from pipeline.sdp.fetcher import SdpCallPolicy, TenantLoader, TicketFetcher
from pipeline.sdp.wire import (
    SdpAuthError,
    SdpError,
    SdpNotFound,
    SdpRateLimited,
    SdpRejected,
    SdpUnavailable,
)
from pipeline.tenancy.config import TenantRuntime, TenantSettings
from pipeline.tenancy.rate_limiter import RateLimits

log = logging.getLogger(__name__)


class ContextPort(Protocol):
    async def __call__(
        self, tenant_id: str, ticket: Ticket, needs_fetch: bool
    ) -> TicketContext: ...


class SynthesisPort(Protocol):
    async def __call__(
        self, tenant_id: str, context: TicketContext, settings: TenantSettings
    ) -> SynthesisResult: ...


@dataclass
class EnhancerConfig:
    lease_s: int = 300
    retry_base_s: float = 5.0
    sdp_timeout_s: float = 15.0
    sdp_max_attempts: int = 4
    sdp_deadline_s: float = 120.0
    public_url: str | None = None  # base of the feedback links; None: notes carry none
    explain_retention_days: float = 30.0
    stage_places: int = 32  # jobs in context or write-back at once, tenant-fair beyond (0: all)


class Enhancer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        load_tenant: TenantLoader,
        gather: ContextPort,
        synthesize: SynthesisPort,
        limiter: RateLimits,
        http: httpx.AsyncClient,
        metrics: Metrics | None = None,
        config: EnhancerConfig | None = None,
        feedback_links: FeedbackLinkSigner | None = None,
        spend: LLMSpend | None = None,
    ) -> None:
        self._pool = pool
        self._spend = spend or LLMSpend(pool)
        self._load_tenant = load_tenant
        self._gather = gather
        self._synthesize = synthesize
        self._metrics = metrics or InMemoryMetrics()
        self.config = config or EnhancerConfig()
        self._links = feedback_links
        # 0 turns the gate off: a capacity no in-flight limit reaches
        self._gate = FairGate(self.config.stage_places or 1_000_000)
        self.tickets = TicketFetcher(
            load_tenant=load_tenant,
            limiter=limiter,
            http=http,
            metrics=self._metrics,
            policy=SdpCallPolicy(
                timeout_s=self.config.sdp_timeout_s,
                max_attempts=self.config.sdp_max_attempts,
                deadline_s=self.config.sdp_deadline_s,
            ),
        )

    async def run(self, job: ClaimedJob) -> str:
        """Returns the job's status afterwards ('completed', 'queued', 'failed', 'lease_lost')."""
        attributes: dict[str, AttributeValue] = {
            "tenant.id": job.tenant_id,
            "ticket.id": job.ticket_id,
            "enhancement.id": job.id,
            "enhancement.attempt": job.attempts,
        }
        with tracer().start_as_current_span(
            "enhancement.run",
            context=context_from_carrier(job.trace_context),
            attributes=attributes,
        ):
            return await self._run(job)

    async def _run(self, job: ClaimedJob) -> str:
        """Context and write-back each hold a place at the tenant-fair gate (they queue on CPU
        and the database); the LLM wait between them holds none."""
        async with self._gate.place(job.tenant_id):
            enhancement_id, token = uuid.UUID(job.id), uuid.UUID(job.lease_token)
            async with tenant_transaction(self._pool, job.tenant_id) as conn:
                row = await jobs.start_stage(
                    conn, enhancement_id, token, "context", self.config.lease_s
                )
            if row is None:
                return "lease_lost"
            timings: dict[str, float] = dict(row["stage_timings"] or {})
            tenant = await self._load_tenant(job.tenant_id)
            if tenant is None:
                return await self._finish_failed(job, "tenant no longer exists", timings)
            payload = row["payload"]
            try:
                started = time.perf_counter()
                with tracer().start_as_current_span("enhancement.context"):
                    context = await self._gather(
                        job.tenant_id,
                        Ticket(**payload["ticket"]),
                        not payload.get("has_description", True),
                    )
                timings["context"] = self._timing("context", started)
                if is_thin(context.ticket, min_chars=tenant.settings.min_ticket_chars):
                    return await self._ask_for_details(job, row, timings, tenant, context)
                await self._stage(job, "synthesis")
            except Exception as exc:  # noqa: BLE001 - sorted by _after_error
                return await self._after_error(job, exc, timings)
        try:
            started = time.perf_counter()
            with tracer().start_as_current_span("enhancement.synthesis") as span:
                paused = await self._spend.paused(job.tenant_id, tenant.settings)
                synthesis = (
                    SynthesisResult(mode="context_only", reason=paused, paused="budget")
                    if paused
                    else await self._synthesize(job.tenant_id, context, tenant.settings)
                )
                await self._spend.record(job.tenant_id, job.id, synthesis.usage)
                span.set_attribute("llm.mode", synthesis.mode)
                if synthesis.model:
                    span.set_attribute("llm.model", synthesis.model)
                span.set_attribute("llm.prompt_tokens", synthesis.prompt_tokens)
                span.set_attribute("llm.completion_tokens", synthesis.completion_tokens)
            timings["synthesis"] = self._timing("synthesis", started)
        except Exception as exc:  # noqa: BLE001 - sorted by _after_error
            return await self._after_error(job, exc, timings)
        async with self._gate.place(job.tenant_id):
            try:
                await self._stage(job, "writeback")
                started = time.perf_counter()
                with tracer().start_as_current_span("enhancement.writeback"):
                    note_id = await self._write_note(job, row, tenant, context, synthesis)
                timings["writeback"] = self._timing("writeback", started)
                outcome = "llm" if synthesis.mode == "llm" else "context_only"
                return await self._complete(
                    job,
                    row,
                    timings,
                    context,
                    outcome=outcome,
                    synthesis=synthesis,
                    note_id=note_id,
                    reason=synthesis.reason if outcome != "llm" else None,
                )
            except Exception as exc:  # noqa: BLE001 - sorted by _after_error
                return await self._after_error(job, exc, timings)

    async def _ask_for_details(
        self,
        job: ClaimedJob,
        row: asyncpg.Record,
        timings: dict[str, float],
        tenant: TenantRuntime,
        context: TicketContext,
    ) -> str:
        """A ticket too thin to research: a short note asking for the details (no unrelated
        matches, no LLM call)."""
        await self._stage(job, "writeback")
        thin = context.model_copy(
            update={"similar_tickets": [], "kb_articles": [], "ranking": None}
        )
        note_id = await self._write_note(job, row, tenant, thin, None)
        return await self._complete(
            job,
            row,
            timings,
            thin,
            outcome="skipped",
            synthesis=None,
            note_id=note_id,
            reason="ticket too thin to research: asked for details",
        )

    async def _after_error(self, job: ClaimedJob, exc: Exception, timings: dict[str, Any]) -> str:
        """SDP's refusals end the job; outages and anything else retry (bounded by
        ``max_attempts``, the reason kept); a lost lease leaves the row to its new owner."""
        if isinstance(exc, (SdpRejected, SdpAuthError, SdpNotFound)):
            return await self._finish_failed(job, f"ServiceDesk Plus refused: {exc}", timings)
        if isinstance(exc, (SdpUnavailable, SdpRateLimited)):
            return await self._retry(job, f"ServiceDesk Plus unavailable: {exc}", timings)
        if isinstance(exc, _LeaseLost):
            return "lease_lost"
        if isinstance(exc, SdpError):
            return await self._retry(job, f"ServiceDesk Plus error: {exc}", timings)
        log.error("enhancement %s failed", job.id, exc_info=exc)
        return await self._retry(job, f"{type(exc).__name__}: {str(exc)[:500]}", timings)

    async def _write_note(
        self,
        job: ClaimedJob,
        row: asyncpg.Record,
        tenant: TenantRuntime,
        context: TicketContext,
        synthesis: SynthesisResult | None,
    ) -> str:
        sdp = self.tickets.sdp_client(tenant)
        if job.attempts > 1:
            # Only a re-run can find its own note: every claim counts an attempt, so on the
            # first one no earlier holder existed. Skipping the look saves an SDP call per job
            # (cloud SDP allows ~20 a minute per tenant).
            for existing in await sdp.list_notes(job.ticket_id):
                if note_has_marker(str(existing.get("description") or ""), job.id):
                    log.info("enhancement %s: note already on ticket (re-run)", job.id)
                    return str(existing.get("id"))
        supersedes = str(row["supersedes"]) if row["supersedes"] else None
        note = (
            thin_ticket_note(job.id, context.ticket)
            if synthesis is None
            else render_note(
                enhancement_id=job.id,
                context=context,
                synthesis=synthesis,
                max_words=tenant.settings.note_max_words,
                supersedes=supersedes,
                feedback_links=self._feedback_links(job),
            )
        )
        with tracer().start_as_current_span(
            "sdp.add_note",
            attributes={
                "tenant.id": job.tenant_id,
                "ticket.id": job.ticket_id,
                "enhancement.id": job.id,
            },
        ) as span:
            note_id = await sdp.add_note(
                job.ticket_id, note.html, show_to_requester=tenant.settings.show_to_requester
            )
            span.set_attribute("sdp.note_id", str(note_id))
        # the note id is stored with completion; a crash before that is covered by the
        # marker check above on the re-run
        return note_id

    def _feedback_links(self, job: ClaimedJob) -> list[tuple[str, str]]:
        if self._links is None or not self.config.public_url:
            return []
        return [
            (ANSWER_LABELS[answer], url)
            for answer, url in self._links.links(self.config.public_url, job.tenant_id, job.id)
        ]

    async def _stage(self, job: ClaimedJob, stage: str) -> None:
        async with tenant_transaction(self._pool, job.tenant_id) as conn:
            held = await jobs.mark_stage(
                conn, uuid.UUID(job.id), uuid.UUID(job.lease_token), stage, self.config.lease_s
            )
        if not held:
            raise _LeaseLost()

    def _timing(self, stage: str, started: float) -> float:
        elapsed = round(time.perf_counter() - started, 4)
        self._metrics.observe(mc.STAGE_LATENCY, elapsed, {"stage": stage})
        return elapsed

    async def _complete(
        self,
        job: ClaimedJob,
        row: asyncpg.Record,
        timings: dict[str, float],
        context: TicketContext,
        *,
        outcome: str,
        synthesis: SynthesisResult | None,
        note_id: str | None,
        reason: str | None,
    ) -> str:
        total = (datetime.now(UTC) - row["received_at"]).total_seconds()
        timings["total"] = round(total, 4)
        async with tenant_transaction(self._pool, job.tenant_id) as conn:
            done = await jobs.complete(
                conn,
                uuid.UUID(job.id),
                uuid.UUID(job.lease_token),
                outcome=outcome,
                stage_timings=timings,
                context_sources=[s.model_dump() for s in context.sources],
                model=synthesis.model if synthesis else None,
                prompt_tokens=synthesis.prompt_tokens if synthesis else 0,
                completion_tokens=synthesis.completion_tokens if synthesis else 0,
                cost_usd=synthesis.cost_usd if synthesis else 0.0,
                note_id=note_id,
                error=reason,
            )
            if done:
                await self._store_insight(conn, job, context, synthesis, outcome, note_id)
        if not done:
            return "lease_lost"
        status = "completed" if outcome == "llm" else outcome
        self._metrics.inc(mc.ENHANCEMENTS, {"tenant": job.tenant_id, "status": status})
        self._metrics.observe(
            mc.ENHANCEMENT_LATENCY, total, {"tenant": job.tenant_id, "status": status}
        )
        log.info(
            "enhancement %s",
            status,
            extra={
                "tenant_id": job.tenant_id,
                "ticket_id": job.ticket_id,
                "enhancement_id": job.id,
            },
        )
        return "completed"

    async def _store_insight(
        self,
        conn: asyncpg.Connection,
        job: ClaimedJob,
        context: TicketContext,
        synthesis: SynthesisResult | None,
        outcome: str,
        note_id: str | None,
    ) -> None:
        """Proposals, the explain record and the ranking's examples with the stated confidence,
        in a savepoint: they must never cost the job its completion (the note is already on the
        ticket)."""
        try:
            async with conn.transaction():
                await jobs.store_insight(
                    conn,
                    uuid.UUID(job.id),
                    suggestions=proposals(context, synthesis) if note_id else [],
                    explain=explain_record(context, synthesis, outcome=outcome),
                    retention_days=self.config.explain_retention_days,
                )
                if note_id and outcome != "skipped":
                    await record_outcome_inputs(
                        conn,
                        job.tenant_id,
                        uuid.UUID(job.id),
                        context.ranking,
                        note_confidence(
                            context.ranking,
                            synthesis.enhancement.confidence
                            if synthesis is not None
                            and synthesis.mode == "llm"
                            and synthesis.enhancement is not None
                            else None,
                        ),
                    )
        except (asyncpg.PostgresError, ValueError) as exc:
            log.warning(
                "enhancement %s: explain record not stored: %s",
                job.id,
                type(exc).__name__,
                extra={"tenant_id": job.tenant_id},
            )

    async def _retry(self, job: ClaimedJob, error: str, timings: dict[str, Any]) -> str:
        return await self._fail(job, error, timings, retryable=True)

    async def _finish_failed(self, job: ClaimedJob, error: str, timings: dict[str, Any]) -> str:
        return await self._fail(job, error, timings, retryable=False)

    async def _fail(
        self, job: ClaimedJob, error: str, timings: dict[str, Any], *, retryable: bool
    ) -> str:
        """Back to the queue (retryable, attempts left) or `failed` with the reason."""
        delay = retry_delay_s(job.attempts, self.config.retry_base_s) if retryable else 0
        async with tenant_transaction(self._pool, job.tenant_id) as conn:
            status = await jobs.fail_or_retry(
                conn,
                uuid.UUID(job.id),
                uuid.UUID(job.lease_token),
                error=error,
                retryable=retryable,
                retry_in_s=delay,
                stage_timings=timings,
            )
        self._after_failure(job, status, error)
        return status or "lease_lost"

    def _after_failure(self, job: ClaimedJob, status: str, error: str) -> None:
        if status == "failed":
            self._metrics.inc(mc.ENHANCEMENTS, {"tenant": job.tenant_id, "status": "failed"})
            log.warning(
                "enhancement failed: %s",
                error,
                extra={
                    "tenant_id": job.tenant_id,
                    "ticket_id": job.ticket_id,
                    "enhancement_id": job.id,
                },
            )
        elif status == "queued":
            self._metrics.inc(mc.JOB_ATTEMPTS, {"tenant": job.tenant_id, "reason": "error"})
            log.info(
                "enhancement will be retried: %s",
                error,
                extra={"tenant_id": job.tenant_id, "enhancement_id": job.id},
            )


class _LeaseLost(Exception):
    pass
