"""ContextGatherer pool: similar tickets, KB articles and IP/asset matches for one ticket."""

from __future__ import annotations

from ray import serve

from actors.deployment_options import CONTEXT_GATHERER, pool_options
from actors.rate_limiter import RayRateLimits
from actors.replica_setup import DatabasePool, replica_resources
from db.repositories.tenants import UnknownTenant
from pipeline.models import Ticket, TicketContext
from pipeline.observability.tracing import continued
from pipeline.retrieval.context_gatherer import ContextGatherer
from pipeline.retrieval.embedder import service_embedder
from pipeline.retrieval.ranking.store import RankingModels
from pipeline.sdp.fetcher import SdpCallPolicy, TicketFetcher
from pipeline.tenancy.config import TenantRuntime
from pipeline.tenancy.runtime import TENANT_CACHE_TTL_S, load_tenant_runtime
from pipeline.tenancy.ttl_cache import TtlCache


@serve.deployment(name=CONTEXT_GATHERER, **pool_options(CONTEXT_GATHERER))
class ContextGathererDeployment:
    async def __init__(self) -> None:  # type: ignore[misc]  # Ray Serve awaits an async constructor
        replica = await replica_resources(database=DatabasePool(), cipher=True, sdp_connections=100)
        settings, cipher, pool, http = replica.settings, replica.cipher, replica.pool, replica.http
        assert pool is not None and cipher is not None and http is not None  # all asked for
        self._pool = pool
        self._http = http
        limiter = RayRateLimits()
        # one query and one decryption per tenant every few seconds, not per fetch or embedding
        # (the staleness the Enhancer and the ingress already accept)
        tenants: TtlCache[str, TenantRuntime | None] = TtlCache(
            lambda t: load_tenant_runtime(self._pool, cipher, t), ttl_s=TENANT_CACHE_TTL_S
        )
        # The SDP fetch shares the Enhancer's client code and per-tenant SDP limiter.
        fetcher = TicketFetcher(
            load_tenant=tenants.get,
            limiter=limiter,
            http=self._http,
            metrics=replica.metrics,
            policy=SdpCallPolicy(timeout_s=settings.sdp_timeout_s),
        )

        async def before_embed(tenant_id: str) -> None:  # remote embeddings share the LLM limit
            tenant = await tenants.get(tenant_id)
            if tenant is None:
                raise UnknownTenant(tenant_id)
            await limiter.acquire(tenant_id, "llm", tenant.settings.llm_rate_per_minute)

        self._logic = ContextGatherer(
            self._pool,
            fetch_ticket=fetcher.fetch_ticket,
            source_timeout_s=settings.context_source_timeout_s,
            embedder=service_embedder(),
            metrics=replica.metrics,
            before_embed=before_embed,
            models=RankingModels(self._pool, ttl_s=settings.ranking_model_ttl_s),
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
