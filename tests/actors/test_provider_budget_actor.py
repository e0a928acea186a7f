"""One provider key shared across Synthesizer replicas, on a real Ray and a real Serve
deployment: two replicas of ``SynthesizerDeployment`` against the LLM simulator whose key allows
two calls at once. Through the one ``ProviderBudgetActor`` both replicas together never exceed
the key (not one 429), the grants are split evenly between two tenants, a 402 met by one call
pauses every tenant on every replica at once, and the polled credit lifts the pause after a
top-up. With the actor gone, LLM calls go ahead ungated with one warning, not one per call, and
gating resumes by itself (the last test: it kills the actor). Ray is started in this process and
shut down at the end (the side lane)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from pipeline.models import SimilarTicket, Ticket, TicketContext
from pipeline.tenancy.config import TenantSettings
from simulators.llm import KeyLimits, LLMSimulatorState, create_app
from simulators.serving import run_in_thread
from tests import lanes

pytestmark = lanes.ray_side

KEY = "sk-or-v1-provider-budget-actor"
APP = "llm_share_test"


@pytest.fixture(scope="module")
def llm() -> Iterator[tuple[LLMSimulatorState, str]]:
    state = LLMSimulatorState(api_keys=[KEY], latency_s=0.3)
    with run_in_thread(create_app(state), graceful_shutdown_s=0.2) as server:
        yield state, f"{server.url}/api/v1"


@pytest.fixture(scope="module")
def serve_app(llm: tuple[LLMSimulatorState, str]) -> Iterator[Any]:
    from ray import serve

    from actors.deployment_options import deployment_of
    from actors.synthesizer import SynthesizerDeployment
    from local_stack.ray_serve import ray_init_kwargs, start_ray, stop_ray

    env = {
        "AI_AGENTS_LLM_BASE_URL": llm[1],
        "AI_AGENTS_LLM_API_KEY": KEY,
        "AI_AGENTS_LLM_PROVIDER_CONCURRENCY": "2",
        "AI_AGENTS_LLM_CREDIT_POLL_S": "1",
        "AI_AGENTS_LLM_TIMEOUT_S": "10",
        "AI_AGENTS_LOG_LEVEL": "WARNING",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the local cluster's processes inherit it
    try:
        start_ray(**ray_init_kwargs(num_cpus=2, dashboard=False))
        serve.start(proxy_location="Disabled")  # handles only: no HTTP wanted
        deployment = deployment_of(SynthesizerDeployment).options(
            num_replicas=2, autoscaling_config=None
        )
        handle = serve.run(deployment.bind(), name=APP, route_prefix=None)
        yield handle
    finally:
        stop_ray(shutdown_serve=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
async def budget(serve_app: Any) -> AsyncIterator[Any]:
    from actors.rate_limiter import provider_budget_actor

    yield provider_budget_actor()


def context(n: int) -> TicketContext:
    return TicketContext(
        ticket=Ticket(ticket_id=str(n), subject="VPN drops", description="every ten minutes"),
        similar_tickets=[
            SimilarTicket(ticket_id="7", subject="VPN flaps", resolution="MTU 1400", score=0.8)
        ],
    )


async def synthesize(handle: Any, tenant: str, n: int) -> Any:
    return await handle.synthesize.remote(tenant, context(n), TenantSettings())


def replicas_running() -> int:
    from local_stack.ray_serve import replica_pids

    return len(replica_pids("Synthesizer", app=APP).get("Synthesizer", []))


async def test_two_replicas_together_stay_within_the_key_and_share_it_fairly(
    serve_app: Any, budget: Any, llm: tuple[LLMSimulatorState, str]
) -> None:
    state, _ = llm
    state.keys.configure(KeyLimits(concurrency=2))
    assert replicas_running() == 2
    before = await budget.snapshot.remote()
    results = await asyncio.gather(
        *(synthesize(serve_app, ("a", "b")[i % 2], i) for i in range(12))
    )
    assert [r.mode for r in results] == ["llm"] * 12, [r.reason for r in results]
    stats = state.keys.stats(KEY)
    assert stats["rate_limited"] == 0 and stats["requests"] == 12  # never over the key
    after = await budget.snapshot.remote()
    granted = {
        t: after["granted_by_tenant"].get(t, 0) - before["granted_by_tenant"].get(t, 0)
        for t in ("a", "b")
    }
    assert granted == {"a": 6, "b": 6}


async def test_a_402_pauses_every_tenant_on_every_replica_until_the_credit_is_back(
    serve_app: Any, budget: Any, llm: tuple[LLMSimulatorState, str]
) -> None:
    state, _ = llm
    state.keys.reset()
    state.keys.configure(KeyLimits(concurrency=2, credits_usd=0))
    state.clear_requests()
    first = await synthesize(serve_app, "a", 100)
    assert (first.mode, first.paused) == ("context_only", "credits")
    results = await asyncio.gather(
        *(synthesize(serve_app, ("a", "b", "c")[i % 3], 101 + i) for i in range(6))
    )
    assert all(r.paused == "credits" for r in results), [r.reason for r in results]
    assert all(r.reason.startswith("AI summary paused") for r in results)
    assert [r.status for r in state.requests] == [402]  # nobody else asked the provider
    assert (await budget.snapshot.remote())["state"] == "paused"

    state.keys.configure(KeyLimits(concurrency=2, credits_usd=10.0))  # topped up
    deadline = time.monotonic() + 20
    while (await budget.snapshot.remote())["state"] != "ok":  # the poller reads it (1 s)
        assert time.monotonic() < deadline, "the credit poller never lifted the pause"
        await asyncio.sleep(0.5)
    again = await synthesize(serve_app, "b", 200)
    assert again.mode == "llm"


async def _dead(handle: Any) -> None:
    import ray

    async with asyncio.timeout(20):
        while True:
            try:
                await handle.snapshot.remote()
            except ray.exceptions.RayActorError:
                return
            await asyncio.sleep(0.1)


async def test_with_the_budget_actor_gone_calls_go_ahead_ungated_and_gating_resumes(
    serve_app: Any, llm: tuple[LLMSimulatorState, str], caplog: pytest.LogCaptureFixture
) -> None:
    import ray

    from actors.rate_limiter import UNGATED, RayProviderBudget

    state, _ = llm
    state.keys.reset()
    state.keys.configure(KeyLimits(concurrency=2))
    budget = RayProviderBudget(retry_s=2.0, warn_every_s=60.0)
    gated = await budget.acquire("a", tokens=100, weight=1, timeout_s=5)
    assert gated.id != UNGATED
    await budget.release(gated.id, outcome="ok", tokens_used=100)

    # a crash: Ray restarts the actor (max_restarts=-1) and the same handle is gated again
    crashed = budget.actor()
    ray.kill(crashed, no_restart=False)
    after_crash = await budget.acquire("a", tokens=100, weight=1, timeout_s=5)
    assert after_crash.id != UNGATED and budget.ungated_total == 0
    await budget.release(after_crash.id, outcome="ok", tokens_used=100)

    # gone for good: every call goes ahead ungated, with one warning for all of them
    old = budget.actor()
    ray.kill(old, no_restart=True)
    await _dead(old)
    caplog.set_level(logging.WARNING, logger="actors.rate_limiter")
    started = time.monotonic()
    grants = [await budget.acquire("a", tokens=100, weight=1, timeout_s=5) for _ in range(50)]
    assert time.monotonic() - started < 1.5  # none waited for the dead actor
    assert [g.id for g in grants] == [UNGATED] * 50
    warnings = [r for r in caplog.records if "provider budget unreachable" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    # and through the Synthesizer replicas, whose handle is the dead actor's too: LLM notes.
    # Ungated, only the key limits them: it allows the four at once, so a slow machine's
    # overlapping retries cannot turn them into 429s (over a 2-call key they could)
    state.keys.configure(KeyLimits(concurrency=4))
    requests = state.keys.stats(KEY)["requests"]
    notes = await asyncio.gather(*(synthesize(serve_app, "b", 300 + i) for i in range(4)))
    assert [n.mode for n in notes] == ["llm"] * 4, [n.reason for n in notes]
    assert state.keys.stats(KEY)["requests"] == requests + 4

    # after retry_s the next call looks the actor up again, which re-creates it: gated again
    await asyncio.sleep(2.1)
    resumed = await budget.acquire("a", tokens=100, weight=1, timeout_s=5)
    assert resumed.id != UNGATED
    new = budget.actor()
    assert new._actor_id != old._actor_id
    assert (await new.snapshot.remote())["granted_by_tenant"].get("a", 0) >= 1
    await budget.release(resumed.id, outcome="ok", tokens_used=100)
