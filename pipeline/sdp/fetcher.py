"""Reads a ticket from the tenant's ServiceDesk Plus, and builds the SDP client the pipeline
uses for it.

Both the Enhancer (write-back: list and add notes) and the ContextGatherer (a webhook that
carried no description: fetch the ticket) call SDP for a tenant. They must share one way of
doing it: the tenant's per-tenant SDP rate limit (a global token bucket, so cloud SDP's
per-minute budget holds across replicas), the same retry/deadline policy and the same
``ai_agents_external_*`` metrics. This class is that one way; neither caller builds the other
to borrow it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from core import metric_catalogue as mc
from db.repositories.tenants import UnknownTenant
from pipeline.models import Ticket
from pipeline.observability.metrics import InMemoryMetrics, Metrics
from pipeline.sdp.client import SdpClient
from pipeline.sdp.wire import map_sdp_request
from pipeline.tenancy.config import TenantRuntime
from pipeline.tenancy.rate_limiter import RateLimits

TenantLoader = Callable[[str], Awaitable[TenantRuntime | None]]


@dataclass(frozen=True)
class SdpCallPolicy:
    """Per call: ``timeout_s`` per attempt, ``max_attempts`` tries, ``deadline_s`` in all."""

    timeout_s: float = 15.0
    max_attempts: int = 4
    deadline_s: float = 120.0


def ticket_from_sdp(request: dict[str, Any]) -> Ticket:
    """SDP's v3 request object → our Ticket, through the one mapper webhooks and imports use."""
    return map_sdp_request(request).ticket


class TicketFetcher:
    def __init__(
        self,
        *,
        load_tenant: TenantLoader,
        limiter: RateLimits,
        http: httpx.AsyncClient,
        metrics: Metrics | None = None,
        policy: SdpCallPolicy | None = None,
    ) -> None:
        self._load_tenant = load_tenant
        self._limiter = limiter
        self._http = http
        self._metrics = metrics or InMemoryMetrics()
        self.policy = policy or SdpCallPolicy()

    def sdp_client(self, tenant: TenantRuntime) -> SdpClient:
        """An SDP client for ``tenant`` that waits for the tenant's SDP budget before each call
        and records every call's outcome and latency."""

        async def before_call() -> None:
            waited = await self._limiter.acquire(
                tenant.tenant_id, "sdp", tenant.settings.sdp_rate(tenant.sdp_edition)
            )
            if waited > 0:
                self._metrics.inc(
                    mc.RATE_LIMIT_WAITS, {"tenant": tenant.tenant_id, "bucket": "sdp"}
                )
                self._metrics.observe(mc.RATE_LIMIT_WAIT_SECONDS, waited, {"bucket": "sdp"})

        def on_call(outcome: str, seconds: float) -> None:
            self._metrics.inc(mc.EXTERNAL_CALLS, {"service": "sdp", "outcome": outcome})
            self._metrics.observe(mc.EXTERNAL_LATENCY, seconds, {"service": "sdp"})

        return SdpClient(
            tenant.sdp_base_url,
            tenant.sdp_api_key,
            tenant.sdp_edition,
            portal=tenant.sdp_portal,
            http=self._http,
            timeout_s=self.policy.timeout_s,
            max_attempts=self.policy.max_attempts,
            deadline_s=self.policy.deadline_s,
            before_call=before_call,
            on_call=on_call,
        )

    async def fetch_ticket(self, tenant_id: str, ticket_id: str) -> Ticket:
        """The ticket as SDP has it now; ``UnknownTenant`` if the tenant is gone."""
        tenant = await self._load_tenant(tenant_id)
        if tenant is None:
            raise UnknownTenant(tenant_id)
        return ticket_from_sdp(await self.sdp_client(tenant).get_request(ticket_id))
