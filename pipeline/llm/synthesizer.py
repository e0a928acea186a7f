"""Turns gathered ticket context into an LLM enhancement, or says why it could not.

LLM trouble never fails an enhancement: without a key, with the breaker open, after retries
run out or when the endpoint refuses (e.g. 402, no credits) the result is
``mode="context_only"`` with a reason, and the note is built from the context alone; when the
provider key's credit is gone the result says the AI summary is *paused* (``paused="credits"``).

What leaves for the LLM is redacted first unless the tenant opted out (``redact_pii``, on by
default): a :class:`pipeline.text.redaction.Redactor` per prompt replaces secrets, contact
details, card numbers and the ticket's requester, and the result carries its counts by kind.
Every answered attempt's usage travels on the result too, for the usage ledger.

Whatever the model says, only citations of sources we actually gave it survive: an id the
context did not contain is removed (and a statement supported only by invented ids is removed
with it), so no hallucinated ticket, article or asset reaches a technician.

Ray-free so it is tested directly; the Synthesizer Serve deployment wraps one instance per
replica (one circuit breaker per replica per base URL; with the shared provider budget only
outages count toward it).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from core.settings import Settings
from pipeline.llm.circuit_breaker import BreakerState, CircuitBreaker
from pipeline.llm.client import (
    BeforeCall,
    LLMClient,
    LLMClientConfig,
    LLMPaused,
    LLMRejected,
    LLMUnavailable,
    OnCall,
    ResponseFormat,
)
from pipeline.llm.contract import DEFAULT_BUDGET, PromptBudget, build_messages
from pipeline.llm.provider.gate import TenantGate
from pipeline.models import CitedStatement, LLMEnhancement, SynthesisResult, TicketContext
from pipeline.note.citations import KINDS, normalise_citation
from pipeline.text.redaction import Redactor

log = logging.getLogger(__name__)

_INLINE_TAG = re.compile(rf"\[({'|'.join(KINDS)}):([^\]\s]+)\]")  # [ticket:1042]


def filter_citations(
    enhancement: LLMEnhancement, allowed: set[str]
) -> tuple[LLMEnhancement, list[str]]:
    """Keep only citations of sources the context contained; return what was dropped."""
    dropped: list[str] = []

    def keep(ids: Sequence[str], default_kind: str | None = None) -> list[str]:
        kept: list[str] = []
        for raw in ids:
            cid = normalise_citation(raw, default_kind)
            if cid in allowed:
                if cid not in kept:
                    kept.append(cid)
            else:
                dropped.append(cid)
        return kept

    def scrub_text(text: str) -> str:
        def repl(m: re.Match[str]) -> str:
            cid = f"{m.group(1)}:{m.group(2)}"
            if cid in allowed:
                return m.group(0)
            dropped.append(cid)
            return ""

        return re.sub(r"\s{2,}", " ", _INLINE_TAG.sub(repl, text)).strip()

    def statements(items: list[CitedStatement]) -> list[CitedStatement]:
        out: list[CitedStatement] = []
        for s in items:
            sources = keep(s.sources)
            if s.sources and not sources:
                continue  # supported only by ids we never gave: an unsupported claim
            text = scrub_text(s.text)
            if text:
                out.append(CitedStatement(text=text, sources=sources))
        return out

    cleaned = enhancement.model_copy(
        update={
            "summary": scrub_text(enhancement.summary) or enhancement.summary,
            "likely_causes": statements(enhancement.likely_causes),
            "next_steps": statements(enhancement.next_steps),
            "related_tickets": keep(enhancement.related_tickets, "ticket"),
            "related_articles": keep(enhancement.related_articles, "kb"),
            "related_assets": keep(enhancement.related_assets, "asset"),
        }
    )
    return cleaned, sorted(set(dropped))


class Synthesizer:
    """Prompt → LLM (retries, model fallback, breaker) → validated, citation-checked result."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        models: Sequence[str],
        timeout_s: float = 30.0,
        deadline_s: float = 90.0,
        max_attempts: int = 3,
        attempts_per_model: int = 2,
        backoff_base_s: float = 0.5,
        max_retry_after_s: float = 30.0,
        response_format: ResponseFormat = "json_object",
        referer: str | None = None,
        title: str | None = "AI Agents",
        provider: dict[str, Any] | None = None,
        breaker_failure_threshold: int = 5,
        breaker_recovery_timeout_s: float = 30.0,
        breaker_half_open_max_calls: int = 1,
        clock: Callable[[], float] = time.monotonic,
        on_breaker_change: Callable[[BreakerState, BreakerState], None] | None = None,
        on_call: OnCall | None = None,
        prompt_budget: PromptBudget = DEFAULT_BUDGET,
    ) -> None:
        self.models = list(models)
        self.prompt_budget = prompt_budget
        self.breaker = CircuitBreaker(
            failure_threshold=breaker_failure_threshold,
            recovery_timeout_s=breaker_recovery_timeout_s,
            half_open_max_calls=breaker_half_open_max_calls,
            clock=clock,
            on_state_change=on_breaker_change,
            name=f"llm:{base_url}",
        )
        self._client: LLMClient | None = None
        if api_key and self.models:
            config = LLMClientConfig(
                base_url=base_url,
                api_key=api_key,
                models=tuple(self.models),
                timeout_s=timeout_s,
                deadline_s=deadline_s,
                max_attempts=max_attempts,
                attempts_per_model=attempts_per_model,
                backoff_base_s=backoff_base_s,
                max_retry_after_s=max_retry_after_s,
                response_format=response_format,
                referer=referer,
                title=title,
                provider=provider,
            )
            self._client = LLMClient(config, breaker=self.breaker, on_call=on_call, clock=clock)

    @property
    def enabled(self) -> bool:
        return self._client is not None

    async def synthesize(
        self,
        context: TicketContext,
        *,
        redact: bool = True,
        redactor: Callable[[str], str] | None = None,
        before_llm_call: BeforeCall | None = None,
        gate: TenantGate | None = None,
    ) -> SynthesisResult:
        """Never raises for LLM trouble; ``context_only`` results carry the reason.

        ``redact``: run every piece of tenant text through ``redactor``, by default a
        :class:`Redactor` that knows the ticket's requester. ``gate``: the tenant's view of
        the shared provider budget (None: the call meets the provider on its own)."""
        if self._client is None:
            reason = "no LLM API key configured" if self.models else "no LLM model configured"
            return SynthesisResult(mode="context_only", reason=reason)
        if redact and redactor is None:
            ticket = context.ticket
            redactor = Redactor(ticket.requester_name, ticket.requester_email)
        messages = build_messages(
            context, redact=redactor if redact else None, budget=self.prompt_budget
        )
        sent = [dict(m) for m in messages]
        counts = dict(getattr(redactor, "counts", {})) if redact else {}
        try:
            call = await self._client.complete(messages, before_call=before_llm_call, gate=gate)
        except LLMPaused as exc:
            return SynthesisResult(
                mode="context_only",
                reason=f"AI summary paused: the LLM provider's credit is used up ({exc.reason})",
                paused="credits",
                usage=exc.usage,
                redactions=counts,
            )
        except LLMRejected as exc:
            log.warning("LLM rejected the request (HTTP %s): %s", exc.status, exc.reason)
            return SynthesisResult(
                mode="context_only",
                reason=f"LLM rejected: {exc.reason}",
                llm_attempts=exc.attempts,
                prompt_messages=sent,
                usage=exc.usage,
                redactions=counts,
                paused="credits" if exc.status == 402 else None,
            )
        except LLMUnavailable as exc:
            log.warning("LLM unavailable: %s", exc.reason)
            return SynthesisResult(
                mode="context_only",
                reason=f"LLM unavailable: {exc.reason}",
                llm_attempts=exc.attempts,
                prompt_messages=sent,
                usage=exc.usage,
                redactions=counts,
            )
        enhancement, dropped = filter_citations(call.enhancement, context.citations())
        dropped_note = None
        if dropped:
            dropped_note = f"dropped {len(dropped)} unknown citation(s): {', '.join(dropped[:10])}"
            log.warning("ticket %s: %s", context.ticket.ticket_id, dropped_note)
        return SynthesisResult(
            mode="llm",
            enhancement=enhancement,
            model=call.model,
            prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens,
            cost_usd=call.cost_usd,
            llm_attempts=call.attempts,
            reason=dropped_note,
            prompt_messages=sent,
            raw_answer=call.raw_content,
            models_tried=list(call.models_tried),
            usage=list(call.usage),
            redactions=counts,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def synthesizer_from_settings(
    settings: Settings,
    *,
    on_breaker_change: Callable[[BreakerState, BreakerState], None] | None = None,
    on_call: OnCall | None = None,
) -> Synthesizer:
    """The service's Synthesizer from its ``AI_AGENTS_LLM_*`` settings: the one construction
    the Synthesizer deployment and the pipeline-floor benchmark share, so the benchmark measures
    the model chain, timeouts, attempts and breaker the service really runs."""
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return Synthesizer(
        base_url=settings.llm_base_url,
        api_key=key,
        models=[settings.llm_model, *settings.llm_fallback_models],
        timeout_s=settings.llm_timeout_s,
        max_attempts=settings.llm_max_attempts,
        breaker_failure_threshold=settings.llm_breaker_threshold,
        breaker_recovery_timeout_s=settings.llm_breaker_recovery_s,
        on_breaker_change=on_breaker_change,
        on_call=on_call,
    )
