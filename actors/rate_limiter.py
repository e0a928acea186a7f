"""RateLimiterActor: sharded, named, detached Ray actors holding per-tenant token buckets.

Every replica of every pool reaches the same buckets (``get_if_exists``), so a tenant's LLM and
SDP budgets are global, not per replica. The actor only books reservations; callers sleep in
their own coroutine, so a throttled tenant never blocks another. A restarted actor starts with
full buckets (a brief burst at most), which is acceptable for these limits.

Task events are off for ``reserve`` (``enable_task_events=False``), as Serve turns them off for
its own actors: every LLM and SDP call books here, and Ray's GCS keeps the events of the last
100,000 task attempts (a few KB each) in memory, which a busy service reaches within hours.
"""

from __future__ import annotations

import asyncio

import ray

from actors.replica_setup import prepare_process
from core.settings import get_settings
from pipeline.observability.tracing import context_from_carrier, current_carrier, tracer
from pipeline.tenancy.rate_limiter import RateLimiter, shard_for

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
    """The ``pipeline.tenancy.rate_limiter.RateLimits`` the pools use."""

    def __init__(self, shards: int = SHARDS) -> None:
        self._shards = shards
        self._handles: dict[int, ray.actor.ActorHandle] = {}

    def _actor(self, tenant_id: str) -> ray.actor.ActorHandle:
        shard = shard_for(tenant_id, self._shards)
        if shard not in self._handles:
            self._handles[shard] = limiter_actor(shard)
        return self._handles[shard]

    async def acquire(self, tenant_id: str, bucket: str, per_minute: int) -> float:
        wait = await self._actor(tenant_id).reserve.remote(
            tenant_id, bucket, per_minute, current_carrier()
        )
        if wait > 0:
            await asyncio.sleep(wait)
        return wait
