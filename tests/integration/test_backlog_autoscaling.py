"""The pools scale on the durable backlog: jobs waiting in PostgreSQL (not requests in flight)
raise the Enhancer's, Synthesizer's and ContextGatherer's target replicas and the Dispatcher's
in-flight cap, and the Enhancer's target falls again once the backlog is gone.

The tenant's `max_inflight` of 1 keeps almost every job claimable but unclaimed, so the only
signal that can raise the pool is the backlog the Dispatcher publishes. The Enhancer's
downscale delay is shortened for this test by a lightweight Serve config update (no replica
restarts) and restored afterwards.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from actors.deployment_options import (
    APP_NAME,
    CONTEXT_GATHERER,
    ENHANCER,
    SYNTHESIZER,
    node_scale,
    sized_pool_options,
)
from local_stack.results import wait_until_idle
from tests.integration.observability_support import metrics_port, samples, scrape

pytestmark = pytest.mark.ray

BACKLOG = 600  # 600 / target 192 -> 4 replicas wanted, more than the Enhancer's max here


def _sized() -> dict[str, dict[str, Any]]:
    """The pools as `ai-agents serve` sizes them to this cluster (the suite's 4 CPUs: every
    pool at most 2 replicas, which fit the node together)."""
    import ray

    return sized_pool_options(node_scale(float(ray.cluster_resources()["CPU"])))


def _deploy(downscale_delay_s: float | None) -> None:
    from ray import serve

    from actors.context_gatherer import ContextGathererDeployment
    from actors.dispatcher import DispatcherDeployment
    from actors.enhancer import EnhancerDeployment
    from actors.ingress import IngressDeployment
    from actors.synthesizer import SynthesizerDeployment

    pools = _sized()
    if downscale_delay_s is not None:
        pools[ENHANCER]["autoscaling_config"]["downscale_delay_s"] = downscale_delay_s

    def sized(deployment: Any) -> Any:
        return deployment.options(**pools[deployment.name])

    enhancer = sized(EnhancerDeployment).bind(
        sized(ContextGathererDeployment).bind(), sized(SynthesizerDeployment).bind()
    )
    serve.run(
        sized(IngressDeployment).bind(sized(DispatcherDeployment).bind(enhancer)),
        name=APP_NAME,
        route_prefix="/",
    )


def _dispatcher_status() -> dict[str, Any]:
    from ray import serve

    from actors.deployment_options import DISPATCHER

    return serve.get_deployment_handle(DISPATCHER, APP_NAME).status.remote().result()


def _replicas(deployment: str = ENHANCER) -> tuple[int, int]:
    """(running, target) of a deployment, from Serve's controller."""
    from ray import serve

    running = serve.status().applications[APP_NAME].deployments[deployment].replica_states
    details = serve.context._get_global_client().get_serve_details()
    target = details["applications"][APP_NAME]["deployments"][deployment]["target_num_replicas"]
    return int(running.get("RUNNING", 0)), int(target)


async def _wait(what: str, check: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not reached in {timeout_s} s"
        await asyncio.sleep(1.0)


async def _clone_jobs(owner_conn: Any, tenant_id: str, enhancement_id: str, count: int) -> None:
    """`count` queued copies of a real job (distinct dedupe keys), inserted in one statement."""
    await owner_conn.execute(
        """INSERT INTO enhancements (tenant_id, ticket_id, event, dedupe_key, payload)
           SELECT e.tenant_id, e.ticket_id, e.event, e.dedupe_key || '-' || n, e.payload
           FROM enhancements e, generate_series(1, $3) n
           WHERE e.tenant_id = $1 AND e.id = $2::uuid""",
        tenant_id,
        enhancement_id,
        count,
    )


async def test_a_backlog_in_the_jobs_table_scales_the_enhancer_out_and_back_in(
    system, owner_conn
) -> None:
    await wait_until_idle(owner_conn)
    await asyncio.to_thread(_deploy, 5.0)
    top = (await asyncio.to_thread(_sized))[ENHANCER]["autoscaling_config"]["max_replicas"]
    assert top >= 2  # sized to the cluster: room for more than one of each pool
    assert (await asyncio.to_thread(_replicas))[1] == 1
    # the Dispatcher learns the running Enhancer replicas: its cap is 1 x 192
    status = await _wait(
        "Dispatcher sized by one replica",
        lambda: (s := _dispatcher_status())["running_replicas"] == 1 and s,
        timeout_s=60,
    )
    assert status["replica_cap"] == 192  # the adaptive admission limit may be lower
    assert status["inflight_limit"] <= 192
    tenant = await system.tenant("scale", settings={"max_inflight": 1})
    system.llm.set_latency(0.5)
    try:
        ticket = tenant.add_ticket(subject="VPN down", description="VPN drops every minute")
        first = await tenant.send_ticket(ticket)
        await _clone_jobs(owner_conn, tenant.tenant_id, first, BACKLOG)

        await _wait(
            "Enhancer target raised by the backlog", lambda: _replicas()[1] >= top, timeout_s=90
        )
        await _wait("Enhancer replicas running", lambda: _replicas()[0] >= top, timeout_s=120)
        # the pools it calls follow the same backlog (ContextGatherer at its own target of 96)
        for pool in (SYNTHESIZER, CONTEXT_GATHERER):
            await _wait(
                f"{pool} target raised by the backlog",
                lambda pool=pool: _replicas(pool)[1] >= top,
                timeout_s=60,
            )
        # more replicas, more in flight: 2+ x 192, bounded by AI_AGENTS_DISPATCH_MAX_INFLIGHT
        status = await _wait(
            "Dispatcher cap follows the replicas",
            lambda: (s := _dispatcher_status())["running_replicas"] >= top and s,
            timeout_s=60,
        )
        assert status["replica_cap"] == 256
        assert status["backlog"] > 100
        # what the policy used and asked for is exported (Ray adds the ray_ prefix)
        url = f"http://127.0.0.1:{metrics_port()}/metrics"
        deadline = time.monotonic() + 60
        while True:
            text = await scrape(url)
            backlog = [
                v
                for labels, v in samples(text, "ray_ai_agents_backlog_jobs")
                if labels.get("tenant") == tenant.tenant_id
            ]
            asked = [
                v
                for labels, v in samples(text, "ray_ai_agents_autoscale_desired_replicas")
                if labels.get("deployment") == ENHANCER
            ]
            if (
                backlog and max(backlog) > 100 and asked and max(asked) >= top
            ) or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        assert backlog and max(backlog) > 100, backlog
        assert asked and max(asked) >= top, asked

        # drain: disabling the tenant ends its queued jobs `skipped`, the backlog is gone
        response = await system.http.post(
            f"{system.url}/admin/tenants/{tenant.tenant_id}/disable", headers=system.admin
        )
        assert response.status_code == 200, response.text
        await wait_until_idle(owner_conn, timeout_s=60)
        await _wait(
            "Enhancer target back at min after the downscale delay",
            lambda: _replicas()[1] == 1,
            timeout_s=90,
        )
        skipped = await owner_conn.fetchval(
            "SELECT count(*) FROM enhancements WHERE tenant_id = $1 AND status = 'completed' "
            "AND outcome = 'skipped' AND error = 'tenant disabled'",
            tenant.tenant_id,
        )
        assert skipped > BACKLOG // 2
    finally:
        system.llm.set_latency(0.05)
        await asyncio.to_thread(_deploy, None)
