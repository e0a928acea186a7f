"""Synthesizer pool: one LLM call per request, behind per-tenant LLM limits and a breaker."""

from __future__ import annotations

from ray import serve

from actors.pool_options import SYNTHESIZER, pool_options
from actors.rate_limiter import RayRateLimiter
from actors.ray_metrics import RayMetrics
from pipeline import metric_catalogue as mc
from pipeline.circuit_breaker import BreakerState
from pipeline.core.settings import get_settings
from pipeline.logging_setup import configure_logging
from pipeline.models import SynthesisResult, TicketContext
from pipeline.process_priority import lower_pipeline_priority
from pipeline.redaction import redact_pii
from pipeline.synthesizer import Synthesizer
from pipeline.tenant_config import TenantSettings
from pipeline.tracing import configure_tracing, continued

_BREAKER_VALUE = {"closed": 0, "half_open": 1, "open": 2}


@serve.deployment(name=SYNTHESIZER, **pool_options(SYNTHESIZER))
class SynthesizerDeployment:
    def __init__(self) -> None:
        settings = get_settings()
        configure_tracing()
        configure_logging(settings.log_level)
        lower_pipeline_priority(settings.pipeline_nice)  # intake keeps the CPU first
        self._metrics = RayMetrics()
        self._limiter = RayRateLimiter()
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        self._logic = Synthesizer(
            base_url=settings.llm_base_url,
            api_key=key,
            models=[settings.llm_model, *settings.llm_fallback_models],
            timeout_s=settings.llm_timeout_s,
            max_attempts=settings.llm_max_attempts,
            breaker_failure_threshold=settings.llm_breaker_threshold,
            breaker_recovery_timeout_s=settings.llm_breaker_recovery_s,
            on_breaker_change=self._breaker_changed,
            on_call=self._llm_call,
        )
        self._report_breaker()

    def _breaker_changed(self, _old: BreakerState, _new: BreakerState) -> None:
        self._report_breaker()

    def _report_breaker(self) -> None:
        """Re-set on every call too: a gauge written once at start can age out of the export."""
        self._metrics.set(
            mc.BREAKER_STATE, _BREAKER_VALUE[self._logic.breaker.state], {"service": "llm"}
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

    def breaker_state(self) -> str:
        return self._logic.breaker.state
