"""The limit actors every replica shares: named, detached Ray actors on the head node.

- ``RateLimiterActor`` (sharded): per-tenant token buckets. Every replica of every pool reaches
  the same buckets (``get_if_exists``), so a tenant's LLM and SDP budgets are global, not per
  replica. The actor only books reservations and leases small batches of tokens to replicas
  (``RayRateLimits``); callers sleep in their own coroutine, so a throttled tenant never blocks
  another.
- ``ProviderBudgetActor`` (one): the LLM provider key's budget shared by every tenant and
  Synthesizer replica (``pipeline.llm.provider.budget``: fair grants, a 429 slowing all, a 402
  pausing all), and the poller of the key's remaining credit; it exports the provider's state
  and the credit as gauges. ``RayProviderBudget`` is the handle the Synthesizer gives the LLM
  client. An async actor: each waiting grant is a coroutine, not a thread.

A restarted actor starts with full buckets and no grants out (a brief burst at most; grants of
the old one are simply forgotten), which is acceptable for these limits.

Task events are off for ``reserve``, ``lease``, ``acquire`` and ``release``
(``enable_task_events=False``), as Serve turns them off for its own actors: LLM and SDP calls
book here, and Ray's GCS
keeps the events of the last 100,000 task attempts (a few KB each) in memory, which a busy
service reaches within hours.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import ray

from actors.replica_setup import RayMetrics, prepare_process
from core import metric_catalogue as mc
from core.settings import get_settings
from pipeline.llm.provider.budget import STATE_VALUES, ProviderBudget, ProviderLimits
from pipeline.llm.provider.credits import CreditPoller, KeyCredit, read_key_credit
from pipeline.llm.provider.gate import Grant, ProviderBusy, ProviderPaused
from pipeline.observability.tracing import context_from_carrier, current_carrier, tracer
from pipeline.tenancy.rate_lease import LEASE_MAX_BATCH, LEASE_TTL_S, LeasedRateLimits
from pipeline.tenancy.rate_limiter import RateLimiter, shard_for

log = logging.getLogger(__name__)

NAMESPACE = "ai_agents"
SHARDS = 4


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class RateLimiterActor:
    def __init__(self) -> None:
        prepare_process(get_settings())  # a pipeline-only process: lower priority too
        self._buckets = RateLimiter()

    @ray.method(enable_task_events=False)
    def reserve(
        self, tenant_id: str, bucket: str, per_minute: int, carrier: dict[str, str] | None = None
    ) -> float:
        with tracer().start_as_current_span(
            "rate_limit.reserve",
            context=context_from_carrier(carrier),
            attributes={"tenant.id": tenant_id, "rate_limit.bucket": bucket},
        ):
            return self._buckets.reserve(tenant_id, bucket, per_minute)

    @ray.method(enable_task_events=False)
    def lease(
        self,
        tenant_id: str,
        bucket: str,
        per_minute: int,
        want: int,
        returned: int = 0,
        carrier: dict[str, str] | None = None,
    ) -> tuple[int, float]:
        """A batch of tokens for one replica's allowance (``pipeline.tenancy.rate_lease``)."""
        with tracer().start_as_current_span(
            "rate_limit.lease",
            context=context_from_carrier(carrier),
            attributes={
                "tenant.id": tenant_id,
                "rate_limit.bucket": bucket,
                "rate_limit.want": want,
            },
        ):
            return self._buckets.lease(tenant_id, bucket, per_minute, want, returned)


# Every node has its own "node:<ip>" resource; only the head has this one.
HEAD_NODE_RESOURCE = "node:__internal_head__"


def limiter_actor(shard: int) -> ray.actor.ActorHandle:
    """On the head node, like Serve's controller: a detached actor outlives the replica that
    created it, and on a worker node it would keep that node busy, so Ray's autoscaler would
    never remove the node after a scale-in."""
    return RateLimiterActor.options(  # type: ignore[attr-defined]
        name=f"tenant_rate_limiter_{shard}",
        namespace=NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        resources={HEAD_NODE_RESOURCE: 0.001},
    ).remote()


