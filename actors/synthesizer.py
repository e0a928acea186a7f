"""Synthesizer pool: one LLM call per request, behind per-tenant LLM limits and a breaker."""

from __future__ import annotations

from ray import serve

from actors.deployment_options import SYNTHESIZER, pool_options
from actors.rate_limiter import RayRateLimits
from actors.replica_setup import replica_resources
from core import metric_catalogue as mc
from pipeline.llm.circuit_breaker import STATE_VALUES, BreakerState
from pipeline.llm.synthesizer import synthesizer_from_settings
from pipeline.models import SynthesisResult, TicketContext
from pipeline.observability.tracing import continued
from pipeline.tenancy.config import TenantSettings
from pipeline.text.redaction import redact_pii


@serve.deployment(name=SYNTHESIZER, **pool_options(SYNTHESIZER))
class SynthesizerDeployment:
    async def __init__(self) -> None:  # type: ignore[misc]  # Ray Serve awaits an async constructor
        replica = await replica_resources()
        self._metrics = replica.metrics
        self._limiter = RayRateLimits()
        self._logic = synthesizer_from_settings(
            replica.settings, on_breaker_change=self._breaker_changed, on_call=self._llm_call
        )
        self._report_breaker()

    def _breaker_changed(self, _old: BreakerState, _new: BreakerState) -> None:
        self._report_breaker()

    def _report_breaker(self) -> None:
        """Re-set on every call too: a gauge written once at start can age out of the export."""
        self._metrics.set(
            mc.BREAKER_STATE, STATE_VALUES[self._logic.breaker.state], {"service": "llm"}
        )

    def _llm_call(self, outcome: str, seconds: float) -> None:
        self._metrics.inc(mc.EXTERNAL_CALLS, {"service": "llm", "outcome": outcome})
        self._metrics.observe(mc.EXTERNAL_LATENCY, seconds, {"service": "llm"})

    async def synthesize(
        self,
        tenant_id: str,
        context: TicketContext,
        settings: TenantSettings,
        carrier: dict[str, str] | None = None,
    ) -> SynthesisResult:
        async def before_llm_call() -> None:
            waited = await self._limiter.acquire(tenant_id, "llm", settings.llm_rate_per_minute)
            if waited > 0:
                self._metrics.inc(mc.RATE_LIMIT_WAITS, {"tenant": tenant_id, "bucket": "llm"})
                self._metrics.observe(mc.RATE_LIMIT_WAIT_SECONDS, waited, {"bucket": "llm"})

        with continued(carrier):  # the caller's enhancement trace
            result = await self._logic.synthesize(
                context,
                redact=settings.redact_pii,
                redactor=redact_pii,
                before_llm_call=before_llm_call,
            )
        self._report_breaker()
        return result
