"""Synthesizer pool: one LLM call per request, behind per-tenant LLM limits, the provider budget
every replica shares (``ProviderBudgetActor``) and a breaker."""

from __future__ import annotations

from collections.abc import Callable

from ray import serve

from actors.deployment_options import SYNTHESIZER, pool_options
from actors.rate_limiter import RayProviderBudget, RayRateLimits
from actors.replica_setup import replica_resources
from core import metric_catalogue as mc
from pipeline.llm.circuit_breaker import STATE_VALUES, BreakerState
from pipeline.llm.provider.gate import TenantGate
from pipeline.llm.synthesizer import synthesizer_from_settings
from pipeline.models import SynthesisResult, TicketContext
from pipeline.observability.tracing import continued
from pipeline.tenancy.config import TenantSettings


@serve.deployment(name=SYNTHESIZER, **pool_options(SYNTHESIZER))
class SynthesizerDeployment:
    async def __init__(self) -> None:  # type: ignore[misc]  # Ray Serve awaits an async constructor
        replica = await replica_resources()
        self._metrics = replica.metrics
        self._limiter = RayRateLimits()
        self._provider = RayProviderBudget() if replica.settings.llm_shared_budget else None
        if self._provider is not None:
            self._provider.actor().start.remote()  # its gauges and credit poller
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

    def _waited(self, tenant_id: str, bucket: str) -> Callable[[float], None]:
        def record(seconds: float) -> None:
            if seconds > 0:
                self._metrics.inc(mc.RATE_LIMIT_WAITS, {"tenant": tenant_id, "bucket": bucket})
                self._metrics.observe(mc.RATE_LIMIT_WAIT_SECONDS, seconds, {"bucket": bucket})

        return record

    async def synthesize(
        self,
        tenant_id: str,
        context: TicketContext,
        settings: TenantSettings,
        carrier: dict[str, str] | None = None,
    ) -> SynthesisResult:
        tenant_waited = self._waited(tenant_id, "llm")

        async def before_llm_call() -> None:
            rate = settings.llm_rate_per_minute
            tenant_waited(await self._limiter.acquire(tenant_id, "llm", rate))

        gate = None
        if self._provider is not None:
            gate = TenantGate(
                self._provider,
                tenant_id,
                weight=settings.dispatch_weight,
                on_wait=self._waited(tenant_id, "provider"),
            )
        with continued(carrier):  # the caller's enhancement trace
            result = await self._logic.synthesize(
                context, redact=settings.redact_pii, before_llm_call=before_llm_call, gate=gate
            )
        for kind, count in result.redactions.items():
            self._metrics.inc(mc.REDACTIONS, {"tenant": tenant_id, "kind": kind}, count)
        self._report_breaker()
        return result