class RayRateLimits:
    """The ``pipeline.tenancy.rate_limiter.RateLimits`` the pools use: each replica spends
    tokens leased from the tenant's shard in small batches (``LeasedRateLimits``: at most one
    actor call per lease instead of one per LLM or SDP call; how far that can exceed a limit is
    bounded in ``pipeline.tenancy.rate_lease``)."""

    def __init__(
        self,
        shards: int = SHARDS,
        *,
        ttl_s: float = LEASE_TTL_S,
        max_batch: int = LEASE_MAX_BATCH,
    ) -> None:
        self._shards = shards
        self._handles: dict[int, ray.actor.ActorHandle] = {}
        self._leased = LeasedRateLimits(self._lease, ttl_s=ttl_s, max_batch=max_batch)

    @property
    def leases(self) -> int:
        """Calls made to the actors so far."""
        return self._leased.leases

    def _actor(self, tenant_id: str) -> ray.actor.ActorHandle:
        shard = shard_for(tenant_id, self._shards)
        if shard not in self._handles:
            self._handles[shard] = limiter_actor(shard)
        return self._handles[shard]

    async def _lease(
        self, tenant_id: str, bucket: str, per_minute: int, want: int, returned: int
    ) -> tuple[int, float]:
        granted, wait = await self._actor(tenant_id).lease.remote(
            tenant_id, bucket, per_minute, want, returned, current_carrier()
        )
        return int(granted), float(wait)

    async def acquire(self, tenant_id: str, bucket: str, per_minute: int) -> float:
        return await self._leased.acquire(tenant_id, bucket, per_minute)


GAUGE_REFRESH_S = 10.0
ACTOR_GRACE_S = 10.0  # beyond the caller's own wait, for the actor to answer at all
UNGATED = 0  # the grant of a call made without the budget (grant ids start at 1)
# After the budget actor failed to answer, calls go ahead ungated this long before one asks it
# again (with a fresh lookup, which re-creates a killed actor): a dead or hung actor then costs
# at most one failed call per replica per interval, not every call its wait.
RETRY_ACTOR_S = 10.0
WARN_EVERY_S = 60.0  # at most one "unreachable" warning per replica per minute


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class ProviderBudgetActor:
    def __init__(self) -> None:
        settings = get_settings()
        prepare_process(settings)
        self._settings = settings
        self._budget = ProviderBudget(ProviderLimits.from_settings(settings))
        self._metrics = RayMetrics()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: httpx.AsyncClient | None = None
        self._poller: CreditPoller | None = None

    async def start(self) -> None:
        """The gauges and the credit poller (idempotent; every Synthesizer replica asks)."""
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._refresh_gauges()))
        settings = self._settings
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        if key and settings.llm_credit_poll_s > 0:
            http = self._http = httpx.AsyncClient()
            self._poller = CreditPoller(
                lambda: read_key_credit(http, settings.llm_base_url, key),
                self._on_credit,
                interval_s=settings.llm_credit_poll_s,
            )
            self._tasks.append(asyncio.create_task(self._poller.run()))

    def _on_credit(self, reading: KeyCredit) -> None:
        self._budget.note_credit(reading.remaining_usd)
        self._export()

    def _export(self) -> None:
        self._metrics.set(mc.LLM_PROVIDER_STATE, STATE_VALUES[self._budget.state()], {})
        self._metrics.set(mc.LLM_CREDIT_LOW, self._settings.llm_credit_low_usd, {})
        reading = self._poller.last if self._poller else None
        if reading is not None and reading.remaining_usd is not None:
            self._metrics.set(mc.LLM_CREDIT_REMAINING, reading.remaining_usd, {})

    async def _refresh_gauges(self) -> None:
        """Re-set every few seconds: a gauge written once can age out of the export."""
        while True:
            try:
                self._export()
            except Exception:  # noqa: BLE001 - metrics never stop the budget
                log.exception("provider budget gauges not exported")
            await asyncio.sleep(GAUGE_REFRESH_S)

    @ray.method(enable_task_events=False)
    async def acquire(
        self, tenant_id: str, tokens: int, weight: int, timeout_s: float
    ) -> dict[str, Any]:
        if not self._tasks:
            await self.start()
        try:
            grant = await self._budget.acquire(
                tenant_id, tokens=tokens, weight=weight, timeout_s=timeout_s
            )
        except ProviderPaused as exc:
            return {"paused": exc.reason}
        except ProviderBusy as exc:
            return {"busy": str(exc)}
        return {"grant": grant.id, "waited_s": grant.waited_s}

    @ray.method(enable_task_events=False)
    async def release(
        self,
        grant_id: int,
        outcome: str,
        tokens_used: int | None,
        retry_after_s: float | None,
        detail: str | None,
    ) -> None:
        before = self._budget.state()
        self._budget.release_now(
            grant_id,
            outcome=outcome,
            tokens_used=tokens_used,
            retry_after_s=retry_after_s,
            detail=detail,
        )
        if self._budget.state() != before:
            self._export()

    async def snapshot(self) -> dict[str, Any]:
        return self._budget.snapshot()


