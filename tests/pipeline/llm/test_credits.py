"""Reading the key's remaining credit from the provider (the LLM simulator's OpenRouter
``GET /api/v1/key`` over HTTP), and the poller handing it to the shared provider budget."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest

from pipeline.llm.provider.budget import ProviderBudget
from pipeline.llm.provider.credits import (
    CreditPoller,
    CreditUnavailable,
    KeyCredit,
    parse_key_info,
    read_key_credit,
)
from pipeline.llm.provider.gate import ProviderPaused
from simulators.llm import KeyLimits, LLMSimulatorState, create_app
from simulators.serving import ServerHandle, run_in_thread

KEY = "sk-or-v1-credits"
MESSAGES = [{"role": "user", "content": "<<<TICKET>>>\nsubject: Printer\n<<<END TICKET>>>"}]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[LLMSimulatorState, ServerHandle]]:
    state = LLMSimulatorState(api_keys=[KEY])
    with run_in_thread(create_app(state), graceful_shutdown_s=0.2) as handle:
        yield state, handle


@pytest.fixture
def state(served: tuple[LLMSimulatorState, ServerHandle]) -> LLMSimulatorState:
    served[0].reset()
    return served[0]


@pytest.fixture
def base_url(served: tuple[LLMSimulatorState, ServerHandle]) -> str:
    return f"{served[1].url}/api/v1"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_reads_limit_remaining_and_usage(
    state: LLMSimulatorState, base_url: str, http: httpx.AsyncClient
) -> None:
    state.keys.configure(KeyLimits(credits_usd=2.0))
    before = await read_key_credit(http, base_url, KEY)
    assert before == KeyCredit(limit_usd=2.0, remaining_usd=2.0, usage_usd=0.0)
    async with openai.AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0) as client:
        answer = await client.chat.completions.create(model="m", messages=MESSAGES)
    cost = answer.usage.model_extra["cost"]
    after = await read_key_credit(http, base_url, KEY)
    assert after.usage_usd == pytest.approx(cost)
    assert after.remaining_usd == pytest.approx(2.0 - cost)


async def test_a_key_without_limit_has_nothing_to_read(
    state: LLMSimulatorState, base_url: str, http: httpx.AsyncClient
) -> None:
    reading = await read_key_credit(http, base_url, KEY)
    assert reading.limit_usd is None and reading.remaining_usd is None


async def test_refusals_and_strange_answers_are_unavailable_never_a_crash(
    state: LLMSimulatorState, base_url: str, http: httpx.AsyncClient
) -> None:
    with pytest.raises(CreditUnavailable, match="HTTP 401") as exc:
        await read_key_credit(http, base_url, "sk-or-v1-wrong")
    assert not exc.value.permanent
    with pytest.raises(CreditUnavailable, match="no key endpoint") as exc:
        await read_key_credit(http, base_url.removesuffix("/api/v1") + "/elsewhere", KEY)
    assert exc.value.permanent
    with pytest.raises(CreditUnavailable, match="unreachable"):
        await read_key_credit(http, "http://127.0.0.1:9/api/v1", KEY, timeout_s=2)
    for body in ({}, {"data": "x"}, []):
        with pytest.raises(CreditUnavailable):
            parse_key_info(body)
    odd = parse_key_info({"data": {"limit": "lots", "limit_remaining": True, "usage": 1e400}})
    assert odd == KeyCredit(limit_usd=None, remaining_usd=None, usage_usd=None)


async def test_the_poller_pauses_every_tenant_when_nothing_is_left_and_lifts_after_a_top_up(
    state: LLMSimulatorState, base_url: str, http: httpx.AsyncClient
) -> None:
    budget = ProviderBudget()
    readings: list[KeyCredit] = []

    def on_reading(reading: KeyCredit) -> None:
        readings.append(reading)
        budget.note_credit(reading.remaining_usd)

    poller = CreditPoller(lambda: read_key_credit(http, base_url, KEY), on_reading, interval_s=0.05)
    state.keys.configure(KeyLimits(credits_usd=0.0))
    task = asyncio.create_task(poller.run())
    try:
        for _ in range(100):
            if readings:
                break
            await asyncio.sleep(0.02)
        with pytest.raises(ProviderPaused, match="remaining credit is 0"):
            await budget.acquire("any-tenant", timeout_s=1)
        state.keys.configure(KeyLimits(credits_usd=5.0))  # topped up
        for _ in range(100):
            if budget.state() == "ok":
                break
            await asyncio.sleep(0.02)
        grant = await budget.acquire("any-tenant", timeout_s=1)
        await budget.release(grant.id, outcome="ok")
        assert readings[-1].remaining_usd == 5.0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_poller_stops_for_an_endpoint_without_key_endpoint(
    base_url: str, http: httpx.AsyncClient
) -> None:
    poller = CreditPoller(
        lambda: read_key_credit(http, base_url + "/nothing-here", KEY),
        lambda reading: None,
        interval_s=0.01,
    )
    async with asyncio.timeout(5):
        await poller.run()  # returns: nothing to poll
    assert poller.stopped_because and "404" in poller.stopped_because
