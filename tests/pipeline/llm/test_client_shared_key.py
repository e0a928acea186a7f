"""LLMClient through the shared provider budget, against the LLM simulator over loopback: every
answered attempt's usage is collected, a 429 pauses every tenant's grants instead of one call
sleeping, a 402 stops every tenant at once, and only outages count toward the breaker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from pipeline.llm.circuit_breaker import CircuitBreaker
from pipeline.llm.client import (
    LLMClient,
    LLMClientConfig,
    LLMPaused,
    LLMRejected,
    LLMUnavailable,
)
from pipeline.llm.provider.budget import ProviderBudget, ProviderLimits
from pipeline.llm.provider.gate import TenantGate
from simulators.llm import KeyLimits, LLMSimulatorState, create_app
from simulators.serving import ServerHandle, run_in_thread

KEY = "sk-or-v1-shared-key-test"
MODEL = "vendor/model"
MESSAGES = [
    {"role": "system", "content": "answer in JSON"},
    {"role": "user", "content": "<<<TICKET>>>\nid: 1\nsubject: Outlook\n<<<END TICKET>>>\n"},
]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[LLMSimulatorState, ServerHandle]]:
    state = LLMSimulatorState(api_keys=[KEY])
    with run_in_thread(create_app(state), graceful_shutdown_s=0.2) as handle:
        yield state, handle


@pytest.fixture
def sim(served: tuple[LLMSimulatorState, ServerHandle]) -> LLMSimulatorState:
    served[0].reset()
    return served[0]


MakeClient = Callable[..., LLMClient]


@pytest.fixture
async def make_client(
    served: tuple[LLMSimulatorState, ServerHandle],
) -> AsyncIterator[MakeClient]:
    made: list[LLMClient] = []

    def factory(breaker: CircuitBreaker | None = None, **config: Any) -> LLMClient:
        options: dict[str, Any] = {
            "base_url": f"{served[1].url}/api/v1",
            "api_key": KEY,
            "models": (MODEL,),
            "timeout_s": 3.0,
            "deadline_s": 8.0,
            "max_attempts": 3,
            "backoff_base_s": 0.01,
            **config,
        }
        client = LLMClient(LLMClientConfig(**options), breaker=breaker)
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.aclose()


async def test_every_answered_attempt_is_collected_usable_or_not(
    sim: LLMSimulatorState, make_client: MakeClient
) -> None:
    sim.add_fault("malformed")
    result = await make_client().complete(MESSAGES, gate=TenantGate(ProviderBudget(), "t"))
    assert [u.outcome for u in result.usage] == ["invalid_output", "ok"]
    assert all(u.cost_usd > 0 and u.prompt_tokens > 0 for u in result.usage)
    assert sum(u.cost_usd for u in result.usage) == pytest.approx(
        sum(r.cost_usd for r in sim.requests)
    )
    sim.add_fault("not_json", count=2)
    with pytest.raises(LLMUnavailable) as exc:
        await make_client().complete(MESSAGES)
    assert [u.outcome for u in exc.value.usage] == ["invalid_output", "invalid_output"]


async def test_a_429_pauses_the_whole_budget_instead_of_one_call_sleeping(
    sim: LLMSimulatorState, make_client: MakeClient
) -> None:
    budget = ProviderBudget()
    sim.add_fault("rate_limit", retry_after=1)
    client = make_client()
    started = time.monotonic()
    first = asyncio.create_task(client.complete(MESSAGES, gate=TenantGate(budget, "flood")))
    await asyncio.sleep(0.2)  # the 429 came back: every grant now waits for the Retry-After
    assert budget.state() == "slowed"
    quiet = await client.complete(MESSAGES, gate=TenantGate(budget, "quiet"))
    assert time.monotonic() - started >= 0.95  # the other tenant waited too
    assert quiet.attempts == 1
    assert (await first).attempts == 2
    assert [r.status for r in sim.requests] == [429, 200, 200]
    assert budget.snapshot()["rate_limited"] == 1


async def test_429s_and_bad_answers_never_open_the_breaker_through_the_budget(
    sim: LLMSimulatorState, make_client: MakeClient
) -> None:
    budget = ProviderBudget()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout_s=60)
    client = make_client(breaker=breaker, max_retry_after_s=5, deadline_s=0.5)
    sim.add_fault("rate_limit", retry_after=30, count=None)  # longer than we would wait
    with pytest.raises(LLMUnavailable, match="server asked to wait"):
        await client.complete(MESSAGES, gate=TenantGate(budget, "flood"))
    for tenant in ("flood", "quiet"):  # the budget now holds every call back for 30 s
        with pytest.raises(LLMUnavailable, match="no provider capacity"):
            await client.complete(MESSAGES, gate=TenantGate(budget, tenant))
    sim.clear_faults()
    assert breaker.state == "closed" and len(sim.requests) == 1
    budget = ProviderBudget()  # (the other budget is paused for 30 s)
    client = make_client(breaker=breaker)
    sim.add_fault("not_json", count=None)
    with pytest.raises(LLMUnavailable, match="invalid output"):
        await client.complete(MESSAGES, gate=TenantGate(budget, "odd-tickets"))
    assert breaker.state == "closed"
    sim.clear_faults()
    sim.add_fault("server_error", status=502, count=None)  # an outage does count
    with pytest.raises(LLMUnavailable):
        await client.complete(MESSAGES, gate=TenantGate(budget, "anyone"))
    assert breaker.state == "open"


async def test_without_the_budget_429s_count_toward_the_breaker_as_before(
    sim: LLMSimulatorState, make_client: MakeClient
) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout_s=60)
    client = make_client(breaker=breaker, max_retry_after_s=5)
    sim.add_fault("rate_limit", retry_after=30)
    with pytest.raises(LLMUnavailable):
        await client.complete(MESSAGES)
    assert breaker.state == "open"


async def test_a_402_stops_every_tenant_at_once_without_another_request(
    sim: LLMSimulatorState, make_client: MakeClient
) -> None:
    budget = ProviderBudget(ProviderLimits(credits_recheck_s=60))
    breaker = CircuitBreaker(failure_threshold=1)
    client = make_client(breaker=breaker)
    sim.keys.configure(KeyLimits(credits_usd=0))
    with pytest.raises(LLMRejected, match="insufficient credits"):
        await client.complete(MESSAGES, gate=TenantGate(budget, "first"))
    assert budget.state() == "paused"
    for tenant in ("second", "third"):
        with pytest.raises(LLMPaused, match="openrouter_credits"):
            await client.complete(MESSAGES, gate=TenantGate(budget, tenant))
    assert len(sim.requests) == 1  # only the first asked
    assert breaker.state == "closed"


async def test_no_grant_within_the_deadline_gives_up_without_blaming_the_provider(
    sim: LLMSimulatorState, make_client: MakeClient
) -> None:
    budget = ProviderBudget(ProviderLimits(concurrency=1))
    breaker = CircuitBreaker(failure_threshold=1)
    held = await budget.acquire("flood", timeout_s=1)
    client = make_client(breaker=breaker, deadline_s=0.5)
    with pytest.raises(LLMUnavailable, match="no provider capacity") as exc:
        await client.complete(MESSAGES, gate=TenantGate(budget, "late"))
    assert exc.value.attempts == 0 and sim.requests == []
    assert breaker.state == "closed"
    await budget.release(held.id, outcome="ok")


async def test_the_key_limit_is_never_exceeded_through_the_budget(
    sim: LLMSimulatorState, make_client: MakeClient
) -> None:
    sim.set_latency(0.1)
    sim.keys.configure(KeyLimits(concurrency=2))
    budget = ProviderBudget(ProviderLimits(concurrency=2))
    client = make_client()
    results = await asyncio.gather(
        *(client.complete(MESSAGES, gate=TenantGate(budget, f"t{i % 3}")) for i in range(9))
    )
    assert all(r.attempts == 1 for r in results)
    assert [r.status for r in sim.requests] == [200] * 9  # not one 429
    assert budget.snapshot()["granted_by_tenant"] == {"t0": 3, "t1": 3, "t2": 3}
