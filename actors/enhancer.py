"""Enhancer pool: runs one job through context → synthesis → write-back."""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from actors.deployment_options import ENHANCER, pool_options
from actors.rate_limiter import RayRateLimits
from actors.replica_setup import DatabasePool, replica_resources
from pipeline.dispatch.dispatcher import ClaimedJob
from pipeline.enhancer import Enhancer, EnhancerConfig
from pipeline.llm.spend import LLMSpend
from pipeline.models import SynthesisResult, Ticket, TicketContext
from pipeline.note.feedback_links import FeedbackLinkSigner
from pipeline.observability.connection_gauge import start_connection_gauge
from pipeline.observability.tracing import current_carrier
from pipeline.tenancy.config import TenantSettings
from pipeline.tenancy.runtime import TENANT_CACHE_TTL_S, TenantRuntime, load_tenant_runtime
from pipeline.tenancy.ttl_cache import TtlCache


@serve.deployment(name=ENHANCER, **pool_options(ENHANCER))
class EnhancerDeployment:
    async def __init__(  # type: ignore[misc]  # Ray Serve awaits an async constructor
        self, gatherer: DeploymentHandle, synthesizer: DeploymentHandle
    ) -> None:
        replica = await replica_resources(database=DatabasePool(), cipher=True, sdp_connections=200)
        settings, cipher, pool, http = replica.settings, replica.cipher, replica.pool, replica.http
        assert pool is not None and cipher is not None and http is not None  # all asked for
        self._gatherer = gatherer
        self._synthesizer = synthesizer
        self._pool = pool
        self._http = http
        # jobs of one tenant arrive in runs; a few seconds of staleness is what the ingress
        # already accepts for rotation and disabling
        tenants: TtlCache[str, TenantRuntime | None] = TtlCache(
            lambda t: load_tenant_runtime(self._pool, cipher, t), ttl_s=TENANT_CACHE_TTL_S
        )
        self._logic = Enhancer(
            self._pool,
            load_tenant=tenants.get,
            gather=self._gather,
            synthesize=self._synthesize,
            limiter=RayRateLimits(),
            http=self._http,
            metrics=replica.metrics,
            config=EnhancerConfig(
                lease_s=settings.job_lease_s,
                retry_base_s=settings.job_retry_base_s,
                sdp_timeout_s=settings.sdp_timeout_s,
                public_url=settings.public_url,
                explain_retention_days=settings.explain_retention_days,
                stage_places=settings.enhancer_stage_places,
            ),
            feedback_links=FeedbackLinkSigner.from_encryption_keys(
                replica.encryption_keys,
                ttl_days=settings.feedback_link_ttl_days,
            ),
            spend=LLMSpend(self._pool, deployment_budget_usd=settings.llm_monthly_budget_usd),
        )
        self._connection_gauge = start_connection_gauge(replica.metrics, "enhancer", self._get_pool)

    async def _get_pool(self) -> Any:
        return self._pool

    async def _gather(self, tenant_id: str, ticket: Ticket, needs_fetch: bool) -> TicketContext:
        return await self._gatherer.gather.remote(
            tenant_id, ticket, needs_fetch, carrier=current_carrier()
        )

    async def _synthesize(
        self, tenant_id: str, context: TicketContext, settings: TenantSettings
    ) -> SynthesisResult:
        return await self._synthesizer.synthesize.remote(
            tenant_id, context, settings, carrier=current_carrier()
        )

    async def run(self, job: ClaimedJob) -> str:
        return await self._logic.run(job)
