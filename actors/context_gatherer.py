"""ContextGatherer pool: similar tickets, KB articles and IP/asset matches for one ticket."""

from __future__ import annotations

from ray import serve

from actors.pool_options import CONTEXT_GATHERER, pool_options
from actors.rate_limiter import RayRateLimiter
from actors.ray_metrics import RayMetrics
from db.pool import create_pool
from pipeline.context_gatherer import ContextGatherer
from pipeline.core.settings import get_settings
from pipeline.credential_cipher import CredentialCipher
from pipeline.embedding_provider import service_embedder
from pipeline.enhancer import Enhancer, EnhancerConfig
from pipeline.logging_setup import configure_logging
from pipeline.models import Ticket, TicketContext
from pipeline.process_priority import lower_pipeline_priority
from pipeline.sdp_transport import guarded_http_client
from pipeline.tenant_runtime import load_tenant_runtime
from pipeline.tracing import configure_tracing, continued


@serve.deployment(name=CONTEXT_GATHERER, **pool_options(CONTEXT_GATHERER))
class ContextGathererDeployment:
    async def __init__(self) -> None:
        settings = get_settings()
        configure_tracing()
        configure_logging(settings.log_level)
        lower_pipeline_priority(settings.pipeline_nice)  # intake keeps the CPU first
        self._pool = await create_pool(
            settings.database_url.get_secret_value(), min_size=0, max_size=settings.db_pool_max_size
        )
        cipher = CredentialCipher.from_csv(settings.encryption_keys.get_secret_value())
        self._http = guarded_http_client(settings.sdp_url_policy)
        # The SDP fetch shares the Enhancer's client code and per-tenant SDP limiter.
        fetcher = Enhancer(
            self._pool,
            load_tenant=lambda t: load_tenant_runtime(self._pool, cipher, t),
            gather=None,
            synthesize=None,
            limiter=RayRateLimiter(),
            http=self._http,  # type: ignore[arg-type]
            metrics=RayMetrics(),
            config=EnhancerConfig(sdp_timeout_s=settings.sdp_timeout_s),
        )
        limiter = RayRateLimiter()

        async def before_embed(tenant_id: str) -> None:  # remote embeddings share the LLM limit
            tenant = await load_tenant_runtime(self._pool, cipher, tenant_id)
            await limiter.acquire(tenant_id, "llm", tenant.settings.llm_rate_per_minute)

        self._logic = ContextGatherer(
            self._pool,
            fetch_ticket=fetcher.fetch_ticket,
            source_timeout_s=settings.context_source_timeout_s,
            embedder=service_embedder(),
            metrics=RayMetrics(),
            before_embed=before_embed,
        )

    async def gather(
        self,
        tenant_id: str,
        ticket: Ticket,
        needs_fetch: bool,
        carrier: dict[str, str] | None = None,
    ) -> TicketContext:
        with continued(carrier):  # the caller's enhancement trace
            return await self._logic.gather(tenant_id, ticket, needs_fetch=needs_fetch)