def provider_budget_actor() -> ray.actor.ActorHandle:
    """The one budget of the provider key, on the head node like the rate limiters."""
    return ProviderBudgetActor.options(  # type: ignore[attr-defined]
        name="llm_provider_budget",
        namespace=NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        resources={HEAD_NODE_RESOURCE: 0.001},
        max_concurrency=10_000,  # every call waiting for a grant is one coroutine
    ).remote()


class RayProviderBudget:
    """``pipeline.llm.provider.gate.ProviderBudgetPort`` across replicas: the actor's handle.
    A grant is given back without waiting for the actor's answer.

    With the actor unreachable (killed, its node gone, not answering) calls go ahead ungated
    for ``retry_s``; the next call after that looks the actor up again (``get_if_exists``
    re-creates it if it is gone), so gating resumes by itself. The warning is logged at most
    once per ``warn_every_s``, with the number of ungated calls since the last one."""

    def __init__(self, retry_s: float = RETRY_ACTOR_S, warn_every_s: float = WARN_EVERY_S) -> None:
        self._handle: ray.actor.ActorHandle | None = None
        self._retry_s = retry_s
        self._warn_every_s = warn_every_s
        self._ungated_until = 0.0  # monotonic: until then, calls do not ask the actor
        self._next_warning = 0.0
        self._ungated_calls = 0  # since the last warning
        self.ungated_total = 0

    def actor(self) -> ray.actor.ActorHandle:
        if self._handle is None:
            self._handle = provider_budget_actor()
        return self._handle

    async def acquire(self, tenant_id: str, *, tokens: int, weight: int, timeout_s: float) -> Grant:
        """A grant; with the actor unreachable the call goes ahead ungated (``UNGATED``): the
        provider still enforces its own limits, and a broken budget must not stop every note."""
        if time.monotonic() < self._ungated_until:
            return self._ungated(None)
        try:
            async with asyncio.timeout(timeout_s + ACTOR_GRACE_S):
                answer = await self.actor().acquire.remote(tenant_id, tokens, weight, timeout_s)
        except (ray.exceptions.RayError, TimeoutError) as exc:
            self._handle = None  # look it up again next time: a killed actor is re-created
            self._ungated_until = time.monotonic() + self._retry_s
            return self._ungated(exc)
        if self._ungated_until:
            log.info("LLM provider budget reachable again; LLM calls are gated again")
            self._ungated_until = 0.0
        if "paused" in answer:
            raise ProviderPaused(answer["paused"])
        if "busy" in answer:
            raise ProviderBusy(answer["busy"])
        return Grant(answer["grant"], answer["waited_s"])

    def _ungated(self, error: BaseException | None) -> Grant:
        self._ungated_calls += 1
        self.ungated_total += 1
        now = time.monotonic()
        if error is not None and now >= self._next_warning:
            log.warning(
                "LLM provider budget unreachable (%s): LLM calls go ahead ungated, asking it "
                "again every %g s (%d ungated calls since the last warning)",
                type(error).__name__,
                self._retry_s,
                self._ungated_calls,
            )
            self._next_warning = now + self._warn_every_s
            self._ungated_calls = 0
        return Grant(UNGATED, 0.0)

    async def release(
        self,
        grant_id: int,
        *,
        outcome: str,
        tokens_used: int | None = None,
        retry_after_s: float | None = None,
        detail: str | None = None,
    ) -> None:
        if grant_id != UNGATED:
            self.actor().release.remote(grant_id, outcome, tokens_used, retry_after_s, detail)
