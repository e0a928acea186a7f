"""The pipeline's floor: the product's per-enhancement work in one plain asyncio process.

    python -m benchmarks.pipeline.floor --port P      # AI_AGENTS_* environment as for a replica

Why: absolute enhancements/s move from machine to machine, so ``python -m benchmarks.pipeline
--configs floor,...`` reports the product as a ratio to this floor measured in the same run, on
the same machine, at the same moment — as intake is reported against bare uvicorn.

What runs, all on one uvloop event loop, with no Ray and no hops between processes:
  - the webhook intake: the product's ``create_api`` app under uvicorn (the same signature
    check, tenant cache, INSERT + NOTIFY, commit, 202), so the benchmark drives it exactly as it
    drives the Serve ingress and both sides do the same total work;
  - the product's ``Dispatcher`` (LISTEN/NOTIFY, ``app_claim_jobs`` with leases, the reaper),
    whose hand-off is a direct ``await`` of ``Enhancer.run`` instead of a Serve call;
  - ``Enhancer`` with ``ContextGatherer`` (similar tickets, KB, IP→asset queries)
    and ``Synthesizer`` (the LLM call through httpx) in-process, the in-process
    ``LocalRateLimits`` instead of the rate-limiter actors, in-memory metrics; then the SDP
    note and the fenced completion, as in production.
What the floor leaves out on purpose is exactly the cost of distribution: Serve's routers and
RPC between Ingress → Dispatcher → Enhancer → ContextGatherer/Synthesizer, rate-limiter actor
calls, Ray metrics export, and the Ray/Serve control plane.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from typing import Any

import httpx
import uvicorn

from core.settings import Settings, get_settings
from db.pool import create_pool
from pipeline.dispatch.dispatcher import Dispatcher, DispatcherConfig
from pipeline.enhancer import Enhancer, EnhancerConfig
from pipeline.llm.synthesizer import synthesizer_from_settings
from pipeline.models import SynthesisResult, Ticket, TicketContext
from pipeline.observability.metrics import InMemoryMetrics
from pipeline.retrieval.context_gatherer import ContextGatherer
from pipeline.tenancy.config import TenantSettings
from pipeline.tenancy.credential_cipher import CredentialCipher
from pipeline.tenancy.rate_limiter import LocalRateLimits
from pipeline.tenancy.runtime import TENANT_CACHE_TTL_S, TenantRuntime, load_tenant_runtime
from pipeline.tenancy.ttl_cache import TtlCache
from pipeline.text.redaction import redact_pii
from serve_app.ingress import Ingress

log = logging.getLogger(__name__)


class FloorPipeline:
    """The Enhancer, ContextGatherer, Synthesizer and Dispatcher of the product, wired by plain
    function calls instead of Serve handles (each built the way its actor builds it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = InMemoryMetrics()
        self.limiter = LocalRateLimits()
        self.synthesizer = synthesizer_from_settings(settings)  # as the deployment builds it
        self.http = httpx.AsyncClient(limits=httpx.Limits(max_connections=200))
        self.dispatcher: Dispatcher | None = None
        self._pool: Any = None

    async def start(self) -> None:
        settings = self.settings
        assert settings.database_url is not None and settings.encryption_keys is not None
        url = settings.database_url.get_secret_value()
        cipher = CredentialCipher.from_csv(settings.encryption_keys.get_secret_value())
        # One pool for the three roles (the product has one per replica, each this size).
        self._pool = await create_pool(url, min_size=1, max_size=settings.db_pool_max_size * 2)
        tenants: TtlCache[str, TenantRuntime | None] = TtlCache(
            lambda t: load_tenant_runtime(self._pool, cipher, t), ttl_s=TENANT_CACHE_TTL_S
        )
        self.workflow = Enhancer(
            self._pool,
            load_tenant=tenants.get,
            gather=self._gather,
            synthesize=self._synthesize,
            limiter=self.limiter,
            http=self.http,
            metrics=self.metrics,
            config=EnhancerConfig(
                lease_s=settings.job_lease_s,
                retry_base_s=settings.job_retry_base_s,
                sdp_timeout_s=settings.sdp_timeout_s,
            ),
        )
        self.gathering = ContextGatherer(
            self._pool,
            fetch_ticket=self.workflow.tickets.fetch_ticket,
            source_timeout_s=settings.context_source_timeout_s,
        )
        self.dispatcher = Dispatcher(
            self._pool,
            self.workflow.run,
            listen_url=url,
            config=DispatcherConfig(
                per_tenant_cap=settings.per_tenant_inflight,
                max_inflight=settings.dispatch_max_inflight,
                batch=settings.dispatch_batch,
                lease_s=settings.job_lease_s,
                poll_s=settings.dispatcher_poll_s,
                retry_base_s=settings.job_retry_base_s,
            ),
        )
        await self.dispatcher.start()

    async def _gather(self, tenant_id: str, ticket: Ticket, needs_fetch: bool) -> TicketContext:
        return await self.gathering.gather(tenant_id, ticket, needs_fetch=needs_fetch)

    async def _synthesize(
        self, tenant_id: str, context: TicketContext, settings: TenantSettings
    ) -> SynthesisResult:
        async def before_llm_call() -> None:
            await self.limiter.acquire(tenant_id, "llm", settings.llm_rate_per_minute)

        return await self.synthesizer.synthesize(
            context,
            redact=settings.redact_pii,
            redactor=redact_pii,
            before_llm_call=before_llm_call,
        )

    async def stop(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        await self.synthesizer.close()
        await self.http.aclose()
        if self._pool is not None:
            await self._pool.close()


async def serve(port: int, host: str = "127.0.0.1") -> None:
    settings = get_settings()
    logging.basicConfig(level=logging.WARNING)
    pipeline = FloorPipeline(settings)
    await pipeline.start()
    config = uvicorn.Config(
        Ingress(settings).app,
        host=host,
        port=port,
        loop="none",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    try:
        await server.serve()  # returns on SIGTERM / SIGINT (uvicorn's own handlers)
    finally:
        with contextlib.suppress(Exception):
            await pipeline.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    import uvloop

    uvloop.run(serve(args.port, args.host))


if __name__ == "__main__":
    main()
